"""Speed of network training through the simulator against a hand-written JAX + optax loop.

Workload: the digits MLP 64-128-128-10 (relu, softmax cross-entropy), batch 64 (22 steps per
epoch over 1,438 training images), Adam at η = 1e-3, float32.

* optdyn: `integrators.simulate` on the finite-sum landscape with `landscape.minibatch(64)`
  noise (epochs of shuffled batches), `integrators.adam` as the integrator; with per-epoch
  metrics this is exactly `integrators.train`.
* baseline: a hand-written epoch in `lax.scan` — `jax.random.permutation`, a scan over the
  batches with `jax.grad` of the same loss and `optax.adam` — jitted over all epochs.
* seeds: 16 seeds in one vmapped `train` call against one seed alone, per seed.
* PyTorch: the same loop in eager PyTorch, only when `torch` is importable (it is not a
  dependency of optdyn).

Times are the best of several repeats after a warm-up call (compilation excluded), so a
busy machine inflates both sides alike; ratio = optdyn / baseline steps per second.

    python -m benchmarks.bench_mlp [--quick]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optdyn import integrators as itg
from optdyn.landscape.data import digits
from optdyn.landscape.mlp import mlp

SIZES = (64, 128, 128, 10)
BATCH = 64
LR = 1e-3


def _best(fn, repeats: int) -> float:
    """Best wall time of `repeats` calls of fn() (each blocks until its result is ready)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def _baseline(model, data, epochs: int, metrics: bool):
    """A hand-written JAX + optax training loop: epochs of shuffled batches in lax.scan."""
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    test = jax.tree.map(jnp.asarray, data.test)
    n = x.shape[0]
    per_epoch = n // BATCH
    opt = optax.adam(LR)

    def loss(p, xb, yb):
        return model.loss_fn(p, {"x": xb, "y": yb})

    @jax.jit
    def run(params, key):
        def epoch(carry, k):
            p, s = carry
            perm = jax.random.permutation(k, n)[: per_epoch * BATCH].reshape(per_epoch, BATCH)

            def step(c, idx):
                p, s = c
                g = jax.grad(loss)(p, x[idx], y[idx])
                u, s = opt.update(g, s, p)
                return (optax.apply_updates(p, u), s), None

            (p, s), _ = jax.lax.scan(step, (p, s), perm)
            out = ()
            if metrics:  # the same numbers train() records: loss, |∇U|, accuracies, test loss
                full_loss, g = jax.value_and_grad(loss)(p, x, y)
                gnorm = jnp.sqrt(sum(jnp.sum(a**2) for a in jax.tree.leaves(g)))
                out = (
                    full_loss,
                    gnorm,
                    model.accuracy(p, {"x": x, "y": y}),
                    model.loss_fn(p, test),
                    model.accuracy(p, test),
                )
            return (p, s), out

        return jax.lax.scan(epoch, (params, opt.init(params)), jax.random.split(key, epochs))

    return run, per_epoch


