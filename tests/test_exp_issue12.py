"""Smoke runs at --quick of the training-loop experiments: every panel drawn, numbers finite.

The physics of each lives in its own test file at sizes sized for the check
(test_training_loop, test_numerical_gradient, test_losses); these only run the experiment
end to end.
"""

import json
import math

import pytest
from _json_leaves import json_numbers

from optdyn.experiments import numerical_gradient, regression_losses, training_loop
from optdyn.experiments._common import Config

pytestmark = pytest.mark.quick_experiment  # `make test` runs these with --compile-fast


@pytest.mark.parametrize(
    "module", [training_loop, numerical_gradient, regression_losses], ids=lambda m: m.__name__
)
def test_quick_run_writes_figure_and_finite_json(module, tmp_path):
    name = module.__name__.rsplit(".", 1)[-1]
    out = module.run(Config(quick=True, out=str(tmp_path)))
    assert isinstance(out, dict) and out
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    numbers = json_numbers(saved)
    assert numbers and all(math.isfinite(x) for x in numbers), name
