import jax

jax.config.update("jax_enable_x64", True)


def pytest_addoption(parser):
    parser.addoption(
        "--compile-fast",
        action="store_true",
        help="compile with XLA's fast-compile flags, as `python -m optdyn.experiments --quick` "
        "does (for the experiments' quick-run tests: `make test` runs them this way)",
    )


def pytest_configure(config):
    # Before any test runs, so before JAX starts its backend in this process (and in each
    # xdist worker, which configures itself the same way).
    if config.getoption("compile_fast"):
        from optdyn.experiments._common import compile_fast

        if not compile_fast():
            raise RuntimeError("--compile-fast: JAX started its backend before pytest_configure")
