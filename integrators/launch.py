"""Run a script as N JAX processes on this host, joined by JAX's own distributed runtime.

    python -m optdyn.integrators.launch -n 2 my_run.py --steps 1000

starts `my_run.py` N times with `JAX_COORDINATOR_ADDRESS=127.0.0.1:<free port>`,
`OPTDYN_NUM_PROCESSES=N` and `OPTDYN_PROCESS_ID=i`; the script calls `initialize()` (below)
before anything else touches JAX, then `simulate_sharded` and `gather` (see
`integrators/sharding.py`); process 0 writes the results. The launcher waits for all of
them, prefixes every output line with the process id, and when one process fails or the
timeout passes it kills the survivors and exits non-zero.

On several hosts no launcher is needed: run the same script on every host with
`JAX_COORDINATOR_ADDRESS=<host 0>:<port>`, `OPTDYN_NUM_PROCESSES` and `OPTDYN_PROCESS_ID`
set (or under SLURM / on a TPU pod, where `jax.distributed.initialize()` reads them itself).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

import jax

from ..landscape.validate import check_int

ENV_PROCESSES = "OPTDYN_NUM_PROCESSES"
ENV_PROCESS_ID = "OPTDYN_PROCESS_ID"


def initialize(**kwargs) -> None:
    """`jax.distributed.initialize` with the process count and id from the launcher's
    environment (`OPTDYN_NUM_PROCESSES`, `OPTDYN_PROCESS_ID`; the coordinator from
    `JAX_COORDINATOR_ADDRESS`), or from the cluster (SLURM, TPU pods) when they are unset.

    Args:
      **kwargs: passed on to `jax.distributed.initialize` (e.g. `initialization_timeout`).
    """
    if ENV_PROCESSES in os.environ:
        kwargs.setdefault("num_processes", int(os.environ[ENV_PROCESSES]))
        kwargs.setdefault("process_id", int(os.environ[ENV_PROCESS_ID]))
    jax.distributed.initialize(**kwargs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _relay(stream, prefix: str, log: list[str]) -> None:
    for line in iter(stream.readline, ""):
        log.append(prefix + line)
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def launch(command: list[str], n: int, *, timeout: float = 600.0, env=None) -> tuple[int, str]:
    """Start `command` as `n` processes joined on 127.0.0.1; wait for all of them.

    Args:
      command: the argument list of one process (e.g. `[sys.executable, "run.py"]`).
      n: the number of processes (>= 1).
      timeout: seconds before the survivors are killed.
      env: the base environment (default `os.environ`).

    Returns:
      (exit status: 0 if every process succeeded, else the first failure's or 124 on
      timeout; the interleaved output of all processes, each line prefixed "[i] ").
    """
    n = check_int("n", n, minimum=1)
    base = dict(os.environ if env is None else env)
    base["JAX_COORDINATOR_ADDRESS"] = f"127.0.0.1:{free_port()}"
    base[ENV_PROCESSES] = str(n)
    procs, threads, log = [], [], []
    for i in range(n):
        proc = subprocess.Popen(
            command,
            env={**base, ENV_PROCESS_ID: str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        thread = threading.Thread(target=_relay, args=(proc.stdout, f"[{i}] ", log), daemon=True)
        thread.start()
        procs.append(proc)
        threads.append(thread)
    deadline = time.monotonic() + timeout
    status = 0
    while None in (codes := [p.poll() for p in procs]):
        failed = [c for c in codes if c not in (None, 0)]
        if failed or time.monotonic() > deadline:
            status = failed[0] if failed else 124
            break
        time.sleep(0.05)
    for p in procs:  # survivors of a failure or a timeout
        if p.poll() is None:
            p.kill()
        p.wait()
    for thread in threads:
        thread.join(timeout=5)
    if status == 0:
        status = next((p.returncode for p in procs if p.returncode), 0)
    return status, "".join(log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optdyn.integrators.launch",
        description="Run a Python script as N JAX processes on this host (127.0.0.1).",
    )
    parser.add_argument("-n", "--processes", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument("script", help="the Python script every process runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args(argv)
    status, _ = launch(
        [sys.executable, args.script, *args.args], args.processes, timeout=args.timeout
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
