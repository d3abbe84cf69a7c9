"""Run every benchmark, print one table, save the numbers as JSON.

    python -m benchmarks [--quick] [--json PATH] [--no-memory]

Rows: the particle-step workloads of `bench_ensemble` (optdyn beside a hand-written scan, a
per-step jitted optax loop and NumPy, all in this process), the bounded-memory streaming
run (in a subprocess, for its own peak resident memory), and the MLP rows of `bench_mlp`
when that module is present. Results go to `benchmarks/results/<machine>.json`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import sys
from pathlib import Path

import jax
import jaxlib
import numpy as np
import optax

from benchmarks import bench_ensemble

RESULTS = Path(__file__).resolve().parent / "results"
# the reference figures (2-core AMD EPYC, float32, jax 0.10 on CPU), particle-steps/s
REFERENCE = {
    "C program, particles in registers (issue)": {"gd": 1.3e10, "adam": 1.2e9},
    "hand-written JAX scan (issue)": {"gd": 1.85e9, "adam": 7e8, "langevin": 7e7},
}


def machine() -> dict:
    """CPU model, core count, accelerator, versions and load: what the numbers depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", text)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    device = jax.devices()[0]
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "optax": optax.__version__,
        "load_average_at_start": load,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def machine_name(info: dict) -> str:
    kind = info["cpu"] if info["platform"] == "cpu" else info["device_kind"]
    slug = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")
    return f"{info['platform']}-{slug}-{info['cores']}c"


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def print_table(rows: list[dict], memory: dict | None, info: dict) -> None:
    methods = list(bench_ensemble.METHODS)
    head = f"{'workload (particle-steps/s)':<46}" + "".join(f"{m:>13}" for m in methods)
    print(head + f"{'optdyn/hand':>12}{'optdyn/best':>12}{'bar cost':>10}{'A/A':>8}")
    for r in rows:
        if "rates" in r:
            cells = "".join(f"{_fmt(r['rates'].get(m)):>13}" for m in methods)
            print(
                f"{r['workload']:<46}{cells}{r['ratio']:>12.2f}{r['ratio_vs_best_baseline']:>12.2f}"
                f"{r['progress_overhead']:>+10.1%}{r['a_a_spread']:>+8.1%}"
            )
    mlp = [r for r in rows if "rates" not in r]
    if mlp:
        print(f"\n{'MLP workload (steps/s)':<70}{'optdyn':>10}{'baseline':>10}{'ratio':>7}")
        for r in mlp:
            print(
                f"{r['workload']:<70}{r['optdyn_steps_per_s']:>10.0f}"
                f"{r['baseline_steps_per_s']:>10.0f}{r['ratio']:>7.2f}"
            )
    if memory:
        print(
            f"\n{memory['workload']}: peak RSS {memory['peak_rss_gib']:.2f} GiB, "
            f"{memory['wall_s']:.1f} s ({memory['particle_steps_per_s']:.3g} particle-steps/s)"
        )
    print(
        f"\nmachine: {info['cpu']}, {info['cores']} cores, {info['platform']} "
        f"({info['device_kind']} x{info['device_count']}); python {info['python']}, "
        f"jax {info['jax']}, jaxlib {info['jaxlib']}, numpy {info['numpy']}, "
        f"optax {info['optax']}; load average at start {info['load_average_at_start']}"
    )
    refs = "; ".join(
        f"{name}: " + ", ".join(f"{k} {v:.3g}" for k, v in figs.items())
        for name, figs in REFERENCE.items()
    )
    print(f"reference figures (N = 100,000): {refs}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--json", type=Path, help="where to write the results (JSON)")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the bounded-memory streaming run"
    )
    args = parser.parse_args(argv)

    info = machine()
    rows = bench_ensemble.run(args.quick)
    memory = None
    if not args.no_memory:
        n, steps = (100_000, 1_000) if args.quick else (1_000_000, 100_000)
        memory = bench_ensemble.memory_row(n, steps)
    if importlib.util.find_spec("benchmarks.bench_mlp") is not None:
        from benchmarks import bench_mlp

        rows += bench_mlp.run(args.quick)
    try:
        info["load_average_at_end"] = os.getloadavg()
    except OSError:
        pass
    print_table(rows, memory, info)

    path = args.json or RESULTS / f"{machine_name(info)}{'-quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)])
    record = {
        "machine": info,
        "command": command,
        "quick": args.quick,
        "rows": rows,
        "memory": memory,
        "reference": REFERENCE,
    }
    partial = path.with_name(path.name + ".tmp")  # written whole, then renamed
    partial.write_text(json.dumps(record, indent=2, default=float) + "\n")
    partial.replace(path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
