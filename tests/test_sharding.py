"""The sharded simulator returns the numbers of one device.

The multi-device check runs in a subprocess with four host-platform CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=4`, which must be set before JAX starts).
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.integrators import sharding as sh

SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from optdyn import integrators as itg, landscape as ls
    from optdyn.integrators import sharding as sh, streaming as st

    U = ls.rosenbrock()
    x0 = jax.random.uniform(jax.random.key(0), (64, 2), minval=-2.0, maxval=2.0)
    key = jax.random.key(1)
    out = {"devices": len(jax.devices())}
    cases = {
        "gd_fused": (itg.sgd(2e-3), dict(record=False)),
        "langevin": (itg.langevin(1e-3, 0.3), dict(record_every=10)),
        "adam_stream": (itg.adam(0.02), dict(record=False, stream={"m": st.moments()})),
    }
    for name, (opt, kw) in cases.items():
        one = itg.simulate(opt, U, x0, 200, key, **kw)
        many = sh.simulate_sharded(opt, U, x0, 200, key, **kw)
        p = many.final_state.params
        out[name] = {
            "devices_used": len(p.sharding.device_set),
            "max_diff": float(jnp.max(jnp.abs(one.final_state.params - p))),
            "same_divergence": bool(jnp.all(one.diverged_step == many.diverged_step)),
            "diverged": int(jnp.sum(one.diverged_step >= 0)),
        }
        if "stream" in kw:
            diff = jnp.abs(one.stream["m"].var - many.stream["m"].var)
            out[name]["stream_diff"] = float(jnp.max(diff))
        if one.loss is not None:
            out[name]["loss_diff"] = float(jnp.max(jnp.abs(one.loss - many.loss)))
    # 62 particles on 4 devices: padded, then cut
    opt = itg.langevin(1e-3, 0.3)
    well = ls.quadratic(np.eye(2), np.zeros(2))
    one = itg.simulate(opt, well, x0[:62], 50, key, record_every=25)
    many = sh.simulate_sharded(opt, well, x0[:62], 50, key, record_every=25)
    diff = float(jnp.max(jnp.abs(one.positions - many.positions)))
    out["padded"] = {"shape": list(many.positions.shape), "max_diff": diff}
    # a sweep of one particle is split over the sweep axis
    opt = itg.sgd([1e-3, 2e-3, 3e-3, 4e-3])
    one = itg.simulate(opt, U, x0[0], 100, key)
    many = sh.simulate_sharded(opt, U, x0[0], 100, key)
    out["sweep"] = {"devices_used": len(many.positions.sharding.device_set),
                    "max_diff": float(jnp.max(jnp.abs(one.positions - many.positions)))}
    print(json.dumps(out))
    """
)


def test_four_devices_give_the_numbers_of_one():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4
    for name in ("gd_fused", "langevin", "adam_stream"):
        case = out[name]
        assert case["devices_used"] == 4, (name, case)
        assert case["same_divergence"], (name, case)
        # float64: identical up to the rounding of fused multiply-adds
        assert case["max_diff"] < 1e-12, (name, case)
        assert case.get("loss_diff", 0.0) < 1e-10, (name, case)
        assert case.get("stream_diff", 0.0) < 1e-12, (name, case)
    assert out["gd_fused"]["diverged"] > 0  # the check and the replay ran sharded too
    assert out["padded"]["shape"] == [62, 3, 2] and out["padded"]["max_diff"] < 1e-12
    assert out["sweep"]["devices_used"] == 4 and out["sweep"]["max_diff"] < 1e-12


def test_one_device_is_plain_simulate():
    mesh = sh.particle_mesh(jax.devices()[:1])
    x0 = jnp.ones((6, 2))
    a = sh.simulate_sharded(itg.sgd(1e-3), ls.rosenbrock(), x0, 20, mesh=mesh)
    b = itg.simulate(itg.sgd(1e-3), ls.rosenbrock(), x0, 20)
    np.testing.assert_array_equal(a.positions, b.positions)
    placed = sh.shard(x0, mesh)
    assert placed.sharding.spec == jax.sharding.PartitionSpec("particles", None)
