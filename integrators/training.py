r"""Training a network is simulating a particle: `train` is `simulate` on a finite-sum landscape.

The training loss U(θ) = (1/N)Σᵢ ℓ(θ, sᵢ) is the potential, the parameters θ (any pytree)
the particle, shuffled mini-batches of B samples without replacement the heat bath
(`landscape.minibatch`), and the optimizer the integrator. One *epoch* is N // B steps; the
simulator records once per epoch, so the per-epoch metrics are the records of one jitted
`lax.scan`:

    result = train(mlp((64, 50, 10), "sigmoid"), digits(), sgd(0.1),
                   epochs=50, batch_size=100, seeds=4)
    result.test_accuracy            # (4, 51): per seed, per epoch (epoch 0 = initialisation)

Seeds are an ensemble axis (`simulate(..., ensemble=True)`): each seed has its own
initialisation and its own shuffling. A hyperparameter given as a list (`sgd([0.05, 0.1])`)
is swept in the same call (a leading sweep axis). A grid of batch sizes needs one call per
B: the batch shape and the number of steps per epoch are static shapes of the compiled scan.

The textbook loop's other parts are the physics of the same particle: the validation loss
(`Dataset.with_validation`) is watched after every epoch; early stopping takes a member out
of the heat bath and freezes it, exactly as a diverged particle is frozen, inside the same
jitted scan (`integrators.stopping`); L2 weight decay (`mlp(..., weight_decay=λ)`) adds the
harmonic confining potential (λ/2)|W|² to U; a checkpoint is the particle's full phase-space
state (parameters, velocities or moments, the shuffling state, the step), so a resumed run
continues the same trajectory bit for bit.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..landscape.finite_sum import cast_data
from ..landscape.mlp import from_loss
from ..landscape.types import PRNGKey, PyTree
from ..landscape.validate import check_int
from . import checkpoint as ckpt
from ._inputs import check_train_inputs
from .minibatch import minibatch
from .simulate import simulate
from .stopping import EarlyStopping
from .trajectory import Trajectory

# landscape.finite_sum / minibatch / mlp are imported inside the functions: landscape imports
# integrators._types, so importing them here would make the two packages' imports circular.


class TrainResult(NamedTuple):
    """Per-epoch metrics of a training run (a `Trajectory` recorded once per epoch).

    Batch axes `(*sweep, seeds)` lead every array: `sweep` only when the optimizer sweeps a
    hyperparameter; the seed axis is always there (size `seeds`). Then comes the epoch axis.

    Attributes:
      epochs: NumPy (n_epochs + 1,): 0 (initialisation), 1, …, n_epochs.
      iterations_per_epoch: N // B steps per epoch.
      train_loss: the full training loss U(θ) after each epoch (weight decay included).
      test_loss: the loss on the test set (None without one).
      train_accuracy: accuracy on the full training set (None for regression / no accuracy).
      test_accuracy: accuracy on the test set (None without a test set or accuracy).
      grad_norm: |∇U(θ)| of the full training loss after each epoch.
      observed: every recorded metric by name, including the user's `metrics`.
      final_params: parameters after the last epoch, with the batch axes.
      diverged: boolean (*sweep, seeds): the run produced non-finite parameters or a
        non-finite loss (frozen; its later metrics repeat the last finite values).
      trajectory: the underlying `Trajectory` (steps counted in iterations; the last
        segment's when checkpointing).
      val_loss: the loss on the validation set (None without one).
      val_accuracy: accuracy on the validation set (None without one or accuracy).
      stop_epoch: int (*sweep, seeds): the epoch at which early stopping froze the member,
        or −1.
      best_epoch: int (*sweep, seeds): the epoch of the best watched score (validation loss
        by default, the training loss without a validation set, or the rule's metric).
      best_params: the parameters at `best_epoch`, with the batch axes.
      diverged_epoch: int (*sweep, seeds): the first epoch whose record was non-finite or
        outside the bound, or −1.
    """

    epochs: np.ndarray
    iterations_per_epoch: int
    train_loss: jax.Array
    test_loss: jax.Array | None
    train_accuracy: jax.Array | None
    test_accuracy: jax.Array | None
    grad_norm: jax.Array
    observed: dict
    final_params: PyTree
    diverged: jax.Array
    trajectory: Trajectory
    val_loss: jax.Array | None = None
    val_accuracy: jax.Array | None = None
    stop_epoch: jax.Array | None = None
    best_epoch: jax.Array | None = None
    best_params: PyTree | None = None
    diverged_epoch: jax.Array | None = None


# Landscapes, noise models and metric functions are cached so that a second call with the
# same model and data reuses them: jit caches by their identity, so nothing recompiles.
_CACHE: collections.OrderedDict = collections.OrderedDict()


def _cached(key: tuple, build: Callable[[], Any], keep: tuple = ()) -> Any:
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key][0]
    value = build()
    _CACHE[key] = (value, keep)  # `keep` holds the objects whose id() is in the key alive
    while len(_CACHE) > 64:
        _CACHE.popitem(last=False)
    return value


def _split_data(data):
    """(train, test or None, validation or None) from a `Dataset` or a train batch pytree."""
    if hasattr(data, "train") and hasattr(data, "test"):
        return data.train, data.test, getattr(data, "val", None)
    return data, None, None


def _data_key(batch) -> tuple:
    return tuple(id(a) for a in jax.tree.leaves(batch))


def training_landscape(model, data, name: str | None = None):
    """The finite-sum landscape of `model` on the training part of `data` (cached).

    Args:
      model: an `MLP` (or any object with `loss_fn(params, batch)`) or a bare loss function.
      data: a `Dataset` or a training batch pytree with a leading sample axis.
      name: the landscape's name (default: the data set's name).

    Returns:
      A `landscape.FiniteSum`.
    """

    train = _split_data(data)[0]
    loss_fn = getattr(model, "loss_fn", model)
    name = name or getattr(data, "name", "network")
    return _cached(
        ("landscape", loss_fn, _data_key(train), name),
        lambda: from_loss(loss_fn, train, name=name, description=f"training loss on {name}"),
        keep=(train,),
    )


def _metrics(model, train, test, val=None) -> dict:
    """Default per-epoch observables: train accuracy, validation and test loss and accuracy
    (cached)."""

    loss_fn = getattr(model, "loss_fn", model)
    accuracy = getattr(model, "accuracy", None)
    classify = accuracy is not None and jnp.issubdtype(jnp.asarray(train["y"]).dtype, jnp.integer)

    def on(batch, fn):  # cached per (function, data): runs that share a test set share it
        def build():
            data = jax.tree.map(jnp.asarray, batch)

            def metric(params):
                dtype = jnp.result_type(*jax.tree.leaves(params))
                return fn(params, cast_data(data, dtype))

            return metric

        return _cached(("metric", fn, _data_key(batch)), build, keep=(batch,))

    out = {}
    if classify:
        out["train_accuracy"] = on(train, accuracy)
    for part, batch in (("val", val), ("test", test)):
        if batch is not None:
            out[f"{part}_loss"] = on(batch, loss_fn)
            if classify:
                out[f"{part}_accuracy"] = on(batch, accuracy)
    return out


def init_params(model, key: PRNGKey, seeds: int, dtype=jnp.float32) -> PyTree:
    """`seeds` independent initialisations `model.init(key_i, dtype)` stacked on a leading axis."""
    seeds = check_int("seeds", seeds)
    # one jitted program per (model, seeds, dtype): far fewer compilations. lax.map, not
    # vmap: the same numbers, and XLA compiles the unbatched random draws in about half the
    # time (digits 64-50-10 MLP, 2 seeds: 3.0 s against 5.6 s of CPU)
    init = _cached(
        ("init", model, seeds, jnp.dtype(dtype).name),
        lambda: jax.jit(
            lambda k: jax.lax.map(lambda ki: model.init(ki, dtype), jax.random.split(k, seeds))
        ),
        keep=(model,),
    )
    return init(key)


def train(
    model,
    data,
    optimizer,
    *,
    epochs: int,
    batch_size: int,
    seeds: int = 1,
    key: PRNGKey | None = None,
    params: PyTree | None = None,
    params_per_seed: bool = False,
    replace: bool = False,
    metrics: dict | None = None,
    record_positions: bool = False,
    dtype=jnp.float32,
    early_stopping: EarlyStopping | None = None,
    checkpoint=None,
    checkpoint_every: int | None = None,
    checkpoint_best=None,
    resume_from=None,
    progress: bool | None = None,
    fuse: int | None = None,
) -> TrainResult:
    r"""Train `model` on `data` with `optimizer`: one `integrators.simulate` call.

    The landscape is the finite sum U(θ) = (1/N)Σᵢ ℓ(θ, sᵢ) over the N training samples
    (`landscape.mlp.from_loss`), the noise model `landscape.minibatch(batch_size, replace)`,
    and the simulator records every N // B steps, with `observe=` computing the per-epoch
    metrics (train accuracy, test loss and accuracy, and the user's `metrics`).

    Args:
      model: an `MLP` (anything with `init(key, dtype)`, `loss_fn(params, batch)` and
        optionally `accuracy(params, batch)`), or a bare `loss_fn(params, batch)` returning
        the batch-mean loss (then `params` is required): a Flax/Equinox model wrapped in a
        function trains the same way.
      data: a `landscape.data.Dataset` (train and test) or a training batch pytree whose
        leaves share a leading sample axis.
      optimizer: an `Integrator` (e.g. `integrators.adam(1e-3)`) or an optax transformation;
        hyperparameters given as lists are swept in this call.
      epochs: number of epochs (>= 1).
      batch_size: B (<= N without replacement); one value per call.
      seeds: number of independent runs (initialisation and shuffling), vmapped.
      key: random key (default `jax.random.key(0)`): split into initialisation and run keys.
      params: initial parameters, one pytree: every seed starts there and only the shuffling
        differs (default: `model.init` with an independent key per seed).
      params_per_seed: `params` carries a leading axis of size `seeds`: one start per seed.
      replace: draw each batch with replacement instead of epochs of shuffled batches (an
        "epoch" is then N // B steps all the same).
      metrics: extra per-epoch observables `{name: fn(params) -> array}`.
      record_positions: keep the parameters after every epoch in `trajectory.positions`.
      dtype: parameter dtype of the initialisation (float32 by default; network training
        does not need x64).
      early_stopping: an `EarlyStopping` rule (`integrators.early_stopping(metric,
        patience, min_delta, mode)`) checked after every epoch: each seed and swept value
        stops on its own and is frozen; `stop_epoch`, `best_epoch` and `best_params` report
        it. Without a rule the best epoch is still tracked (validation loss, else training
        loss) and nothing stops.
      checkpoint: a file path: save a checkpoint every `checkpoint_every` epochs (the run
        is split into segments of that many epochs, each one `simulate` call resumed from
        the last, which changes nothing in the numbers). The checkpoint holds the whole
        state, the metrics so far and the best parameters so far; `record_positions` is
        not checkpointed.
      checkpoint_every: epochs between checkpoints (default: only at the end).
      checkpoint_best: a file path (another file than `checkpoint`): save a checkpoint,
        in the same format, after every epoch >= 1 at which the watched score (the
        `early_stopping` metric; else the validation loss, else the training loss)
        reaches a new best for at least one member (seed or swept value). It is the whole
        run at that epoch, not one member: every member's state and its own best
        parameters so far (`best_params`). So the file is the state at the best epoch
        for a single run, and at the latest epoch at which any member improved for an
        ensemble; each member's best is in it. Resuming from it (`resume_from`) with the
        same arguments gives the uninterrupted run's result, and `train(...,
        epochs=<its epoch>, resume_from=it).best_params` reads the best parameters
        without training. The run is then checked after every epoch (one `simulate`
        call per epoch, same compiled program, same numbers).
      resume_from: a checkpoint written by a run with the same arguments: continue it to
        `epochs`; the result equals the uninterrupted run.
      progress: show a progress bar (see `simulate`).
      fuse: steps per fused block, as in `simulate` (None: the engine's plan). 0 checks
        divergence after every step: the smallest program, which compiles in about half
        the time (what the experiments' quick runs use); the numbers are the same up to
        rounding.

    Returns:
      A `TrainResult` with arrays of shape (*sweep, seeds, epochs + 1).
    """

    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    seeds = check_int("seeds", seeds)
    if fuse is not None:
        fuse = check_int("fuse", fuse, minimum=0)
    train_batch, test_batch, val_batch = _split_data(data)
    key = check_train_inputs(model, train_batch, params, params_per_seed, seeds, dtype, key)
    landscape = training_landscape(model, data)
    n = landscape.n_samples
    if not replace and batch_size > n:
        raise ValueError(
            f"batch_size={batch_size} is not allowed: the training set has only {n} samples."
        )
    per_epoch = max(n // batch_size, 1)
    noise = _cached(("noise", batch_size, replace), lambda: minibatch(batch_size, replace))
    key_init, key_run = jax.random.split(key)

    if params is None:
        if not hasattr(model, "init"):
            raise ValueError("params is required when `model` is a bare loss function.")
        params = init_params(model, key_init, seeds, dtype)
    elif not params_per_seed:
        params = jax.tree.map(lambda a: jnp.broadcast_to(a, (seeds,) + jnp.shape(a)), params)

    observe = dict(_metrics(model, train_batch, test_batch, val_batch))
    for name, fn in (metrics or {}).items():
        if name in ("loss", "grad_norm"):
            raise ValueError(f"metrics name {name!r} is taken; pick another name.")
        observe[name] = fn
    rule = early_stopping
    if rule is None:  # track the best epoch, never stop
        rule = EarlyStopping("val_loss" if val_batch is not None else "loss", None, 0.0, "min")
    elif not isinstance(rule, EarlyStopping):
        raise TypeError(
            f"early_stopping={rule!r} is not allowed: give integrators.early_stopping(...)."
        )
    every = epochs if checkpoint_every is None else check_int("checkpoint_every", checkpoint_every)
    if checkpoint_best is not None:
        if checkpoint is not None and _same_file(checkpoint, checkpoint_best):
            raise ValueError(
                f"checkpoint_best={str(checkpoint_best)!r} is the `checkpoint` file: give "
                "the best-score checkpoint its own path."
            )
        every = 1  # watch the best score after every epoch

    def segment(prev, n_epochs):
        return simulate(
            optimizer,
            landscape,
            params,
            n_epochs * per_epoch,
            key_run,
            noise=noise,
            record_every=per_epoch,
            record_positions=record_positions,
            ensemble=True,
            observe=observe,
            resume=prev,
            stop=rule,
            progress=progress,
            fuse=fuse,
        )

    done, traj, parts = 0, None, []
    fingerprint = {"iterations_per_epoch": per_epoch, "seeds": seeds, "batch_size": batch_size}
    if resume_from is not None:
        done, traj, parts = _resume(resume_from, segment, fingerprint, epochs, key_run)
    k = epochs if checkpoint_every is None else checkpoint_every
    while done < epochs:
        n = min(every, epochs - done)
        best_before = None if traj is None else np.asarray(traj.resume_state.stop.best_step)
        traj = segment(traj, n)
        done += n
        parts.append(_records(traj))
        save_every = checkpoint is not None and (n == k or done % k == 0 or done == epochs)
        improved = checkpoint_best is not None and _improved(traj, best_before, per_epoch)
        if save_every or improved:
            tree = _checkpoint_tree(traj, _joined(parts))
            meta = {**fingerprint, "epoch": done}
            if save_every:
                ckpt.save(checkpoint, tree, meta)
            if improved:
                ckpt.save(checkpoint_best, tree, meta)
    # epoch arithmetic on the host in NumPy: an eager jnp op would compile a program per shape
    ds = np.asarray(traj.diverged_step)
    rec = _hold_finite(_joined(parts), ds >= 0)
    obs, watch = rec["observed"], traj.resume_state.stop
    return TrainResult(
        epochs=np.arange(epochs + 1),
        iterations_per_epoch=per_epoch,
        train_loss=rec["loss"],
        test_loss=obs.get("test_loss"),
        train_accuracy=obs.get("train_accuracy"),
        test_accuracy=obs.get("test_accuracy"),
        grad_norm=rec["grad_norm"],
        observed=obs,
        final_params=traj.final_state.params,
        diverged=jnp.asarray(ds >= 0),
        trajectory=traj,
        val_loss=obs.get("val_loss"),
        val_accuracy=obs.get("val_accuracy"),
        stop_epoch=jnp.asarray(np.asarray(watch.stopped_step) // per_epoch),  # −1 // k = −1
        best_epoch=jnp.asarray(np.asarray(watch.best_step) // per_epoch),
        best_params=watch.best_params,
        diverged_epoch=jnp.asarray(np.where(ds >= 0, -(-ds // per_epoch), -1)),
    )


def _same_file(a, b) -> bool:
    return os.path.abspath(os.fspath(a)) == os.path.abspath(os.fspath(b))


def _improved(traj, best_before, per_epoch: int) -> bool:
    """Whether some member reached a new best score in the segment just run (its best step
    moved; before the first segment, a best after epoch 0)."""
    best = np.asarray(traj.resume_state.stop.best_step)
    if best_before is None:
        return bool(np.any(best >= per_epoch))
    return bool(np.any(best != best_before))


def _records(traj) -> dict:
    return {"loss": traj.loss, "grad_norm": traj.grad_norm, "observed": dict(traj.observed)}


def _joined(parts: list) -> dict:
    """The records of consecutive segments, joined on the epoch axis (after the batch axes)."""
    if len(parts) == 1:
        return parts[0]
    axis = jnp.ndim(parts[0]["loss"]) - 1
    return jax.tree.map(lambda *a: jnp.asarray(np.concatenate(a, axis=axis)), *parts)


def _hold_finite(records: dict, diverged) -> dict:
    """A diverged member's non-finite records repeat its last finite record: no NaN reaches
    a plot (a member can only diverge after a finite record, its initialisation)."""
    if not np.any(np.asarray(diverged)):
        return records
    axis = jnp.ndim(records["loss"]) - 1

    def hold(a):
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.inexact) or np.all(np.isfinite(a)):
            return jnp.asarray(a)
        b = np.moveaxis(a, axis, 0)
        ok = np.isfinite(b)
        idx = np.where(ok, np.arange(b.shape[0]).reshape((-1,) + (1,) * (b.ndim - 1)), 0)
        idx = np.maximum.accumulate(idx, axis=0)
        return jnp.asarray(np.moveaxis(np.take_along_axis(b, idx, axis=0), 0, axis))

    return jax.tree.map(hold, records)


def _checkpoint_tree(traj, records: dict) -> dict:
    return {"final_state": traj.final_state, "resume": traj.resume_state, "records": records}


def _resume(path, segment, fingerprint: dict, epochs: int, key):
    """(epochs done, the trajectory to continue, its records) from a checkpoint."""
    meta = ckpt.read_meta(path)
    done = meta.get("epoch")
    mismatch = {k: (meta.get(k), v) for k, v in fingerprint.items() if meta.get(k) != v}
    if mismatch or not isinstance(done, int) or not 1 <= done <= epochs:
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit this run: (checkpoint, run) values "
            f"{mismatch or {'epoch': (done, epochs)}}."
        )
    like = jax.eval_shape(lambda: _checkpoint_tree(t := segment(None, done), _records(t)))
    tree, _ = ckpt.load(path, like=like)
    ends = tree["resume"]
    if not np.array_equal(np.asarray(ends.key), np.asarray(jax.random.key_data(key))):
        raise ValueError(
            f"checkpoint {str(path)!r} was written by a run with another key; resume with "
            "the key of the interrupted run."
        )
    prev = Trajectory(None, None, None, None, None, ends.diverged_step, tree["final_state"])
    return done, prev._replace(resume_state=ends), [tree["records"]]
