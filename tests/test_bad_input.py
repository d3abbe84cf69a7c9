"""Bad input is refused at the door, before any compile: a ValueError or TypeError whose
message names the argument (or the file), and no NaN reaches a caller."""

import gzip
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.integrators.sharding import particle_mesh, simulate_sharded
from optdyn.landscape import views
from optdyn.landscape.validate import check_unit_interval

ROSEN = ls.rosenbrock()
X = jnp.zeros(2)
KEY = jax.random.key(0)
SQ = lambda p: jnp.sum(p**2)  # noqa: E731
GD = itg.sgd(0.01)


def _sim(**kw):
    args = {"optimizer": GD, "landscape": ROSEN, "x0": X, "steps": 5} | kw
    return itg.simulate(**args)


# ------------------------------------------------------------------ factories (no compile)
FACTORIES = [
    # (build, exception, text the message must contain)
    (lambda: itg.sgd([]), ValueError, "lr=[]"),
    (lambda: itg.sgd([[0.1, 0.2]]), ValueError, "lr="),
    (lambda: itg.sgd(lr=np.zeros((2, 2))), ValueError, "lr has shape (2, 2)"),
    (lambda: itg.sgd(lr=jnp.zeros(0)), ValueError, "lr has shape (0,)"),
    (lambda: itg.sgd(0.1, temperature=[]), ValueError, "temperature=[]"),
    (lambda: itg.sgd("fast"), ValueError, "lr='fast'"),
    (lambda: itg.sgd(None), ValueError, "lr=None"),
    (lambda: itg.sgd(jnp.float32(-0.1)), ValueError, "lr="),
    (lambda: itg.sgd(np.float64(math.nan)), ValueError, "lr="),
    (lambda: itg.momentum(jnp.float32(-1.0)), ValueError, "lr="),
    (lambda: itg.adam(1e-3, eps=np.float32(0)), ValueError, "eps="),
    (lambda: itg.baoab(dt=-0.1, friction=1.0), ValueError, "dt="),
    (lambda: itg.baoab(dt=0.1, friction=1.0, mass=0.0), ValueError, "mass="),
    (lambda: itg.underdamped_langevin(dt=math.inf, friction=1.0), ValueError, "dt="),
    (lambda: itg.to_physical(-1.0, 0.9), ValueError, "lr=-1.0"),
    (lambda: itg.to_physical(0.1, 1.0), ValueError, "momentum=1.0"),
    (lambda: itg.to_physical(0.1, 0.9, mass=-2.0), ValueError, "mass=-2.0"),
    (lambda: itg.to_physical(math.nan, 0.9), ValueError, "lr=nan"),
    (lambda: itg.to_optimizer(0.0, 1.0), ValueError, "dt=0.0"),
    (lambda: itg.to_optimizer(0.1, -1.0), ValueError, "friction=-1.0"),
    (lambda: itg.to_optimizer(0.1, 1.0, mass=0.0), ValueError, "mass=0.0"),
    (lambda: itg.adam(learning_rate=1e-3), ValueError, "learning_rate"),
    (lambda: itg.sgd(0.1, temprature=1.0), ValueError, "temprature"),
    (lambda: itg.gaussian(-1.0), ValueError, "covariance="),
    (lambda: itg.gaussian(1.0, batch_size=0), ValueError, "batch_size=0"),
    (lambda: itg.minibatch(0), ValueError, "batch_size=0"),
    (lambda: itg.minibatch(8, replace="yes"), ValueError, "replace="),
    (lambda: itg.schedules.exponential(-1.0, 0.9), ValueError, "init_value="),
    (lambda: itg.schedules.cosine(1.0, 0), ValueError, "decay_steps=0"),
    (lambda: itg.schedules.geometric_cooling(1.0, 1.5), ValueError, "factor=1.5"),
    (lambda: itg.get("adamm"), ValueError, "adam"),
]


