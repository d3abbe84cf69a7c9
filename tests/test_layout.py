"""The house: one `optdyn` namespace, layers whose imports point one way, no bare names.

optdyn.landscape    what the potential is (imports nothing from integrators)
optdyn.integrators  how it moves (imports landscape)
optdyn.experiments  figures, on top (public names of the two below)
"""

import ast
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("landscape", "integrators", "experiments")


def _python_files(*folders):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _imports(path: Path):
    """(line, absolute module) for every import in `path`, relative ones resolved."""
    package = list(path.relative_to(ROOT).parent.parts)
    if package and package[0] in PACKAGES:
        package = ["optdyn", *package]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from optdyn import integrators` imports a package
                yield node.lineno, f"{module}.{alias.name}"


def test_no_bare_top_level_imports():
    """The lint rule: `import landscape` / `from integrators.x import y` would load a second
    copy of a module (or another project's package of that name); inside the code imports are
    relative or `optdyn.`-qualified."""
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _python_files(*PACKAGES, "tests", "benchmarks")
        for line, module in _imports(path)
        if module.split(".")[0] in PACKAGES
    ]
    assert not bad, "bare imports (use optdyn.<name> or a relative import):\n" + "\n".join(bad)


def test_landscape_imports_nothing_from_integrators_or_experiments():
    """The lowest layer: no file of `landscape/` names an upper layer, even inside a
    function (an import placed there to dodge a cycle is a layering fault)."""
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _python_files("landscape")
        for line, module in _imports(path)
        if module.startswith(("optdyn.integrators", "optdyn.experiments"))
    ]
    assert not bad, "\n".join(bad)


def test_integrators_do_not_import_experiments_or_benchmarks():
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _python_files("integrators")
        for line, module in _imports(path)
        if module.startswith(("optdyn.experiments", "benchmarks"))
    ]
    assert not bad, "\n".join(bad)


def test_no_import_inside_a_function_in_the_library():
    """Imports sit at the top of each module, where the layering is visible (optional heavy
    third-party imports excepted: scikit-learn's data sets, matplotlib's pyplot)."""
    allowed = {"sklearn.datasets", "matplotlib.pyplot", "jax"}
    bad = []
    for path in _python_files("landscape", "integrators"):
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    module = getattr(node, "module", None) or node.names[0].name
                    if node.level or module not in allowed:
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "imports inside functions:\n" + "\n".join(bad)


def test_importing_landscape_loads_no_integrators_module():
    """In a fresh interpreter: `import optdyn.landscape` (and every submodule of it) loads
    no module of `optdyn.integrators` and not optax."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import optdyn.landscape as ls
        for info in pkgutil.walk_packages(ls.__path__, "optdyn.landscape."):
            importlib.import_module(info.name)
        print(sorted(m for m in sys.modules if m.startswith(("optdyn.integrators", "optax"))))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_public_namespace_from_any_directory(tmp_path):
    """`from optdyn import integrators as itg, landscape as ls` and the experiment runner
    work outside the repository, where no folder of that name shadows anything."""
    (tmp_path / "experiments").mkdir()  # a user's own folder of the same name
    script = (
        "from optdyn import integrators as itg, landscape as ls, experiments; "
        "print(itg.sgd.__module__, ls.rosenbrock.__module__, experiments.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.split() == [
        "optdyn.integrators.overdamped",
        "optdyn.landscape.classic",
        "optdyn.experiments",
    ]
    listing = subprocess.run(
        [sys.executable, "-m", "optdyn.experiments", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert listing.returncode == 0, listing.stderr
    assert "trajectories" in listing.stdout


@pytest.mark.slow
def test_wheel_holds_the_optdyn_package_alone(tmp_path):
    """The built wheel installs one top-level package, `optdyn/` (plus its .dist-info)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in PACKAGES:
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = (tmp_path / "dist").glob("optdyn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"optdyn"}, sorted(top)
    for package in PACKAGES:
        assert f"optdyn/{package}/__init__.py" in names
        assert f"optdyn/{package}/py.typed" in names  # PEP 561: the types ship
    assert "optdyn/integrators/_engine/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "optdyn-experiments = optdyn.experiments._cli:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
