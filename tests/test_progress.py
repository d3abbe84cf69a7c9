"""The progress bar: the steps the scan reports add up to the run, in about `UPDATES`
callbacks at most, whatever the chunking (long fused chunks or one-step records)."""

import jax
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.integrators import progress


@pytest.mark.parametrize(
    ("steps", "record_every"),
    [
        (10_003, None),  # fused chunks of 2,048 steps, each longer than the stride (101)
        (1_001, 1),  # one step per record: a callback only where a multiple of 11 is crossed
        (997, 10),  # records of 10 steps, stride 10: every record reports
    ],
)
def test_reported_steps_add_up_to_the_run(monkeypatch, steps, record_every):
    reported = []
    monkeypatch.setattr(progress, "_advance", reported.append)  # traced anew: unique steps
    traj = itg.simulate(
        itg.sgd(1e-3),
        ls.rosenbrock(),
        np.zeros(2),
        steps,
        record_every=record_every,
        progress=True,
    )
    jax.block_until_ready(traj.final_state)
    every = progress.stride(steps)
    assert len(reported) <= progress.UPDATES + 1
    # each report is a chunk's length or one stride; the steps after the last multiple of
    # the stride are not reported (the bar is filled when the call returns)
    assert steps - every < sum(reported) <= steps
    assert all(r >= every for r in reported)


def test_the_bar_ends_full(capsys):
    itg.simulate(itg.sgd(1e-3), ls.rosenbrock(), np.zeros(2), 1_234, record_every=7, progress=True)
    assert "1234/1234" in capsys.readouterr().err