@pytest.mark.parametrize("build, exc, text", FACTORIES)
def test_factory_refuses(build, exc, text):
    with pytest.raises(exc) as info:
        build()
    assert text in str(info.value)


@pytest.mark.parametrize(
    "value", [jnp.float32(0.1), np.float64(0.1), jnp.asarray(0.1), np.float16(0.1), 1]
)
def test_jax_and_numpy_scalars_are_numbers(value):
    assert itg.sgd(value).hyperparams["lr"] is value
    itg.momentum(value, momentum=jnp.float32(0.9))
    itg.adam(value, b2=np.float64(0.999))


def test_to_physical_stays_real():
    out = itg.to_physical(0.01, 0.9)
    assert all(isinstance(v, float) for v in out.values())
    assert out["dt"] == pytest.approx(0.1) and out["friction"] == pytest.approx(1.0)


def test_rounding_to_one_follows_the_working_dtype():
    """1 − 1e-9 is below 1 in float64 but 1.0 in float32: the factory (x64 is on in the tests)
    accepts it, and `check_unit_interval` refuses it for float32 and bfloat16."""
    assert np.float32(1 - 1e-9) == 1.0 and np.float64(1 - 1e-9) < 1.0
    itg.adam(1e-2, b2=1 - 1e-9)
    check_unit_interval("b2", 1 - 1e-9, np.float64)
    check_unit_interval("b2", 1 - 1e-7, np.float32)  # 0.9999999 is below 1 in float32
    for dtype in (np.float32, jnp.bfloat16):
        with pytest.raises(ValueError, match="b2=0.999999999 .*rounds to 1.0 in"):
            check_unit_interval("b2", 1 - 1e-9, dtype)


F32 = jnp.zeros(2, jnp.float32)


@pytest.mark.parametrize(
    "optimizer, text",
    [
        (lambda: itg.momentum(1e-2, momentum=1 - 1e-9), "momentum=0.999999999"),
        (lambda: itg.nesterov(1e-2, momentum=1 - 1e-10), "momentum="),
        (lambda: itg.adam(1e-2, b2=1 - 1e-9), "b2=0.999999999"),
        (lambda: itg.adam(1e-2, b1=1 - 1e-9), "b1="),
        (lambda: itg.adamw(1e-2, b2=np.float64(1 - 1e-9)), "b2="),
        (lambda: itg.rmsprop(1e-2, decay=1 - 1e-9), "decay="),
        (lambda: itg.adam(1e-2, b2=[0.9, 1 - 1e-9]), "b2="),
        (lambda: itg.momentum(0.01, lambda k: 1 - 1e-9 + 0 * k), "momentum="),
    ],
)
def test_values_that_round_to_one_in_float32_are_refused(optimizer, text):
    with pytest.raises(ValueError, match="float32") as info:
        _sim(optimizer=optimizer(), x0=F32)
    assert text in str(info.value)


# ------------------------------------------------------------------ simulate (no compile)
def _noise_vector(x):
    return x**2