def _optdyn(model, data, epochs: int, metrics: bool, seeds: int = 1):
    """The same training through the simulator (train() when metrics=True)."""
    if metrics:

        def run(params, key):
            res = itg.train(
                model,
                data,
                itg.adam(LR),
                epochs=epochs,
                batch_size=BATCH,
                seeds=seeds,
                key=key,
                params=params,
                params_per_seed=True,
            )
            return res.train_loss

        return run
    U = itg.training_landscape(model, data)
    noise = itg.minibatch(BATCH)
    steps = epochs * (U.n_samples // BATCH)

    def run(params, key):
        traj = itg.simulate(
            itg.adam(LR),
            U,
            params,
            steps,
            key,
            noise=noise,
            record_every=steps,
            record_positions=False,
            ensemble=True,
        )
        return traj.final_state.params

    return run


def _torch_row(model, data, epochs: int, repeats: int, jax_rate: float) -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    x = torch.tensor(data.x_train)
    y = torch.tensor(data.y_train, dtype=torch.long)
    per_epoch = len(x) // BATCH

    def run():
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for i in range(per_epoch):
                idx = perm[i * BATCH : (i + 1) * BATCH]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
                opt.step()
        return jnp.zeros(())

    t = _best(run, repeats)
    rate = epochs * per_epoch / t
    return {
        "workload": "PyTorch eager loop (reference), 1 seed",
        "optdyn_steps_per_s": jax_rate,
        "baseline_steps_per_s": rate,
        "ratio": jax_rate / rate,
    }


def run(quick: bool = False) -> list[dict]:
    """Benchmark rows: {workload, optdyn_steps_per_s, baseline_steps_per_s, ratio, ...}."""
    epochs, repeats = (4, 2) if quick else (40, 5)
    data = digits()
    model = mlp(SIZES, activation="relu")
    key = jax.random.key(0)
    p1 = itg.training.init_params(model, key, 1)
    single = jax.tree.map(lambda a: a[0], p1)
    rows = []
    for metrics in (False, True):
        base, per_epoch = _baseline(model, data, epochs, metrics)
        ours = _optdyn(model, data, epochs, metrics)
        jax.block_until_ready(base(single, key))  # compile both first
        jax.block_until_ready(ours(p1, key))
        t_base, t_ours = [], []
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            t_base.append(_best(lambda f=base: f(single, key), 1))
            t_ours.append(_best(lambda f=ours: f(p1, key), 1))
        steps = epochs * per_epoch
        r_ours, r_base = steps / min(t_ours), steps / min(t_base)
        rows.append(
            {
                "workload": (
                    "Adam epoch + per-epoch metrics (train vs hand loop)"
                    if metrics
                    else "Adam epoch, no per-epoch metrics (simulate vs hand loop)"
                ),
                "optdyn_steps_per_s": r_ours,
                "baseline_steps_per_s": r_base,
                "ratio": r_ours / r_base,
                "within_1.2x": bool(r_ours * 1.2 >= r_base),
                "epochs": epochs,
                "steps_per_epoch": per_epoch,
                "repeats": repeats,
            }
        )
    # 16 seeds in one vmapped call against one seed alone: the cost per seed
    p16 = itg.training.init_params(model, key, 16)
    one = _optdyn(model, data, epochs, True, seeds=1)
    many = _optdyn(model, data, epochs, True, seeds=16)
    jax.block_until_ready(one(p1, key))
    jax.block_until_ready(many(p16, key))
    t1, t16 = [], []
    for _ in range(repeats):
        t1.append(_best(lambda: one(p1, key), 1))
        t16.append(_best(lambda: many(p16, key), 1))
    steps = epochs * (data.n_train // BATCH)
    per_seed_16, per_seed_1 = 16 * steps / min(t16), steps / min(t1)
    rows.append(
        {
            "workload": "16 seeds vmapped in one train call vs 1 seed alone (per seed)",
            "optdyn_steps_per_s": per_seed_16,
            "baseline_steps_per_s": per_seed_1,
            "ratio": per_seed_16 / per_seed_1,
            "cost_per_seed_no_more_than_one_seed": bool(per_seed_16 >= per_seed_1),
            "epochs": epochs,
            "repeats": repeats,
        }
    )
    torch_row = _torch_row(model, data, epochs, repeats, rows[0]["optdyn_steps_per_s"])
    if torch_row is not None:
        rows.append(torch_row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_mlp")
    parser.add_argument("--quick", action="store_true", help="few epochs and repeats")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    print(f"{'workload':<68} {'optdyn/s':>10} {'baseline/s':>11} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['workload']:<68} {r['optdyn_steps_per_s']:>10.0f} "
            f"{r['baseline_steps_per_s']:>11.0f} {r['ratio']:>6.2f}"
        )
    try:
        import torch  # noqa: F401
    except ImportError:
        print("(PyTorch not installed: no PyTorch reference row)")
    print(f"device: {jax.devices()[0].device_kind}, {np.__name__} {np.__version__}")


if __name__ == "__main__":
    main()
