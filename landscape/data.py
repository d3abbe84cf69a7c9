r"""Data sets for network landscapes: digits (bundled), MNIST-style CSV, `.npz`, teacher–student.

Every loader returns a `Dataset` with a fixed train/test split and inputs standardised with
the *training* statistics only,

.. math::
    \tilde x_{ij} = (x_{ij} - \mu_j) / s_j, \qquad
    \mu_j = \operatorname{mean}_{i \in \rm train} x_{ij}, \quad
    s_j = \operatorname{std}_{i \in \rm train} x_{ij} \;(s_j = 1 \text{ where } s_j = 0),

so no test information leaks into training. Arrays are NumPy, float32 by default (network
training runs in float32; pass `dtype=np.float64` for double precision).

    ds = digits()                        # 1,437 train / 360 test 8×8 images, 10 classes
    ds.train                             # {"x": (1437, 64) float32, "y": (1437,) int32}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from .mlp import apply_mlp, init_mlp
from .validate import check_float_dtype, check_int, check_nonnegative, check_real


class Dataset(NamedTuple):
    """A supervised data set with a fixed train/test split.

    Attributes:
      name: short identifier, e.g. "digits".
      x_train: inputs, float array (N_train, n_features).
      y_train: integer class labels (N_train,) for classification, or float targets
        (N_train, n_outputs) for regression.
      x_test: inputs, (N_test, n_features).
      y_test: labels or targets, (N_test, ...).
      n_classes: number of classes, or 0 for a regression task.
        info: extra facts (standardisation mean/std, the teacher's parameters, the source file).
      x_val: validation inputs held out of the training set (`with_validation`), or None.
      y_val: validation labels or targets, or None.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    info: dict
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def train(self) -> dict:
        """The training set as a batch `{"x": inputs, "y": labels}` (leading sample axis)."""
        return {"x": self.x_train, "y": self.y_train}

    @property
    def test(self) -> dict:
        """The test set as a batch `{"x": inputs, "y": labels}`."""
        return {"x": self.x_test, "y": self.y_test}

    @property
    def val(self) -> dict | None:
        """The validation set as a batch `{"x": inputs, "y": labels}`, or None."""
        return None if self.x_val is None else {"x": self.x_val, "y": self.y_val}

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Width of the network's output layer: n_classes, or the regression target width."""
        if self.n_classes:
            return self.n_classes
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    def subset(self, n_train: int, seed: int = 0) -> Dataset:
        """The same data set with a random subset of n_train training samples (test and
        validation sets kept)."""
        n_train = check_int("n_train", n_train)
        if n_train > self.n_train:
            raise ValueError(
                f"n_train={n_train} is not allowed: the {self.name!r} training set has only "
                f"{self.n_train} samples."
            )
        idx = np.sort(np.random.default_rng(seed).permutation(self.n_train)[:n_train])
        return self._replace(x_train=self.x_train[idx], y_train=self.y_train[idx])

    def with_validation(self, fraction: float = 0.2, seed: int = 0) -> Dataset:
        """Hold out a validation set from the training set (stratified by class, fixed seed).

        The validation set is the thermometer of generalisation that training never feeds on:
        early stopping and model selection watch it, and the test set stays untouched until
        the end. Inputs standardised by the loader are re-standardised with the statistics
        of the remaining training samples only (no validation information leaks).

        Args:
          fraction: fraction of each class (of the samples, for regression) moved to the
            validation set, in (0, 1).
          seed: seed of the fixed split.

        Returns:
          A `Dataset` with `x_val, y_val` and the smaller training set; the test set is kept.
        """
        if self.x_val is not None:
            raise ValueError(f"the {self.name!r} data set already has a validation set.")
        check_real("fraction", fraction, low=0.0, high=1.0, low_open=True, high_open=True)
        seed = check_int("seed", seed, minimum=0)
        x_tr, y_tr, x_va, y_va = split(self.x_train, self.y_train, fraction, seed)
        info, x_te = self.info, self.x_test
        if "mean" in info and "std" in info:  # undo the loader's scaling, redo it on train only
            mean, std = info["mean"], info["std"]
            raw = [x * std + mean for x in (x_tr, x_va, x_te)]
            x_tr, x_va, mean, std = standardize(raw[0], raw[1])
            x_te = ((raw[2] - mean) / std).astype(x_tr.dtype)
            info = {**info, "mean": mean, "std": std}
        return self._replace(
            x_train=x_tr, y_train=y_tr, x_test=x_te, x_val=x_va, y_val=y_va, info=info
        )


def standardize(x_train: np.ndarray, x_test: np.ndarray):
    """Per-feature (x − μ)/s with the training mean μ and std s (s = 1 for constant features).

    Returns:
      (x_train, x_test, mean, std), all in the dtype of `x_train`.
    """
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1).astype(x_train.dtype)
    return (x_train - mean) / std, (x_test - mean) / std, mean, std