SIMULATE = [
    (dict(x0=jnp.array([jnp.nan, 0.0])), ValueError, "x0"),
    (dict(x0=jnp.array([jnp.inf, 0.0])), ValueError, "x0"),
    (dict(x0=jnp.array([-jnp.inf, 0.0])), ValueError, "x0"),
    (dict(x0=jnp.array([1e30, 1e30])), ValueError, "bound"),
    (dict(x0=jnp.array([[0.0, 0.0], [0.0, jnp.nan]])), ValueError, "particle 1"),
    (dict(x0=jnp.array([2.0, 0.0]), bound=1.0), ValueError, "bound=1"),
    (dict(x0=np.array([np.nan, 0.0])), ValueError, "x0"),
    (dict(x0=[math.nan, 0.0]), ValueError, "x0"),
    (dict(x0=jnp.zeros((0, 2))), ValueError, "x0 has shape (0, 2)"),
    (dict(x0=np.zeros((0, 2))), ValueError, "x0 has shape (0, 2)"),
    (dict(x0=jnp.zeros(3)), ValueError, "x0 has shape (3,)"),
    (dict(x0=jnp.zeros((2, 2, 2))), ValueError, "x0 has shape"),
    (dict(x0=[]), ValueError, "x0"),
    (dict(x0=["a", "b"]), TypeError, "x0"),
    (dict(x0=jnp.zeros(2, jnp.complex64)), TypeError, "x0"),
    (dict(x0=None), ValueError, "x0"),
    (dict(key=0), TypeError, "key=0"),
    (dict(key=42), TypeError, "jax.random.key(42)"),
    (dict(key="seed"), TypeError, "key="),
    (dict(key=jax.random.split(KEY, 3)), ValueError, "key has shape (3,)"),
    (dict(key=jnp.zeros(3, jnp.uint32)), ValueError, "key has dtype uint32"),
    (dict(key=jnp.zeros(2, jnp.float32)), ValueError, "key has dtype float32"),
    (dict(observe={"o": 3}), TypeError, "observe['o']=3"),
    (dict(observe={"o": None}), TypeError, "observe['o']"),
    (dict(observe={1: SQ}), TypeError, "observe key 1"),
    (dict(observe=[SQ]), TypeError, "observe="),
    (dict(observe={"o": lambda p, q: p}), TypeError, "observe['o']"),
    (dict(stream=3), ValueError, "stream=3"),
    (dict(stream={"m": 3}), ValueError, "stream['m']=3"),
    (dict(steps=0), ValueError, "steps=0"),
    (dict(steps=2.5), ValueError, "steps=2.5"),
    (dict(steps=-1), ValueError, "steps=-1"),
    (dict(steps=True), ValueError, "steps=True"),
    (dict(record_every=0), ValueError, "record_every=0"),
    (dict(bound=-1.0), ValueError, "bound=-1.0"),
    (dict(bound=math.nan), ValueError, "bound=nan"),
    (dict(prng_impl="rbg"), ValueError, "prng_impl='rbg'"),
    (dict(ensemble=True), ValueError, "ensemble=True"),
    (dict(optimizer="sgd"), ValueError, "optimizer='sgd'"),
    (dict(optimizer=None), ValueError, "optimizer=None"),
    (dict(landscape=3), ValueError, "landscape=3"),
    (dict(landscape="rosenbrok"), ValueError, "rosenbrock"),
    (dict(landscape=_noise_vector), ValueError, "landscape energy"),
    (dict(landscape=lambda x, y: x), TypeError, "landscape"),
    (dict(landscape=lambda x: x["a"]), TypeError, "landscape"),
    (dict(landscape=lambda x: jnp.sum(x) > 0), ValueError, "landscape energy"),
    (dict(optimizer=itg.sgd(lambda k: -0.01)), ValueError, "at step 0"),
    (dict(optimizer=itg.sgd(lambda k: 0.01 - 0.005 * k)), ValueError, "at step 3"),
    (dict(optimizer=itg.sgd(lambda k: 0.01 / (2 - k))), ValueError, "at step 2"),
    (dict(optimizer=itg.sgd(0.01, lambda k: -1.0 + 0 * k)), ValueError, "temperature="),
    (dict(optimizer=itg.sgd(0.01, lambda k: jnp.log(1.0 - k))), ValueError, "temperature="),
    (dict(optimizer=itg.langevin(lambda k: jnp.nan * k)), ValueError, "lr="),
    (dict(optimizer=itg.momentum(0.01, lambda k: 1.0 + 0 * k)), ValueError, "momentum="),
    (dict(optimizer=itg.adam(lambda k: -1e-3 * k)), ValueError, "at step 1"),
    (dict(optimizer=itg.sgd(lambda k: jnp.ones(3))), ValueError, "scalar"),
    (dict(optimizer=itg.sgd(lambda: 0.1)), ValueError, "lr="),
    (dict(noise=itg.minibatch(4)), ValueError, "minibatch"),
]


