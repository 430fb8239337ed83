"""`python -m training.emoji64`: the emoji data set the bundled model was trained on, built from its sources.

    python -m training.emoji64 --out data/                 # downloads two npm packages (about 150 MB)
    python -m training.emoji64 --out data/ --from DIR      # or reads them from DIR (the two .tgz files)

It writes `data/emoji64.zip` (7,572 images, 64x64 RGBA PNG: `noto/<code points>.png` from
emoji-datasource-google@16.0.0 and `twemoji/<code points>.png` from emoji-datasource-twitter@16.0.0, the
files as the packages ship them, plus ATTRIBUTION.md with their licences) and `data/emoji64_labels.json`
(per image: name, short_name, category, subcategory and skin_tone from the packages' emoji.json, matched by
file name). Then:

    python -m training.dataset_tool --source data/emoji64.zip --dest data/emoji32.zip --resolution 32
    python -m training.dataset_tool --source data/emoji64.zip --dest data/emoji_cat.zip --resolution 32 \\
        --labels data/emoji64_labels.json --label-field category

The packages come from the npm registry over HTTPS; each tarball's sha512 is checked against the
registry's `integrity` value pinned here before anything in it is read. Nothing in them is executed.
The outputs appear whole or not at all. A user error prints one line and exits 2.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from stylegan_sdk._cli import OneLineParser, UserError, check_output, run_command, writing
from stylegan_sdk.formats.fileio import atomic_open, atomic_write_bytes


@dataclass(frozen=True)
class Source:
    package: str        # npm package
    version: str
    images: str         # folder of the 64 px PNGs inside the tarball
    folder: str         # folder of those images in emoji64.zip
    licence: str        # the images' licence, for ATTRIBUTION.md

    @property
    def tarball(self) -> str:
        return f"{self.package}-{self.version}.tgz"

    @property
    def url(self) -> str:
        return f"https://registry.npmjs.org/{self.package}/-/{self.tarball}"


SOURCES = (
    Source("emoji-datasource-google", "16.0.0", "package/img/google/64/", "noto",
           "Google Noto Emoji images, Apache License 2.0 (https://github.com/googlefonts/noto-emoji/blob/main/LICENSE)"),
    Source("emoji-datasource-twitter", "16.0.0", "package/img/twitter/64/", "twemoji",
           "Twemoji graphics, Creative Commons Attribution 4.0 "
           "(https://github.com/jdecked/twemoji/blob/v15.0.2/LICENSE-GRAPHICS)"),
)
LABEL_FIELDS = ("name", "short_name", "category", "subcategory")
MAX_TARBALL = 512 * 2**20       # bytes: the packages are about 75 MB each
MAX_MEMBER = 64 * 2**20         # bytes of one file read from a tarball (emoji.json is about 1.5 MB)


# ----------------------------------------------------------------------------
# The tarballs


def fetch(source: Source, folder: str | None) -> bytes:
    """The package's tarball: from `folder` when given, else from the npm registry."""
    if folder is not None:
        path = os.path.join(folder, source.tarball)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"from: no {source.tarball} in {folder!r} (download it from {source.url})")
        if os.path.getsize(path) > MAX_TARBALL:
            raise UserError(f"from: {path!r} is larger than a {source.package} tarball can be")
        with open(path, "rb") as f:
            return f.read()
    print(f"downloading {source.url}", file=sys.stderr, flush=True)
    with urllib.request.urlopen(source.url, timeout=120) as reply:
        data = reply.read(MAX_TARBALL + 1)
    if len(data) > MAX_TARBALL:
        raise UserError(f"{source.url}: larger than a {source.package} tarball can be")
    return data


def members(data: bytes, source: Source) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the tarball's regular files: the 64 px images and emoji.json."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar:
            if not info.isfile() or info.size > MAX_MEMBER:
                continue
            if info.name == "package/emoji.json" or (info.name.startswith(source.images)
                                                     and info.name.endswith(".png") and "/" not in
                                                     info.name[len(source.images):]):
                f = tar.extractfile(info)
                if f is not None:
                    yield info.name, f.read()


