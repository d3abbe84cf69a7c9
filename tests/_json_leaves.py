"""The leaves of a JSON tree, for the experiments' smoke tests (a NaN or inf is saved as null)."""


def json_leaves(tree):
    """Every leaf of a JSON tree (dicts and lists walked), None included."""
    if isinstance(tree, dict):
        for v in tree.values():
            yield from json_leaves(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from json_leaves(v)
    else:
        yield tree


def json_numbers(tree):
    """The numeric leaves (int or float, not bool) of a JSON tree."""
    return [v for v in json_leaves(tree) if isinstance(v, int | float) and not isinstance(v, bool)]