@pytest.mark.parametrize("kwargs, exc, text", SIMULATE)
def test_simulate_refuses(kwargs, exc, text):
    with pytest.raises(exc) as info:
        _sim(**kwargs)
    assert text in str(info.value)


def test_refusals_happen_before_compiling():
    from optdyn.integrators.simulate import _runner

    size = _runner()._cache_size()
    for kwargs, exc, _ in SIMULATE[:30]:
        with pytest.raises(exc):
            _sim(**kwargs)
    assert _runner()._cache_size() == size


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(x0=jnp.zeros((100_000, 2)), steps=1_000_000),
        dict(x0=jnp.zeros((1000, 2)), steps=10**9),
        dict(optimizer=itg.sgd([0.1] * 1000), x0=jnp.zeros((1000, 2)), steps=10**6),
        dict(x0=jnp.zeros((10, 2)), steps=10**6, observe={"big": lambda p: jnp.zeros(10**5)}),
    ],
)
def test_records_beyond_memory_are_refused_before_allocation(kwargs):
    with pytest.raises(ValueError) as info:
        _sim(**kwargs)
    msg = str(info.value)
    assert "record_every" in msg and "record=False" in msg and "stream=" in msg
    assert "TB" in msg or "GB" in msg


def test_memory_limit_is_overridable(monkeypatch):
    monkeypatch.setenv("OPTDYN_MEMORY_LIMIT", "1000")
    with pytest.raises(ValueError, match=r"2 kB .*1 kB"):
        _sim(x0=jnp.zeros((10, 2), jnp.float32), steps=9)  # 10 records x 10 x 20 bytes
    monkeypatch.setenv("OPTDYN_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="OPTDYN_MEMORY_LIMIT='lots'"):
        _sim()


# ------------------------------------------------------------------ sharding
@pytest.mark.parametrize(
    "mesh, exc, text",
    [
        (3, TypeError, "mesh=3"),
        ("particles", TypeError, "mesh='particles'"),
        (jax.sharding.Mesh(np.asarray(jax.devices()), ("x",)), ValueError, "mesh has axes"),
    ],
)
def test_simulate_sharded_refuses_a_bad_mesh(mesh, exc, text):
    with pytest.raises(exc) as info:
        simulate_sharded(GD, ROSEN, jnp.zeros((4, 2)), 5, mesh=mesh)
    assert text in str(info.value)


def test_simulate_sharded_checks_x0():
    with pytest.raises(ValueError, match="x0"):
        simulate_sharded(GD, ROSEN, jnp.full((4, 2), jnp.nan), 5, mesh=particle_mesh())


# ------------------------------------------------------------------ landscapes and views
LANDSCAPES = [
    (lambda: ls.from_function(lambda x: x**2, dim=2), ValueError, "energy must return"),
    (lambda: ls.from_function(lambda x, y: x, dim=2), TypeError, "energy="),
    (lambda: ls.from_function(lambda x: x[:, 0].sum(), dim=2), ValueError, "energy="),
    (lambda: ls.from_function(3), ValueError, "energy=3"),
    (lambda: ls.from_function(SQ, dim=0), ValueError, "dim=0"),
    (lambda: ls.from_function(SQ, name=""), ValueError, "name=''"),
    (lambda: ls.from_function(SQ, dim=2, bounds=[(1, 0), (0, 1)]), ValueError, "bounds[0]"),
    (lambda: ls.get("rosenbrok"), ValueError, "rosenbrock"),
    (lambda: ls.valley(-1.0), ValueError, "="),
    (lambda: ls.double_well(barrier=-1.0), ValueError, "barrier="),
    (lambda: ls.mlp([64, 0, 10]), ValueError, "sizes[1]=0"),
    (lambda: ls.mlp([64, 10], activation="rellu"), ValueError, "relu"),
    (lambda: ls.mlp([64, 10], loss="maee"), ValueError, "loss='maee'"),
    (lambda: ls.mixed_precision(SQ, jnp.int8, 1.0), TypeError, "compute_dtype="),
    (lambda: ls.mixed_precision(SQ, "int32", 1.0), TypeError, "compute_dtype='int32'"),
    (lambda: ls.mixed_precision(SQ, "floaty", 1.0), TypeError, "compute_dtype='floaty'"),
    (lambda: ls.mixed_precision(SQ, jnp.float16, 0.0), ValueError, "loss_scale=0.0"),
    (lambda: ls.mixed_precision(3, jnp.float16), TypeError, "loss_fn=3"),
    (lambda: ls.teacher_student(10, 10, dtype=np.int32), TypeError, "dtype="),
    (lambda: ls.teacher_student(0, 10), ValueError, "n_train=0"),
    (lambda: ls.digits(dtype=np.int64), TypeError, "dtype="),
    (lambda: ls.digits(test_fraction=1.5), ValueError, "test_fraction=1.5"),
    (lambda: ls.sharpness(lambda p: p**2, jnp.ones(3)), ValueError, "loss must return"),
    (lambda: ls.sharpness(SQ, jnp.ones(3), key=0), TypeError, "key=0"),
    (lambda: ls.lanczos(SQ, jnp.ones(3), KEY, k=0), ValueError, "k=0"),
    (lambda: ls.lanczos(SQ, jnp.ones(3), KEY, k=3, n_eigs=4), ValueError, "n_eigs=4"),
    (lambda: ls.power_iteration(SQ, jnp.ones(3), jax.random.split(KEY)), ValueError, "key"),
    (lambda: ls.power_iteration(SQ, jnp.ones(3), KEY, iters=0), ValueError, "iters=0"),
    (lambda: ls.hutchinson_trace(SQ, jnp.ones(3), KEY, n_samples=1), ValueError, "n_samples"),
    (lambda: ls.hutchinson_trace(SQ, jnp.ones(3), 7), TypeError, "key=7"),
    (lambda: ls.top_eigenvalues(SQ, jnp.ones(3), KEY, method="arnoldi"), ValueError, "lanczos"),
    (lambda: ls.hvp(3, jnp.ones(3), jnp.ones(3)), TypeError, ""),
    (lambda: views.interpolate(lambda p: p, jnp.ones(3), jnp.zeros(3)), ValueError, "loss_fn"),
    (lambda: views.interpolate(SQ, jnp.ones(3), jnp.zeros(2)), ValueError, "params_a"),
    (lambda: views.interpolate(SQ, jnp.ones(3), jnp.zeros(3), n=1), ValueError, "n=1"),
    (lambda: views.interpolate(SQ, jnp.ones(3), jnp.zeros(3), chunk=0), ValueError, "chunk=0"),
    (lambda: views.random_slice(SQ, jnp.ones(3), 0), TypeError, "key=0"),
    (lambda: views.random_slice(lambda p, b: p, jnp.ones(3), KEY), TypeError, "loss_fn"),
    (lambda: views.random_slice(SQ, jnp.ones(3), KEY, span=0.0), ValueError, "span=0.0"),
    (lambda: views.random_slice(SQ, jnp.ones(3), KEY, biases="keep"), ValueError, "biases"),
    (lambda: views.pca_plane(jnp.ones((1, 3))), ValueError, "positions"),
    (lambda: views.pca_plane(jnp.ones((5, 3)), center=jnp.ones(2)), ValueError, "center"),
]


@pytest.mark.parametrize("build, exc, text", LANDSCAPES)
def test_landscape_and_view_refuse(build, exc, text):
    with pytest.raises(exc) as info:
        build()
    assert text in str(info.value)


@pytest.fixture(scope="module")
def plane():
    path = jnp.stack(
        [
            jnp.array([1.0, 0.0, 0.0]) * t + jnp.array([0, 1.0, 0]) * t**2
            for t in jnp.linspace(0, 1, 5)
        ]
    )
    return views.pca_plane(path)


@pytest.mark.parametrize(
    "call, text",
    [
        (lambda pl: views.pca_slice(lambda p: p, pl), "loss_fn"),
        (lambda pl: views.pca_slice(SQ, pl, n=1), "n=1"),
        (lambda pl: views.pca_slice(SQ, pl, margin=-1.0), "margin=-1.0"),
        (lambda pl: views.honest_view(lambda p: p, pl.coords, pl), "loss_fn"),
        (lambda pl: views.honest_view(SQ, pl.coords, pl, chunk=-2), "chunk=-2"),
    ],
)
def test_pca_views_refuse(plane, call, text):
    with pytest.raises(ValueError) as info:
        call(plane)
    assert text in str(info.value)


# ------------------------------------------------------------------ data files
def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _npz(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _good(tmp_path):
    return _npz(tmp_path, "good.npz", x=np.arange(60.0).reshape(20, 3), y=np.arange(20) % 2)


def _csv_rows(n=20):
    return "".join(f"{i % 2},{i},{2 * i}\n" for i in range(n))


def _damaged(tmp_path):
    raw = bytearray(_good(tmp_path).read_bytes())
    raw[80] ^= 0xFF  # inside the first member's data: its CRC no longer matches
    return _write(tmp_path, "crc.npz", bytes(raw))


FILES = [
    (lambda t: ls.load_npz(t / "missing.npz"), FileNotFoundError, "missing.npz"),
    (lambda t: ls.load_npz(t), ValueError, "is not a regular file"),
    (lambda t: ls.load_npz(_write(t, "empty.npz", b"")), ValueError, "empty.npz"),
    (lambda t: ls.load_npz(_write(t, "z.npz", gzip.compress(b"x"))), ValueError, "gzip"),
    (lambda t: ls.load_npz(_write(t, "text.npz", "hello")), ValueError, "text.npz"),
    (lambda t: ls.load_npz(_damaged(t)), ValueError, "crc.npz"),
    (
        lambda t: ls.load_npz(_write(t, "cut.npz", _good(t).read_bytes()[:200])),
        ValueError,
        "cut.npz",
    ),
    (
        lambda t: ls.load_npz(_npz(t, "obj.npz", x=np.array([{}, {}], object), y=np.ones(2))),
        ValueError,
        "obj.npz",
    ),
    (
        lambda t: ls.load_npz(_npz(t, "s.npz", x=np.float64(1), y=np.float64(2))),
        ValueError,
        "s.npz",
    ),
    (lambda t: ls.load_npz(_npz(t, "k.npz", a=np.ones(3))), ValueError, "k.npz"),
    (
        lambda t: ls.load_npz(_npz(t, "n.npz", x=np.ones((4, 2)), y=np.ones(3))),
        ValueError,
        "n.npz",
    ),
    (
        lambda t: ls.load_npz(_npz(t, "pm.npz", x=np.ones((20, 2)), y=np.arange(20) % 2 * 2 - 1)),
        ValueError,
        "pm.npz",
    ),
    (
        lambda t: ls.load_npz(_npz(t, "nan.npz", x=np.full((4, 2), np.nan), y=np.ones(4))),
        ValueError,
        "nan.npz",
    ),
    (lambda t: ls.load_npz(_good(t), dtype=np.int32), TypeError, "dtype="),
    (lambda t: ls.load_npz(3.5), TypeError, "path=3.5"),
    (lambda t: ls.load_csv(t / "missing.csv"), FileNotFoundError, "missing.csv"),
    (lambda t: ls.load_csv(_write(t, "empty.csv", "")), ValueError, "empty.csv"),
    (lambda t: ls.load_csv(_write(t, "z.csv", gzip.compress(b"label\n"))), ValueError, "gzip"),
    (lambda t: ls.load_csv(_write(t, "bin.csv", b"\xff\xfe\x00la")), ValueError, "bin.csv"),
    (lambda t: ls.load_csv(_write(t, "h.csv", "a,b\n1,2\n")), ValueError, "h.csv"),
    (lambda t: ls.load_csv(_write(t, "r.csv", "label,a\n0,1,2\n")), ValueError, "r.csv"),
    (lambda t: ls.load_csv(_write(t, "w.csv", "label,a\n0,abc\n")), ValueError, "w.csv"),
    (lambda t: ls.load_csv(_write(t, "o.csv", "label,a\n")), ValueError, "o.csv"),
    (lambda t: ls.load_csv(_write(t, "pm.csv", "label,a\n-1,2\n1,3\n")), ValueError, "pm.csv"),
    (
        lambda t: ls.load_csv(_write(t, "i.csv", "label,a,b\n" + _csv_rows()), dtype=np.int32),
        TypeError,
        "dtype=",
    ),
    (lambda t: ls.load_csv(_write(t, "q.csv", "label,a\n0,nan\n")), ValueError, "q.csv"),
]


@pytest.mark.parametrize("load, exc, text", FILES)
def test_data_loaders_name_the_file(tmp_path, load, exc, text):
    with pytest.raises(exc) as info:
        load(tmp_path)
    assert text in str(info.value)


def test_byte_order_mark_is_read_as_text(tmp_path):
    path = _write(tmp_path, "bom.csv", "\ufefflabel,a,b\n" + _csv_rows())
    ds = ls.load_csv(path)
    assert ds.n_features == 2 and ds.n_classes == 2


def test_plus_minus_one_labels_are_refused_by_both_loaders(tmp_path):
    """{−1, 1} is no longer a regression task in load_npz while load_csv refuses it."""
    y = np.arange(20) % 2 * 2 - 1
    npz = _npz(tmp_path, "pm.npz", x=np.arange(40.0).reshape(20, 2), y=y)
    csv = _write(tmp_path, "pm.csv", "label,a\n" + "".join(f"{v},{i}\n" for i, v in enumerate(y)))
    for load in (lambda: ls.load_npz(npz), lambda: ls.load_csv(csv)):
        with pytest.raises(ValueError, match=r"labels must be integers >= 0.*\{-1, 1\}"):
            load()
    # the same labels mapped to {0, 1} load as two classes in both
    np.savez(npz, x=np.arange(40.0).reshape(20, 2), y=(y + 1) // 2)
    assert ls.load_npz(npz).n_classes == 2


# ------------------------------------------------------------------ train (no compile)
@pytest.fixture(scope="module")
def small_digits():
    return ls.digits().subset(200)


TRAIN = [
    (dict(model=ls.mlp([64, 16, 3])), ValueError, "model has 3 outputs"),
    (dict(model=ls.mlp([10, 16, 10])), ValueError, "model takes 10 inputs"),
    (dict(model=ls.mlp([64, 16, 10], loss="mse")), None, None),
    (dict(model=ls.mlp([64, 16, 5], loss="mse")), ValueError, "model has 5 outputs"),
    (dict(model=SQ), ValueError, "params"),
    (dict(model=3), TypeError, "model=3"),
    (dict(model=lambda p, b: p["w"] @ b["x"].T, params={"w": jnp.ones(64)}), ValueError, "loss_fn"),
    (dict(data={"x": np.ones((10, 64)), "y": np.ones(9, np.int32)}), ValueError, "data"),
    (dict(data={"x": np.ones((0, 64)), "y": np.ones(0, np.int32)}), ValueError, "data"),
    (dict(data=[1, 2, 3]), TypeError, "data"),
    (dict(epochs=0), ValueError, "epochs=0"),
    (dict(batch_size=0), ValueError, "batch_size=0"),
    (dict(batch_size=10**6), ValueError, "batch_size=1000000"),
    (dict(seeds=0), ValueError, "seeds=0"),
    (dict(fuse=-1), ValueError, "fuse=-1"),
    (dict(optimizer=itg.sgd(lambda k: -0.1)), ValueError, "lr="),
    (dict(key=0), TypeError, "key=0"),
    (dict(key=jax.random.split(KEY)), ValueError, "key has shape (2,)"),
]


@pytest.mark.parametrize("kwargs, exc, text", [c for c in TRAIN if c[1] is not None])
def test_train_refuses(small_digits, kwargs, exc, text):
    args = dict(model=ls.mlp([64, 16, 10]), data=small_digits, optimizer=itg.sgd(0.1))
    args |= kwargs
    model, data, opt = args.pop("model"), args.pop("data"), args.pop("optimizer")
    args = {"epochs": 1, "batch_size": 50} | args
    with pytest.raises(exc) as info:
        itg.train(model, data, opt, **args)
    assert text in str(info.value)


def test_teacher_student_width_checked():
    data = ls.teacher_student(40, 40, sizes=(10, 8, 1))
    with pytest.raises(ValueError, match="model has 3 outputs.*1 per sample"):
        itg.train(ls.mlp([10, 8, 3], loss="mse"), data, itg.sgd(0.1), epochs=1, batch_size=20)


# ------------------------------------------------------------------ no NaN reaches a caller
def test_diverged_records_hold_their_last_finite_value():
    """GD on U = ½λx² with ηλ = 3: x_k = (−2)^k, beyond bound = 1e30 at step 100 (2^99 <
    1e30 < 2^100). In float32 U = 50·4^k overflows from k = 62 on: every record stays finite,
    the loss holds its last finite value 50·2^122, and the frozen particle's grad_norm is
    λ·2^99 (its value at the frozen position) for every record after the divergence."""
    quad = ls.from_function(lambda x: 0.5 * 100.0 * jnp.sum(x**2), dim=1)
    x0 = jnp.array([[1.0], [0.0]], jnp.float32)
    traj = itg.simulate(itg.sgd(0.03), quad, x0, 120, bound=1e30)
    assert traj.diverged_step.tolist() == [100, -1]
    for a in (traj.loss, traj.grad_norm, traj.positions):
        assert np.all(np.isfinite(np.asarray(a)))
    k = np.arange(100)
    np.testing.assert_allclose(np.abs(traj.positions[0, :100, 0]), 2.0**k, rtol=1e-5)
    loss, gnorm = np.asarray(traj.loss[0], np.float64), np.asarray(traj.grad_norm[0])
    np.testing.assert_allclose(loss[:62], 50.0 * 4.0 ** k[:62], rtol=1e-5)
    assert np.all(loss[62:] == loss[61])
    np.testing.assert_allclose(gnorm[:100], 100.0 * 2.0**k, rtol=1e-5)
    assert np.all(gnorm[100:] == gnorm[99])


def test_an_x0_checked_once_is_checked_again_under_a_tighter_bound():
    """simulate remembers the last x0 array found within its bound (a loop of calls skips
    the read-back); the same array under a smaller bound is checked again."""
    x0 = jnp.array([2.0, 0.0])
    itg.simulate(itg.sgd(0.01), ls.get("rosenbrock"), x0, 2)  # within the default 1e8
    itg.simulate(itg.sgd(0.01), ls.get("rosenbrock"), x0, 2, bound=1e9)  # remembered
    with pytest.raises(ValueError, match="bound=1"):
        itg.simulate(itg.sgd(0.01), ls.get("rosenbrock"), x0, 2, bound=1.0)


def test_the_default_key_made_inside_a_jit_does_not_leak():
    """The default key is made once; made first under a jit it must still be a concrete key
    (a cached tracer would break every later call without a key)."""
    from optdyn.integrators import _default_key

    _default_key._key_zero.cache_clear()
    inside = jax.jit(lambda x: itg.simulate(itg.sgd(0.01), ls.get("rosenbrock"), x, 2).loss)
    inside(jnp.zeros(2))
    traj = itg.simulate(itg.sgd(0.01), ls.get("rosenbrock"), jnp.zeros(2), 2)
    assert np.all(np.isfinite(traj.loss))
