"""The experiment runner behind `python -m optdyn.experiments`.

Every module `experiments/<name>.py` that defines `DESCRIPTION` (one line) and
`run(config) -> dict` is an experiment; it writes `figures/<name>*.png` and
`figures/<name>.json` and returns the JSON's numbers.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback

from .. import experiments
from ..landscape.validate import check_choice
from . import compare
from ._common import Config


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
    parser.add_argument("name", help="an experiment name, 'all', or 'list'")
    parser.add_argument("--quick", action="store_true", help="small, fast settings (smoke run)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default="figures", help="output folder (default figures/)")
    parser.add_argument("--animate", action="store_true", help="also write GIF/MP4 animations")
    parser.add_argument(
        "--format",
        default="png",
        help="figure formats, comma-separated: png, pdf, svg (default png)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "compare" and "--optimizer" in " ".join(argv):  # its own arguments
        return compare.main(argv[1:])
    args = _parser().parse_args(argv)
    formats = tuple(f.strip().lower() for f in args.format.split(",") if f.strip())
    try:
        for fmt in formats:
            check_choice("--format", fmt, ("png", "pdf", "svg"))
        available = registry()
        if args.name == "list":
            width = max(map(len, available), default=0)
            for name, module in available.items():
                print(f"{name:<{width}}  {module.DESCRIPTION}")
            return 0
        names = (
            list(available)
            if args.name == "all"
            else [check_choice("experiment", args.name, [*available, "all", "list"])]
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    config = Config(
        quick=args.quick, seed=args.seed, out=args.out, formats=formats, animate=args.animate
    )
    failed = []
    for name in names:
        start = time.perf_counter()
        print(f"[{name}] running{' (quick)' if config.quick else ''} ...", flush=True)
        try:
            available[name].run(config)
        except Exception:  # report and go on with the others; exit non-zero at the end
            traceback.print_exc()
            failed.append(name)
            continue
        print(f"[{name}] done in {time.perf_counter() - start:.1f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
