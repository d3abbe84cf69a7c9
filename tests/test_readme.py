"""Every ```python block of the README runs as written, alone (each in a fresh namespace).

A block that imports an optional package (Equinox, Flax) is skipped when that package is not
installed; the rest must run.
"""

import importlib.util
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.M | re.S)
OPTIONAL = ("equinox", "flax")


def _line(code: str) -> int:
    return README.read_text()[: README.read_text().index(code)].count("\n") + 1


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"line{_line(c)}" for c in BLOCKS])
def test_readme_block_runs_alone(code):
    for package in OPTIONAL:
        if re.search(rf"^\s*(import|from) {package}\b", code, flags=re.M):
            if importlib.util.find_spec(package) is None:
                pytest.skip(f"{package} is not installed (optional: pip install {package})")
    exec(compile(code, f"README.md:{_line(code)}", "exec"), {"__name__": "readme"})
