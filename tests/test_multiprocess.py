"""Two real JAX processes on 127.0.0.1 give the numbers of one process.

The launcher (`optdyn.integrators.launch`) starts two processes joined by
`jax.distributed.initialize` (a free port, a timeout, survivors killed), each with two
host-platform CPU devices: four devices in all. Each process passes a slice of a different
size (7 and 6 particles: 13, not a multiple of 4, so the ensemble is padded and cut) and
process 0 writes the gathered result; the test compares it with one process on the
concatenated slices, bit for bit in float64, with thermal noise on.
"""

import json
import os
import sys
import textwrap

import jax
import numpy as np

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.integrators import launch

SIZES = (7, 6)
STEPS = 60

WORKER = textwrap.dedent(
    """
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from optdyn.integrators import launch, sharding as sh
    launch.initialize(initialization_timeout=60)
    from optdyn import integrators as itg, landscape as ls

    sizes, steps, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    pid = jax.process_index()
    x = np.random.default_rng(0).uniform(-2, 2, (sum(sizes), 2))
    start = sum(sizes[:pid])
    local = x[start : start + sizes[pid]]
    traj = sh.simulate_sharded(
        itg.langevin(1e-3, 0.3), ls.rosenbrock(), local, steps, jax.random.key(1),
        record_every=steps // 2, process_local=True,
    )
    got = sh.gather(traj)
    if pid == 0:
        with open(out, "w") as f:
            json.dump({
                "processes": jax.process_count(),
                "devices": len(jax.devices()),
                "positions": np.asarray(got.positions).tolist(),
                "loss": np.asarray(got.loss).tolist(),
            }, f)
    """
)


def test_two_processes_give_the_numbers_of_one(tmp_path):
    script, out = tmp_path / "worker.py", tmp_path / "out.json"
    script.write_text(WORKER)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    status, log = launch.launch(
        [sys.executable, str(script), json.dumps(SIZES), str(STEPS), str(out)],
        2,
        timeout=120,
        env=env,
    )
    assert status == 0, f"launcher exit {status}; the processes' output:\n{log[-6000:]}"
    got = json.loads(out.read_text())
    assert (got["processes"], got["devices"]) == (2, 4), log[-3000:]

    x = np.random.default_rng(0).uniform(-2, 2, (sum(SIZES), 2))
    one = itg.simulate(
        itg.langevin(1e-3, 0.3),
        ls.rosenbrock(),
        x,
        STEPS,
        jax.random.key(1),
        record_every=STEPS // 2,
    )
    positions = np.asarray(got["positions"])
    assert positions.shape == one.positions.shape == (sum(SIZES), 3, 2)
    np.testing.assert_array_equal(positions, np.asarray(one.positions))
    np.testing.assert_array_equal(np.asarray(got["loss"]), np.asarray(one.loss))
    assert np.ptp(positions[:, -1] - positions[:, 0]) > 0  # the particles moved


def test_launcher_kills_the_survivors_and_reports_the_failure(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(
        "import os, sys, time\n"
        "if os.environ['OPTDYN_PROCESS_ID'] == '1':\n"
        "    print('process 1 fails'); sys.exit(3)\n"
        "time.sleep(60)\n"
    )
    status, log = launch.launch([sys.executable, str(script)], 2, timeout=30)
    assert status == 3, log
    assert "[1] process 1 fails" in log
