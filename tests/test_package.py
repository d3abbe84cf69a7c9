"""The library as a dependency: the README's API section names every public name, the
version has one source, and every sub-package ships its `py.typed` marker."""

import importlib
import importlib.metadata
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ("optdyn.landscape", "optdyn.integrators", "optdyn.landscape.views")


def _api_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("\n## API\n") : text.index("\n## Experiments\n")]


def _code_words(text: str) -> set[str]:
    """Every identifier inside `backticks` or ``` blocks of `text`."""
    spans = re.findall(r"```.*?```|`[^`]+`", text, flags=re.S)
    return {w for span in spans for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)}


@pytest.mark.parametrize("package", PUBLIC)
def test_readme_api_section_names_every_public_name(package):
    """Read `__all__` at test time: a new public name needs only its README line."""
    names = importlib.import_module(package).__all__
    missing = sorted(set(names) - _code_words(_api_section()))
    assert not missing, f"{package}.__all__ names missing from the README's API section: {missing}"


def test_readme_api_section_names_no_missing_attribute():
    """`integrators.x` / `landscape.x` written in the API section exist."""
    bad = []
    for package, name in re.findall(
        r"\b(integrators|landscape)\.([a-z_][a-z0-9_]*)\b", _api_section()
    ):
        module = importlib.import_module(f"optdyn.{package}")
        if (
            not hasattr(module, name)
            and importlib.util.find_spec(f"optdyn.{package}.{name}") is None
        ):
            bad.append(f"{package}.{name}")
    assert not bad, bad


def test_version_has_one_source():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert importlib.metadata.version("optdyn") == declared
    for package in ("optdyn.integrators", "optdyn.landscape"):
        assert importlib.import_module(package).__version__ == declared
    assert f"## {declared}" in (ROOT / "CHANGELOG.md").read_text()


def test_every_subpackage_is_typed():
    for folder in ("landscape", "integrators", "integrators/_engine", "experiments"):
        assert (ROOT / folder / "py.typed").is_file(), folder
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all("py.typed" in v for v in package_data["package-data"].values())
