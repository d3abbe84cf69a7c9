"""The experiment runner behind `python -m optdyn.experiments`.

Every module `experiments/<name>.py` that defines `DESCRIPTION` (one line) and
`run(config) -> dict` is an experiment; it writes `figures/<name>*.png` and
`figures/<name>.json` and returns the JSON's numbers.

    python -m optdyn.experiments list
    python -m optdyn.experiments valley Kramers --quick --out /tmp/figs
    python -m optdyn.experiments all              # side by side, one process per core

Names are matched case-insensitively (a near miss gets "did you mean"); each experiment
prints the files it wrote and its time, and a run of several prints a summary table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib
import io
import multiprocessing
import os
import pkgutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .. import experiments
from .. import integrators as itg
from ..landscape.validate import check_choice, closest_name
from . import compare
from ._common import Config, compile_fast

FORMATS = ("png", "pdf", "svg")


def registry() -> dict[str, object]:
    """Experiment name -> module, in the order of their `ORDER` (then by name)."""
    modules = {}
    for info in pkgutil.iter_modules(experiments.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        if hasattr(module, "run") and hasattr(module, "DESCRIPTION"):
            modules[info.name] = module
    return dict(sorted(modules.items(), key=lambda kv: (getattr(kv[1], "ORDER", 100), kv[0])))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m optdyn.experiments",
        description="Render optdyn's experiments: figures and the numbers behind them.",
    )
    parser.add_argument(
        "names", nargs="+", metavar="NAME", help="experiment names (any case), 'all', or 'list'"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small, fast settings (smoke run), compiled by XLA for compile speed",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default="figures", help="output folder (default figures/)")
    parser.add_argument("--animate", action="store_true", help="also write GIF/MP4 animations")
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="J",
        help="experiments run side by side in J processes (default 0: one per CPU core, "
        "at most 4; 1 runs them one after another in this process)",
    )
    parser.add_argument(
        "--format",
        default="png",
        help="figure formats, comma-separated: png, pdf, svg (default png)",
    )
    return parser


def resolve_names(names: list[str], available) -> list[str]:
    """The experiments to run, in the order given, each once: case-insensitive names, 'all'.

    Raises ValueError naming an unknown name, with the closest known one.
    """
    by_lower = {name.lower(): name for name in available}
    chosen: list[str] = []
    for given in names:
        lowered = given.lower()
        if lowered == "all":
            found = list(available)
        elif lowered in by_lower:
            found = [by_lower[lowered]]
        else:
            hint = closest_name(lowered, [*by_lower, "all", "list"])
            did_you_mean = f" Did you mean {hint!r}?" if hint else ""
            raise ValueError(
                f"experiment {given!r} is not known.{did_you_mean} Known: "
                f"{', '.join(available)}, all, list (any case)."
            )
        chosen += [name for name in found if name not in chosen]
    return chosen


def parse_formats(text: str) -> tuple[str, ...]:
    """'png, PDF' -> ('png', 'pdf'); ValueError for an empty list or an unknown format."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    if not formats:
        raise ValueError(f"--format={text!r} names no format: give one or more of png, pdf, svg.")
    for fmt in formats:
        check_choice("--format", fmt, FORMATS)
    return formats


