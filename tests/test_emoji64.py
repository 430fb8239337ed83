"""`python -m training.emoji64` builds the data set from the two npm packages: the files as shipped, labels from
emoji.json by file name, every tarball checked against its pinned sha512 (tarballs made here, no network)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import zipfile

import pytest

from training import emoji64

EMOJI_JSON = [
    {"name": "GRINNING FACE", "short_name": "grinning", "category": "Smileys & Emotion", "subcategory": "face-smiling",
     "image": "1f600.png"},
    {"name": "WAVING HAND SIGN", "short_name": "wave", "category": "People & Body", "subcategory": "hand-fingers-open",
     "image": "1f44b.png", "skin_variations": {"1F3FB": {"image": "1f44b-1f3fb.png"}}},
]


def _tarball(images: str, names: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        files = {"package/emoji.json": json.dumps(EMOJI_JSON).encode(), "package/README.md": b"not read",
                 **{f"{images}{n}": f"png of {images}{n}".encode() for n in names}}
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def packages(tmp_path, monkeypatch):
    folder = tmp_path / "tgz"
    folder.mkdir()
    pins = {}
    for source in emoji64.SOURCES:
        data = _tarball(source.images, ["1f600.png", "1f44b.png", "1f44b-1f3fb.png", "ffff.png"])
        (folder / source.tarball).write_bytes(data)
        pins[source.package] = base64.b64encode(hashlib.sha512(data).digest()).decode()
    monkeypatch.setattr(emoji64, "INTEGRITY", pins)
    return folder


def test_builds_the_zip_and_the_labels(packages, tmp_path, capsys):
    out = tmp_path / "data"
    assert emoji64.main(["--out", str(out), "--from", str(packages)]) == 0
    assert "3 in noto/, 3 in twemoji/" in capsys.readouterr().out          # ffff.png: not in emoji.json
    with zipfile.ZipFile(out / "emoji64.zip") as z:
        assert sorted(z.namelist()) == ["ATTRIBUTION.md", "noto/1f44b-1f3fb.png", "noto/1f44b.png", "noto/1f600.png",
                                        "twemoji/1f44b-1f3fb.png", "twemoji/1f44b.png", "twemoji/1f600.png"]
        assert z.read("twemoji/1f600.png") == b"png of package/img/twitter/64/1f600.png"   # the file as shipped
        assert "Apache License 2.0" in z.read("ATTRIBUTION.md").decode()
    doc = json.loads((out / "emoji64_labels.json").read_text())
    assert doc["categories"] == ["People & Body", "Smileys & Emotion"]
    assert doc["labels"]["noto/1f44b-1f3fb.png"] == {"name": "WAVING HAND SIGN", "short_name": "wave",
                                                     "category": "People & Body",
                                                     "subcategory": "hand-fingers-open", "skin_tone": "1F3FB"}
    assert doc["labels"]["twemoji/1f600.png"]["skin_tone"] is None


def test_a_changed_or_missing_package_is_refused(packages, tmp_path, capsys):
    source = emoji64.SOURCES[1]
    (packages / source.tarball).write_bytes(_tarball(source.images, ["1f600.png"]))   # not the pinned bytes
    assert emoji64.main(["--out", str(tmp_path / "data"), "--from", str(packages)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "refusing a changed package" in err
    (packages / source.tarball).unlink()
    assert emoji64.main(["--out", str(tmp_path / "data"), "--from", str(packages)]) == 2
    assert f"no {source.tarball}" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