def labels_by_image(emoji_json: bytes) -> dict[str, dict]:
    """image file name -> {name, short_name, category, subcategory, skin_tone} from a package's emoji.json."""
    out = {}
    for e in json.loads(emoji_json):
        record = {k: e.get(k) for k in LABEL_FIELDS}
        out[e["image"]] = {**record, "skin_tone": None}
        for tone, variation in (e.get("skin_variations") or {}).items():
            out[variation["image"]] = {**record, "skin_tone": tone}
    return out


# ----------------------------------------------------------------------------
# The data set


def build(out: str, from_dir: str | None = None) -> dict[str, int]:
    """Write OUT/emoji64.zip and OUT/emoji64_labels.json; returns images per folder."""
    images: dict[str, bytes] = {}
    labels: dict[str, dict] = {}
    counts = {}
    for source in SOURCES:
        data = fetch(source, from_dir)
        check_integrity(source, data, INTEGRITY[source.package])
        files = dict(members(data, source))
        if "package/emoji.json" not in files:
            raise UserError(f"{source.tarball}: no package/emoji.json: not an emoji-datasource package")
        table = labels_by_image(files.pop("package/emoji.json"))
        counts[source.folder] = 0
        for name, png in sorted(files.items()):
            image = name[len(source.images):]
            if image not in table:
                continue   # an image emoji.json does not list has no labels: left out
            path = f"{source.folder}/{image}"
            images[path], labels[path] = png, table[image]
            counts[source.folder] += 1
    if not images:
        raise UserError("the packages held no 64 px emoji images")
    attribution = "\n".join(
        ["# emoji64", "", f"{len(images):,} emoji images, 64x64 RGBA PNG, taken from the npm packages",
         " and ".join(f"{s.package}@{s.version} ({s.images[len('package/'):-1]})" for s in SOURCES) + ".", ""]
        + [f"- {s.folder}/: {s.licence}" for s in SOURCES]
        + ["", "File names are the emoji's code points in hex, joined by '-'. The alpha channel is the emoji's "
           "shape;", "the background is transparent.", ""])
    doc = {"about": "Labels for emoji64.zip: one entry per image path inside the zip. name, short_name, category, "
                    "subcategory and skin_tone (Unicode skin-tone modifier code points; null when none) come from "
                    "the packages' emoji.json, matched by file name.",
           "categories": sorted({r["category"] for r in labels.values()}),
           "labels": labels}
    with writing(out, "out", folder=True):
        with atomic_open(os.path.join(out, "emoji64.zip")) as f, zipfile.ZipFile(f, "w") as z:
            z.writestr("ATTRIBUTION.md", attribution)
            for path in sorted(images):
                z.writestr(path, images[path])
        atomic_write_bytes(os.path.join(out, "emoji64_labels.json"), json.dumps(doc, indent=1).encode())
    return counts


# sha512 of each tarball, as the npm registry's `integrity` field gives it (base64).
INTEGRITY = {
    "emoji-datasource-google":
        "ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
    "emoji-datasource-twitter":
        "7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ==",
}


def check_integrity(source: Source, data: bytes, expected: str) -> None:
    """UserError unless the tarball's sha512 is the one pinned for its package."""
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != expected:
        raise UserError(f"{source.tarball}: sha512 {digest[:16]}... is not the registry's {expected[:16]}...; "
                        f"refusing a changed package")


def main(argv: Sequence[str] | None = None) -> int:
    p = OneLineParser(prog="python -m training.emoji64", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for emoji64.zip and emoji64_labels.json (made when missing)")
    p.add_argument("--from", dest="from_dir", default=None, metavar="DIR",
                   help="read the two package tarballs from DIR instead of downloading them")
    args = p.parse_args(argv)

    def body() -> None:
        check_output(args.out, "out", folder=True)
        counts = build(args.out, args.from_dir)
        print(f"wrote {os.path.join(args.out, 'emoji64.zip')} ("
              + ", ".join(f"{n} in {folder}/" for folder, n in counts.items())
              + f") and {os.path.join(args.out, 'emoji64_labels.json')}")

    return run_command("training.emoji64", body)


if __name__ == "__main__":
    sys.exit(main())
