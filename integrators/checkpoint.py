"""Checkpoints: a pytree of arrays saved as `.npz`, its structure checked on load, never unpickled.

    save("run.npz", tree, meta={"epoch": 10})
    tree, meta = load("run.npz", like=template)   # `template`: same structure (e.g. eval_shape)

The file holds one array per leaf (`leaf_00000`, ...) and a JSON header with the tree
structure (the treedef's string), each leaf's shape and dtype, and `meta`. Typed PRNG keys
are stored as their raw data and re-wrapped. The file is written to a temporary file in the
same folder and renamed (`os.replace`): a crash leaves the old checkpoint or the new one,
never half of one; its mode follows the umask. `load` reads with `allow_pickle=False` and
raises a ValueError naming the file when it is corrupt or its structure, shapes or dtypes
differ from `like`.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "optdyn-checkpoint-1"


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jax.dtypes.prng_key)


def save(path, tree, meta: dict | None = None) -> Path:
    """Write `tree` (a pytree of arrays) and a JSON-able `meta` to `path` atomically."""
    path = Path(os.fspath(path))
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    arrays, described = {}, []
    for i, leaf in enumerate(leaves):
        impl = str(jax.random.key_impl(leaf)) if _is_key(leaf) else ""
        a = np.asarray(jax.random.key_data(leaf) if impl else leaf)
        arrays[f"leaf_{i:05d}"] = a
        described.append({"shape": list(a.shape), "dtype": a.dtype.str, "key_impl": impl})
    header = {"format": FORMAT, "treedef": str(treedef), "leaves": described, "meta": meta or {}}
    arrays["header"] = np.asarray(json.dumps(header))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode from the umask
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    return path


def _header(path: Path) -> tuple[dict, list]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            if header.get("format") != FORMAT:
                raise ValueError(f"format {header.get('format')!r}, expected {FORMAT!r}")
            arrays = [archive[f"leaf_{i:05d}"] for i in range(len(header["leaves"]))]
    except Exception as err:  # zip, header, JSON or missing-array errors: all mean corrupt
        raise ValueError(
            f"checkpoint {str(path)!r} is corrupt or not an optdyn checkpoint ({err})."
        ) from None
    return header, arrays


def read_meta(path) -> dict:
    """The `meta` dict of a checkpoint (the file is checked as in `load`)."""
    return _header(Path(os.fspath(path)))[0]["meta"]


def load(path, like) -> tuple:
    """Read a checkpoint written by `save`; `like` is a pytree of the expected structure
    (arrays or `jax.ShapeDtypeStruct`s). Returns `(tree, meta)`.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not a readable checkpoint, or its structure, a leaf's shape or
        dtype differs from `like` (the message names the file and the difference).
    """
    path = Path(os.fspath(path))
    header, arrays = _header(path)
    expected, treedef = jax.tree_util.tree_flatten(like)
    if header["treedef"] != str(treedef):
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit this run: it holds the structure "
            f"{header['treedef'][:300]} but this run needs {str(treedef)[:300]}."
        )
    leaves = []
    for i, (a, d, e) in enumerate(zip(arrays, header["leaves"], expected, strict=True)):
        leaf = jax.random.wrap_key_data(a, impl=d["key_impl"]) if d["key_impl"] else a
        want = (tuple(jnp.shape(e)), str(e.dtype))
        if (tuple(leaf.shape), str(leaf.dtype)) != want:
            raise ValueError(
                f"checkpoint {str(path)!r} does not fit this run: leaf {i} has shape "
                f"{tuple(leaf.shape)} and dtype {leaf.dtype}, this run needs shape "
                f"{want[0]} and dtype {want[1]}."
            )
        leaves.append(jnp.asarray(leaf) if not d["key_impl"] else leaf)
    return jax.tree_util.tree_unflatten(treedef, leaves), header["meta"]
