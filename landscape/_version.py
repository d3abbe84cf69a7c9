"""The installed version, read from the package metadata (declared once, in pyproject.toml)."""

from importlib import metadata

try:
    __version__ = metadata.version("optdyn")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