def split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    """A fixed random train/test split (stratified by class when y holds integer labels);
    also the train/validation split of `Dataset.with_validation`."""
    check_real("test_fraction", test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    rng = np.random.default_rng(seed)
    n = len(x)
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1:
        test = []
        for c in np.unique(y):  # the same fraction of every class in the test set
            members = rng.permutation(np.flatnonzero(y == c))
            test.append(members[: int(round(test_fraction * len(members)))])
        test = np.sort(np.concatenate(test))
    else:
        test = np.sort(rng.permutation(n)[: int(round(test_fraction * n))])
    train = np.setdiff1d(np.arange(n), test)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(
            f"test_fraction={test_fraction} leaves an empty train or test set of {n} samples."
        )
    return x[train], y[train], x[test], y[test]


def _finish(name, x_tr, y_tr, x_te, y_te, n_classes, info, dtype, scale: bool) -> Dataset:
    x_tr, x_te = x_tr.astype(dtype), x_te.astype(dtype)
    if scale:
        x_tr, x_te, mean, std = standardize(x_tr, x_te)
        info = {**info, "mean": mean, "std": std}
    if n_classes:
        y_tr, y_te = y_tr.astype(np.int32), y_te.astype(np.int32)
    else:
        y_tr, y_te = y_tr.astype(dtype), y_te.astype(dtype)
    return Dataset(name, x_tr, y_tr, x_te, y_te, int(n_classes), info)


def digits(
    test_fraction: float = 0.2,
    seed: int = 0,
    standardise: bool = True,
    dtype=np.float32,
) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits: 1,797 images, 10 classes (no download).

    Args:
      test_fraction: fraction of each class held out for testing (default 0.2: 1,437 / 360).
      seed: seed of the fixed split.
      standardise: standardise each pixel with the training mean and std.
      dtype: floating dtype of the inputs (float32 by default).

    Returns:
      A `Dataset` named "digits" with 64 features and 10 classes.

    References:
      E. Alpaydin, C. Kaynak, "Optical recognition of handwritten digits", UCI (1998).
    """
    from sklearn.datasets import load_digits

    seed = check_int("seed", seed, minimum=0)
    dtype = check_float_dtype("dtype", dtype)
    raw = load_digits()
    x, y = raw.data.astype(np.float64), raw.target.astype(np.int64)
    parts = split(x, y, test_fraction, seed)
    return _finish(
        "digits", *parts, 10, {"source": "sklearn.datasets.load_digits"}, dtype, standardise
    )


def _check_file(path) -> Path:
    """An existing, non-empty, uncompressed regular file, or an error naming it."""
    try:
        path = Path(os.fspath(path))
    except TypeError:
        raise TypeError(f"path={path!r} is not allowed: it must be a file path.") from None
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist.")
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} is not a regular file.")
    try:
        with path.open("rb") as f:
            magic = f.read(2)
    except OSError as err:
        raise ValueError(f"data file {str(path)!r} cannot be read: {err.strerror}.") from None
    if not magic:
        raise ValueError(f"data file {str(path)!r} is empty.")
    if magic == b"\x1f\x8b":
        raise ValueError(
            f"data file {str(path)!r} is gzip-compressed: decompress it first (gunzip)."
        )
    return path


def _labels(y: np.ndarray, where: str) -> tuple[np.ndarray, int]:
    """Integer class labels 0..K-1 from a float/int column, or a ValueError naming `where`."""
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or np.any(y < 0):
        bad = y[~(np.isfinite(y) & (y == np.round(y)) & (y >= 0))][0]
        raise ValueError(
            f"{where}: labels must be integers >= 0 (class indices 0..K-1; map e.g. "
            f"{{-1, 1}} to {{0, 1}}); found {float(bad):g}."
        )
    y = y.astype(np.int64)
    return y, int(y.max()) + 1


def load_csv(
    path,
    label: str = "label",
    test_fraction: float = 0.2,
    seed: int = 0,
    standardise: bool = True,
    dtype=np.float32,
) -> Dataset:
    """An MNIST-style CSV: a header row, a `label` column and one column per pixel.

    This is the layout of the digit-recognizer `train.csv` (columns label, pixel0 ..
    pixel783, values 0-255) used in many courses; any number of feature columns works.
    The rows are split into train and test with `split` (stratified, fixed seed).

    Args:
      path: the CSV file.
      label: name of the label column (integers 0..K-1).
      test_fraction: fraction held out for testing.
      seed: seed of the fixed split.
      standardise: standardise each feature with the training statistics.
      dtype: floating dtype of the inputs.

    Returns:
      A `Dataset` named after the file.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: empty or gzip-compressed file / not UTF-8 text / no header / no label
        column / no feature column / a non-numeric or missing value (the line is named) /
        ragged rows / labels that are not integers >= 0. A byte-order mark is skipped.
      TypeError: `dtype` is not a floating dtype.
    """
    path = _check_file(path)
    dtype = check_float_dtype("dtype", dtype)
    try:
        return _read_csv(path, label, test_fraction, seed, standardise, dtype)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"data file {str(path)!r} is not UTF-8 text (byte {err.start}): a CSV is text."
        ) from None


def _read_csv(path: Path, label, test_fraction, seed, standardise, dtype) -> Dataset:
    with path.open(encoding="utf-8-sig") as f:  # a byte-order mark is not part of the header
        header = f.readline().strip()
        if not header:
            raise ValueError(f"data file {str(path)!r} is empty: expected a header row.")
        columns = [c.strip().strip('"') for c in header.split(",")]
        if label not in columns:
            shown = ", ".join(columns[:5]) + (", ..." if len(columns) > 5 else "")
            raise ValueError(
                f"data file {str(path)!r} has no {label!r} column (columns: {shown}); an "
                f"MNIST-style CSV has a header row 'label,pixel0,pixel1,...'."
            )
        if len(columns) < 2:
            raise ValueError(f"data file {str(path)!r} has a label column but no feature column.")
        rows = []
        for lineno, line in enumerate(f, start=2):
            if not line.strip():
                continue
            fields = line.strip().split(",")
            if len(fields) != len(columns):
                raise ValueError(
                    f"data file {str(path)!r}, line {lineno}: {len(fields)} values, but the "
                    f"header has {len(columns)} columns."
                )
            try:
                rows.append([float(v) for v in fields])
            except ValueError:
                bad = next(v for v in fields if not _is_float(v))
                raise ValueError(
                    f"data file {str(path)!r}, line {lineno}: {bad!r} is not a number."
                ) from None
    if not rows:
        raise ValueError(f"data file {str(path)!r} has a header but no data rows.")
    table = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(table)):
        r, _ = np.argwhere(~np.isfinite(table))[0]
        raise ValueError(f"data file {str(path)!r}, data row {r + 1}: a value is NaN or inf.")
    j = columns.index(label)
    y, n_classes = _labels(table[:, j], f"data file {str(path)!r}, column {label!r}")
    x = np.delete(table, j, axis=1)
    parts = split(x, y, test_fraction, check_int("seed", seed, minimum=0))
    return _finish(path.stem, *parts, n_classes, {"source": str(path)}, dtype, standardise)


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def load_npz(
    path,
    test_fraction: float = 0.2,
    seed: int = 0,
    standardise: bool = True,
    dtype=np.float32,
) -> Dataset:
    """A NumPy `.npz` archive with either `x_train, y_train, x_test, y_test` or `x, y`.

    Inputs of any shape (N, ...) are flattened to (N, n_features). Integer labels (or floats
    that are whole numbers) of shape (N,) make a classification task, and must be class
    indices >= 0 as in `load_csv` ({−1, 1} is refused: map it to {0, 1}); other float
    targets a regression task (n_classes = 0). With only `x, y` the split is made by `split`.

    Args:
      path: the `.npz` file.
      test_fraction, seed: the split when the archive holds only `x, y`.
      standardise: standardise each feature with the training statistics.
      dtype: floating dtype of the inputs.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: empty, gzip-compressed or not an npz archive / a damaged member (bad CRC,
        truncated) / object arrays / scalars / missing arrays / mismatched lengths /
        non-finite values / negative class labels; every message names the file.
      TypeError: `dtype` is not a floating dtype.
    """
    path = _check_file(path)
    dtype = check_float_dtype("dtype", dtype)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # zipfile / pickle / format errors all mean "not an npz"
        raise ValueError(f"data file {str(path)!r} is not a NumPy .npz archive ({err}).") from None
    if not hasattr(archive, "files"):
        raise ValueError(f"data file {str(path)!r} holds a single array, not an .npz archive.")
    keys = set(archive.files)
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        arrays = [_array(archive, k, path) for k in ("x_train", "y_train", "x_test", "y_test")]
    elif {"x", "y"} <= keys:
        arrays = None
    else:
        raise ValueError(
            f"data file {str(path)!r} has arrays {sorted(keys)}; expected x_train, y_train, "
            "x_test, y_test, or x, y."
        )
    x_all = _array(archive, "x", path) if arrays is None else None
    y_all = _array(archive, "y", path) if arrays is None else None
    pairs = [(x_all, y_all)] if arrays is None else [arrays[:2], arrays[2:]]
    for x, y in pairs:
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"data file {str(path)!r}: {len(x)} inputs but {len(y)} labels (need equal, >= 1)."
            )
        for name, a in (("inputs", x), ("labels", y)):
            if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
                raise ValueError(f"data file {str(path)!r}: {name} are not all finite numbers.")
    y_ref = y_all if arrays is None else np.concatenate([arrays[1], arrays[3]])
    # whole numbers are class labels, as in load_csv: negative ones are refused there too
    integer = y_ref.ndim == 1 and np.all(y_ref == np.round(y_ref))
    n_classes = 0
    if integer:
        _, n_classes = _labels(y_ref.astype(np.float64), f"data file {str(path)!r}")

    def flat(x):
        return np.asarray(x, np.float64).reshape(len(x), -1)

    if arrays is None:
        parts = split(flat(x_all), y_all, test_fraction, check_int("seed", seed, minimum=0))
    else:
        parts = (flat(arrays[0]), arrays[1], flat(arrays[2]), arrays[3])
    if parts[0].shape[1] != parts[2].shape[1]:
        raise ValueError(
            f"data file {str(path)!r}: train inputs have {parts[0].shape[1]} features, test "
            f"inputs {parts[2].shape[1]}."
        )
    return _finish(path.stem, *parts, n_classes, {"source": str(path)}, dtype, standardise)


def _array(archive, name: str, path: Path) -> np.ndarray:
    """One array of an npz archive, read (CRC checked) with an error naming the file."""
    try:
        a = archive[name]
    except Exception as err:  # noqa: BLE001 - bad CRC, truncated member, object arrays
        raise ValueError(
            f"data file {str(path)!r}: array {name!r} cannot be read ({type(err).__name__}: "
            f"{err}); the archive is damaged or holds Python objects."
        ) from None
    if a.ndim == 0:
        raise ValueError(
            f"data file {str(path)!r}: array {name!r} is a scalar; it must have a leading "
            "sample axis."
        )
    return a


def teacher_student(
    n_train: int = 1000,
    n_test: int = 1000,
    sizes: tuple[int, ...] = (10, 16, 1),
    activation: str = "tanh",
    noise: float = 0.1,
    seed: int = 0,
    dtype=np.float32,
) -> Dataset:
    r"""A generated regression task: labels from a random "teacher" MLP plus label noise.

    .. math::
        x \sim \mathcal N(0, I_d), \qquad y = f_{\theta^*}(x) + \sigma\,\varepsilon,
        \quad \varepsilon \sim \mathcal N(0, I)

    with f_θ* an MLP of widths `sizes` and weights drawn as in `init_mlp` (bias 0.1·N(0,1)
    so the teacher is not odd). A student trained with MSE reaches at best the noise floor
    ½σ² per output; with σ > 0 the per-sample gradients do not vanish at the minimum, so
    mini-batch SGD keeps a non-zero temperature there (a true stationary state).

    Args:
      n_train, n_test: numbers of samples (>= 1).
      sizes: teacher widths (d_in, hidden..., d_out), each >= 1.
      activation: the teacher's hidden activation (see `landscape.mlp.ACTIVATIONS`).
      noise: σ >= 0.
      seed: NumPy seed of inputs, teacher and noise.
      dtype: floating dtype of inputs and targets.

    Returns:
      A regression `Dataset` (n_classes = 0) with targets (N, d_out); `info["teacher"]` holds
      the teacher's parameters, `info["noise"]` σ.
    """
    n_train, n_test = check_int("n_train", n_train), check_int("n_test", n_test)
    sizes = tuple(check_int(f"sizes[{i}]", s) for i, s in enumerate(sizes))
    if len(sizes) < 2:
        raise ValueError(f"sizes={sizes} is not allowed: it needs at least (d_in, d_out).")
    check_nonnegative("noise", noise)
    seed = check_int("seed", seed, minimum=0)
    dtype = check_float_dtype("dtype", dtype)
    rng = np.random.default_rng(seed)
    teacher = init_mlp(jax.random.key(seed), sizes, activation=activation, dtype=np.float32)
    teacher = [
        {
            "w": np.asarray(layer["w"]),
            "b": (0.1 * rng.standard_normal(layer["b"].shape)).astype(np.float32),
        }
        for layer in teacher
    ]
    n = n_train + n_test
    x = rng.standard_normal((n, sizes[0]))
    f = np.asarray(apply_mlp(teacher, x.astype(np.float32), activation=activation), np.float64)
    y = f + float(noise) * rng.standard_normal(f.shape)
    info = {
        "teacher": teacher,
        "noise": float(noise),
        "activation": activation,
        "noise_floor": 0.5 * float(noise) ** 2 * sizes[-1],
    }
    return _finish(
        "teacher_student",
        x[:n_train],
        y[:n_train],
        x[n_train:],
        y[n_train:],
        0,
        info,
        dtype,
        False,
    )
