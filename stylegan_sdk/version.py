"""What is installed and how to add to it: the distribution's version (pyproject.toml's `version` is its one
source) and the pip command that adds an extra from where this install came from."""

from __future__ import annotations

import json
import shlex
import urllib.parse
import urllib.request
from importlib.metadata import PackageNotFoundError, distributions, version

DISTRIBUTION = "stylegan-sdk"


def package_version() -> str:
    """'0.1.0' as installed; a source tree that was never installed says '0+unknown'."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"


def install_source() -> tuple[str, bool]:
    """(what pip installs this package from, editable?): the local folder it was installed from (PEP 610's
    direct_url.json: a clone, `pip install .` or `pip install -e .`), else the distribution's name on an index.

    Every copy of the metadata on sys.path is asked, not only the first: Python run inside the clone (`python -c`,
    `python -m training...`) has the clone on sys.path, and there the first copy found is the
    `stylegan_sdk.egg-info` that `pip install .` leaves in the clone, which has no direct_url.json."""
    for dist in distributions(name=DISTRIBUTION):
        text = dist.read_text("direct_url.json")
        if not text:
            continue
        try:
            record = json.loads(text)
        except ValueError:
            record = {}
        url = record.get("url", "") if isinstance(record, dict) else ""
        if url.startswith("file://"):
            folder = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
            dir_info = record.get("dir_info")
            return folder, isinstance(dir_info, dict) and dir_info.get("editable") is True
    return DISTRIBUTION, False


def install_hint(extra: str | None = None) -> str:
    """`pip install ...` that adds `extra` to this install: `pip install '/path/to/clone[openvino]'` for an
    install from a folder (`-e` when it was editable), `pip install 'stylegan-sdk[openvino]'` from an index."""
    source, editable = install_source()
    target = f"{source}[{extra}]" if extra else source
    return f"pip install {'-e ' if editable else ''}{shlex.quote(target)}"
