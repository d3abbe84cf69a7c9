"""Smoke runs of the issue-13 experiments at --quick: every panel drawn, every number finite.

The physics of each experiment is tested at a size fitted to the check in its own file
(test_thermometer, test_nqm, test_modified_equation, test_spectrum); here
`run(Config(quick=True))` only has to finish, write its PNG and JSON, and return numbers that
are finite (a NaN is a bug, not noise). scaling_rules' quick run is the small version that
test_scaling checks, so its smoke check lives there and the run is paid once.
"""

import importlib
import json
import math

import numpy as np
import pytest

from optdyn.experiments._common import Config

pytestmark = pytest.mark.quick_experiment  # `make test` runs these with --compile-fast

# NaN by design: no critical batch size inside the quick range of B (heavy ball's B* ≈ 123)
MAY_BE_NAN = {"noisy_quadratic": ("critical_batch_size",)}


def _numbers(tree, path=""):
    """(path, value) for every number in a result tree (dicts, lists, arrays, scalars)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _numbers(v, f"{path}/{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(tree, np.ndarray) and tree.dtype.kind in "fiu":
        for i, v in enumerate(tree.ravel()):
            yield f"{path}[{i}]", float(v)
    elif isinstance(tree, (int, float, np.number)) and not isinstance(tree, bool):
        yield path, float(tree)


@pytest.mark.parametrize(
    "name", ["thermometer", "noisy_quadratic", "modified_equation", "hessian_spectrum"]
)
def test_quick_run_writes_its_figure_and_finite_numbers(name, tmp_path):
    module = importlib.import_module(f"optdyn.experiments.{name}")
    result = module.run(Config(quick=True, out=str(tmp_path)))
    assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert json.loads((tmp_path / f"{name}.json").read_text())
    numbers = list(_numbers(result))
    assert len(numbers) > 10
    allowed = MAY_BE_NAN.get(name, ())
    bad = [p for p, v in numbers if not math.isfinite(v) and p.split("/")[-1] not in allowed]
    assert not bad, bad