def check_out(out: str) -> Path:
    """Create the output folder if missing and check it is a writable directory, before any
    compute; ValueError otherwise."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out={out!r} is a file, not a directory: give a folder to write to.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ValueError(f"--out={out!r} is not a writable directory: {err.strerror}.") from None
    return path


def _written(out: Path, name: str, since: float) -> list[str]:
    """Files `<name>.json` and `<name>*.<fmt>` in `out` written by this run."""
    files = [
        p
        for p in sorted(out.glob(f"{name}*"))
        if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime >= since
    ]
    return [os.path.relpath(p) if not os.path.isabs(out) else str(p) for p in files]


def check_jobs(jobs: int, n_names: int) -> int:
    """The number of worker processes: `jobs`, or for 0 one per core (at most 4), never more
    than the experiments to run; ValueError for a negative count."""
    if jobs < 0:
        raise ValueError(f"--jobs={jobs} is not allowed: give 0 (automatic), 1 or more.")
    if jobs == 0:
        jobs = min(os.cpu_count() or 1, 4)
    return max(1, min(jobs, n_names))


def _run_one(name: str, config: Config) -> tuple[str, float, str]:
    """Run one experiment; (status, seconds, what it printed and any traceback)."""
    printed = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        try:
            registry()[name].run(config)
            status = "ok"
        except Exception:  # reported by the caller, the others go on
            printed.write(traceback.format_exc())
            status = "FAILED"
    return status, time.perf_counter() - start, printed.getvalue()


def _report(name: str, status: str, seconds: float, printed: str, out: Path, stamp: float):
    """Print one finished experiment: its output, the files it wrote and its time."""
    if printed:
        stream = sys.stdout if status == "ok" else sys.stderr
        print(printed, end="" if printed.endswith("\n") else "\n", file=stream, flush=True)
    if status != "ok":
        return (name, status, seconds, 0)
    files = _written(out, name, stamp)
    for path in files:
        print(f"[{name}] wrote {path}", flush=True)
    print(f"[{name}] done in {seconds:.1f} s", flush=True)
    return (name, status, seconds, len(files))


def _run_serial(names, available, config: Config, out: Path) -> list:
    """Run `names` one after another in this process, printing as they go."""
    rows = []
    for name in names:
        start, stamp = time.perf_counter(), time.time() - 1.0  # mtime granularity
        print(f"[{name}] running{' (quick)' if config.quick else ''} ...", flush=True)
        try:
            available[name].run(config)
        except Exception:  # report and go on with the others; exit non-zero at the end
            traceback.print_exc()
            rows.append((name, "FAILED", time.perf_counter() - start, 0))
            continue
        rows.append(_report(name, "ok", time.perf_counter() - start, "", out, stamp))
    return rows


# Submitted first when experiments run side by side: the longest ones (measured at --quick
# and at full settings on 2 cores). Started last, one of them would leave the other workers
# idle at the end; the order changes nothing else.
LONGEST_FIRST = (
    "scaling_rules",
    "precision",
    "thermometer",
    "training_loop",
    "mlp_landscape",
    "depth_and_skips",
    "noisy_quadratic",
    "hessian_spectrum",
    "batch_temperature",
    "saddle_escape",
)


def _submission_order(names: list[str]) -> list[str]:
    """`names` with those of `LONGEST_FIRST` first (in its order), then the rest as given."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    return sorted(names, key=lambda name: rank.get(name, len(rank)))


def _run_parallel(names, config: Config, out: Path, jobs: int) -> list:
    """Run `names` in `jobs` fresh processes (spawned: JAX does not survive a fork), the
    longest first; report each when it finishes, and return the rows in the order of
    `names`."""
    stamp = time.time() - 1.0  # mtime granularity
    rows = {}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = {pool.submit(_run_one, name, config): name for name in _submission_order(names)}
        for name in names:
            print(f"[{name}] queued{' (quick)' if config.quick else ''}", flush=True)
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            try:
                status, seconds, printed = future.result()
            except Exception:  # the worker process itself died
                status, seconds, printed = "FAILED", float("nan"), traceback.format_exc()
            rows[name] = _report(name, status, seconds, printed, out, stamp)
    return [rows[name] for name in names]


def _summary(rows: list[tuple[str, str, float, int]], total: float) -> str:
    width = max([len("experiment")] + [len(r[0]) for r in rows])
    lines = [f"{'experiment':<{width}}  status  seconds  files"]
    lines += [f"{n:<{width}}  {s:<6}  {t:7.1f}  {f:5d}" for n, s, t, f in rows]
    lines.append(f"{'total':<{width}}  {'':<6}  {total:7.1f}  {sum(r[3] for r in rows):5d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "compare" and "--optimizer" in " ".join(argv):  # its own arguments
        return compare.main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        formats = parse_formats(args.format)
        available = registry()
        if [n.lower() for n in args.names] == ["list"]:
            width = max(map(len, available), default=0)
            for name, module in available.items():
                print(f"{name:<{width}}  {module.DESCRIPTION}")
            return 0
        names = resolve_names(args.names, available)
        out = check_out(args.out)
        jobs = check_jobs(args.jobs, len(names))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    config = Config(
        quick=args.quick, seed=args.seed, out=args.out, formats=formats, animate=args.animate
    )
    if args.quick:  # a smoke run is compile-bound: trade run speed for compile speed
        compile_fast()
    start_all = time.perf_counter()
    if jobs > 1:
        print(f"running {len(names)} experiments in {jobs} processes", flush=True)
        rows = _run_parallel(names, config, out, jobs)
    else:
        if sys.stdout.isatty():  # a progress bar for long runs when someone is watching
            itg.set_progress_default(True)
        rows = _run_serial(names, available, config, out)
    if len(rows) > 1:
        print("\n" + _summary(rows, time.perf_counter() - start_all), flush=True)
    failed = [name for name, status, *_ in rows if status != "ok"]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
