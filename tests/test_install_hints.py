"""Install hints name a command that works from where the user's install came from (issue 32): a clone or
folder (`pip install '/path[extra]'`, `-e` for an editable install) or an index (`stylegan-sdk[extra]`)."""

from __future__ import annotations

import json

import pytest

from stylegan_sdk import version
from stylegan_sdk._cli import import_error_message


class _Dist:
    def __init__(self, direct_url: str | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return self.direct_url


@pytest.mark.parametrize("direct_url, hint", [
    (json.dumps({"url": "file:///home/me/stylegan-sdk", "dir_info": {}}),
     "pip install '/home/me/stylegan-sdk[openvino]'"),
    (json.dumps({"url": "file:///home/me/my%20clone", "dir_info": {"editable": True}}),
     "pip install -e '/home/me/my clone[openvino]'"),
    (None, "pip install 'stylegan-sdk[openvino]'"),                            # from an index: no direct_url.json
    (json.dumps({"url": "https://example.org/stylegan_sdk-0.1.0.whl", "archive_info": {}}),
     "pip install 'stylegan-sdk[openvino]'"),
    ("{not json", "pip install 'stylegan-sdk[openvino]'"),
])
def test_hint_follows_the_install_source(monkeypatch, direct_url, hint):
    monkeypatch.setattr(version, "distributions", lambda name: [_Dist(direct_url)])
    assert version.install_hint("openvino") == hint


def test_hint_without_an_extra_and_for_a_missing_module(monkeypatch):
    monkeypatch.setattr(version, "distributions", lambda name: [_Dist(json.dumps({"url": "file:///src/sg"}))])
    assert version.install_hint() == "pip install /src/sg"
    err = ModuleNotFoundError("No module named 'tritonclient'", name="tritonclient")
    assert import_error_message(err) == ("tritonclient is not installed (No module named 'tritonclient'); "
                                         "install it with: pip install '/src/sg[triton]'")
    err = ModuleNotFoundError("No module named 'scipy'", name="scipy")
    assert import_error_message(err).endswith("install it with: pip install scipy")


def test_hint_inside_the_clone_skips_the_build_egg_info(monkeypatch):
    # Python run in the clone finds the stylegan_sdk.egg-info that `pip install .` leaves there first (no
    # direct_url.json), then the installed copy's metadata, which says where it came from.
    installed = _Dist(json.dumps({"url": "file:///home/me/clone", "dir_info": {}}))
    monkeypatch.setattr(version, "distributions", lambda name: [_Dist(None), installed])
    assert version.install_hint("torch") == "pip install '/home/me/clone[torch]'"
    monkeypatch.setattr(version, "distributions", lambda name: [])                # not installed at all
    assert version.install_hint("torch") == "pip install 'stylegan-sdk[torch]'"
