"""The jitted runner per backend, with the compiler options of its tuning."""

from __future__ import annotations

import functools

import jax

from .plan import tuning


def has_avx512() -> bool:
    """Whether this x86 CPU has AVX-512 (Linux /proc/cpuinfo; False where unreadable)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


@functools.cache
def runner_for(fn, static_argnames: tuple, backend: str):
    """`jax.jit(fn)` for a backend. On a CPU with AVX-512 XLA is asked for the tuning's
    vector width (512 bits; XLA's default is 256). "traced" (inside a user's jit, where
    compiler options are not allowed): the plain jitted function."""
    width = tuning(backend).vector_width if backend == "cpu" and has_avx512() else None
    options = {"xla_cpu_prefer_vector_width": width} if width else None
    return jax.jit(fn, static_argnames=static_argnames, compiler_options=options)


def runner(fn, static_argnames: tuple, args) -> callable:
    """The jitted `fn` for the default backend, decided at the call (not at import, so that
    XLA_FLAGS and platform settings made after the import still apply)."""
    traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(args))
    return runner_for(fn, static_argnames, "traced" if traced else jax.default_backend())
