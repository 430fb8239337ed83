"""The installed distribution's version: pyproject.toml's `version` is its one source."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """'0.1.0' as installed; a source tree that was never installed says '0+unknown'."""
    try:
        return version("stylegan-sdk")
    except PackageNotFoundError:
        return "0+unknown"
