"""`python -m training.dataset_tool`: a folder or zip of images -> a training zip at one resolution.

    python -m training.dataset_tool --source DIR|ZIP --dest OUT.zip --resolution 64 \\
        [--background white] [--channels auto|1|3] [--max-images N] [--no-labels]
        [--labels LABELS.json [--label-field category]]

Every image goes through `training.dataset.convert_image` (transparency composited on the
background, grayscale kept or expanded, centre crop, Lanczos down-sampling). The output follows
the NVlabs layout: `00000/img00000000.png`, ... plus `dataset.json` with the labels (or null).
Labels come from the source's own `dataset.json`, or from `--labels FILE`: either that same NVlabs
layout, or one record per image path (`{"labels": {"noto/1f600.png": {"category": "Smileys & Emotion",
...}}}`, as `emoji64_labels.json`, or the bare `{"noto/1f600.png": {...}}`),
whose `--label-field` becomes a class index (the file's list of that
field's values when it has one, e.g. "categories", else the sorted distinct values; a null value is the
class "none"); the class names are written to `dataset.json` under "classes".
Unreadable files are reported on stderr and skipped, with a count. The zip (or folder) appears
whole or not at all. A user error prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from stylegan_sdk._cli import OneLineParser, run_command
from stylegan_sdk.formats.fileio import atomic_open, default_dir_mode

from .dataset import (
    LABELS_FILE,
    DatasetError,
    ImageSource,
    choose_channels,
    choose_resolution,
    class_names_of,
    convert_image,
    labels_table,
    open_image,
    parse_background,
    read_labels_json,
    scan_images,
)

MAX_LISTED = 10     # unreadable files named one by one on stderr; the rest are counted


def archive_name(idx: int) -> str:
    """Where image idx goes: 1000 images per folder, as the NVlabs tool."""
    return f"{idx // 1000:05d}/img{idx:08d}.png"


def convert_dataset(
    source_path: str,                   # folder or zip of images (+ optional dataset.json)
    dest: str,                          # OUT.zip, or a folder that does not exist yet
    resolution: int | None = None,      # output side (None = the images' own square power-of-two size)
    background: str = "white",          # colour under transparent pixels
    channels: int | str = "auto",       # 1, 3 or "auto" (1 if every image is gray)
    max_images: int | None = None,      # convert only the first N files (sorted by name)
    use_labels: bool = True,            # carry dataset.json labels over
    labels_file: str | None = None,     # labels from this file instead of the source's dataset.json
    label_field: str = "category",      # the per-image record field that becomes the class (labels_file)
    log=print,                          # progress / summary lines
) -> dict:
    """Convert; returns a summary {images, skipped, resolution, channels, labels}."""
    from PIL import Image

    bg = parse_background(background)
    source = ImageSource(source_path)
    if not source.image_names:
        raise DatasetError(f"source: no images in {source_path!r}")
    to_zip = dest.lower().endswith(".zip")
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise DatasetError(f"dest: folder {parent!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise DatasetError(f"dest: folder {parent!r} is not writable")
    if not to_zip and os.path.exists(dest):
        raise DatasetError(f"dest: {dest!r} already exists (give a new folder, or a .zip file to replace)")

    classes: list[str] | None = None
    if labels_file is not None:
        if not use_labels:
            raise DatasetError("labels: --labels and --no-labels contradict each other")
        external, classes = read_labels_file(labels_file, label_field)
    scan = scan_images(source, max_images)
    res = choose_resolution(scan, resolution, source_path)
    ch = choose_channels(scan, channels)
    if labels_file is not None:
        table = external
    elif use_labels:  # the source's own dataset.json, its class names (if any) carried over
        doc = read_labels_json(source)
        table = labels_table(doc)
        classes = list(class_names_of(doc) if table is not None else ()) or None
    else:
        table = None
    skipped = list(scan.skipped)

    count = 0
    labels: list[list] = []
    with _open_writer(dest, to_zip) as write:
        for n, name in enumerate(scan.names):
            try:
                arr = convert_image(open_image(source.read(name)), res, ch, bg)  # [C, R, R]
            except DatasetError:
                raise
            except (OSError, ValueError, zipfile.BadZipFile) as e:
                skipped.append((name, str(e).splitlines()[0] if str(e) else type(e).__name__))
                continue
            if table is not None:
                if name not in table:
                    raise DatasetError(f"source: {labels_file or LABELS_FILE} has no label for {name!r}")
                labels.append([archive_name(count), table[name]])
            hwc = arr.transpose(1, 2, 0)
            buf = io.BytesIO()
            Image.fromarray(hwc[:, :, 0] if ch == 1 else hwc).save(buf, format="PNG", compress_level=6)
            write(archive_name(count), buf.getvalue())
            count += 1
            if (n + 1) % 5000 == 0:
                log(f"converted {n + 1}/{len(scan.names)}")
        if count == 0:
            raise DatasetError(f"source: none of the {len(scan.names) + len(scan.skipped)} files could be read")
        doc: dict = {"labels": labels if table is not None else None}
        if classes is not None:
            doc["classes"] = classes
        write(LABELS_FILE, json.dumps(doc).encode())

    for name, why in skipped[:MAX_LISTED]:
        print(f"skipped unreadable file {name}: {why}", file=sys.stderr)
    if len(skipped) > MAX_LISTED:
        print(f"... and {len(skipped) - MAX_LISTED} more unreadable files", file=sys.stderr)
    summary = {"images": count, "skipped": len(skipped), "resolution": res, "channels": ch,
               "labels": None if table is None else int(_label_dim(labels))}
    log(f"wrote {dest}: {count} images, {res}x{res}, {'gray' if ch == 1 else 'RGB'}, "
        f"labels: {'none' if table is None else summary['labels']}; skipped {len(skipped)} unreadable files")
    return summary


def read_labels_file(path: str, field: str) -> tuple[dict[str, int | list[float]], list[str] | None]:
    """--labels FILE -> (label by image path, class names or None). DatasetError naming the problem."""
    return labels_by_field(read_labels_doc(path), path, field)


def read_labels_doc(path: str) -> Any:
    """A labels file's JSON; DatasetError when it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"labels: no such file {path!r}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"labels: {path!r} is not a readable JSON file ({e})") from None


def labels_by_field(doc: Any, path: str, field: str) -> tuple[dict[str, int | list[float]], list[str] | None]:
    """(label by image path, class names or None) of a labels file's JSON: NVlabs' [[path, label], ...]
    as it is, or one `field` of a mapping path -> record as class indices."""
    entries = doc.get("labels") if isinstance(doc, dict) else None
    if entries is None and isinstance(doc, dict) and doc and all(isinstance(r, dict) for r in doc.values()):
        entries = doc   # a bare {path: record} mapping
    if isinstance(entries, list):  # the NVlabs dataset.json layout: [[path, label], ...]
        if not all(isinstance(e, list) and len(e) == 2 for e in entries):
            raise DatasetError(f"labels: {path!r}: 'labels' must be a list of [file name, label] pairs")
        return {str(name).replace("\\", "/"): label for name, label in entries}, None
    if not isinstance(entries, dict) or not all(isinstance(r, dict) for r in entries.values()):
        raise DatasetError(f"labels: {path!r} is neither {{\"labels\": [[path, label], ...]}} (NVlabs dataset.json) "
                           f"nor a mapping of image path -> record "
                           f"({{\"labels\": {{path: record}}}} or {{path: record}})")
    missing = sorted(name for name, record in entries.items() if field not in record)
    if missing:
        raise DatasetError(f"labels: the records of {len(missing)} image(s) have no field {field!r}, "
                           f"e.g. {missing[0]!r}")
    values = {name: "none" if record[field] is None else str(record[field]) for name, record in entries.items()}
    plural = field[:-1] + "ies" if field.endswith("y") else field + "s"   # "category" -> "categories"
    listed = doc.get(plural)
    if isinstance(listed, list) and set(values.values()) <= {str(v) for v in listed}:
        classes = [str(v) for v in listed]          # the file's own order of the classes
    else:
        classes = sorted(set(values.values()))
    index = {c: i for i, c in enumerate(classes)}
    return {name.replace("\\", "/"): index[v] for name, v in values.items()}, classes


def _label_dim(labels: list[list]) -> int:
    values = [v for _, v in labels]
    if values and all(isinstance(v, int) for v in values):
        return max(values) + 1
    return len(np.atleast_1d(values[0])) if values else 0


@contextlib.contextmanager
def _open_writer(dest: str, to_zip: bool) -> Iterator[Callable[[str, bytes], None]]:
    """Yield write(name, data); the zip or folder appears at dest only if the block succeeds."""
    if to_zip:
        with atomic_open(dest) as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            yield z.writestr
        return
    parent = os.path.dirname(os.path.abspath(dest))
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.", dir=parent)

    def write(name: str, data: bytes) -> None:
        path = os.path.join(tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    try:
        yield write
        os.chmod(tmp, default_dir_mode())
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training.dataset_tool",
                      description="Convert a folder or zip of images into a training zip at one resolution.")
    p.add_argument("--source", required=True, help="folder or zip of images (+ optional dataset.json labels)")
    p.add_argument("--dest", required=True, help="output .zip (or a new folder)")
    p.add_argument("--resolution", type=int, default=None,
                   help="output side, a power of two (default: the images' own size when all are square and equal)")
    p.add_argument("--background", default="white",
                   help="colour under transparent pixels: white | black | gray | #rrggbb")
    p.add_argument("--channels", default="auto", choices=["auto", "1", "3"],
                   help="1 = gray, 3 = RGB, auto = gray only if every image is gray (default)")
    p.add_argument("--max-images", type=int, default=None, help="convert only the first N files (sorted by name)")
    p.add_argument("--no-labels", action="store_true", help="ignore dataset.json labels")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help='labels from FILE instead of the source\'s dataset.json: {"labels": [[path, label], ...]} '
                        '(NVlabs dataset.json), or per-image records {"labels": {path: {field: value, ...}}} '
                        '(emoji64_labels.json) or {path: {field: value, ...}}')
    p.add_argument("--label-field", default="category",
                   help="with --labels FILE of per-image records: the field that becomes the class (default category)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("dataset_tool", lambda: convert(args), user_errors=(PermissionError,))


def convert(args: argparse.Namespace) -> None:
    if args.max_images is not None and args.max_images < 1:
        raise DatasetError(f"max-images: must be >= 1, got {args.max_images}")
    convert_dataset(args.source, args.dest, resolution=args.resolution, background=args.background,
                    channels=args.channels, max_images=args.max_images, use_labels=not args.no_labels,
                    labels_file=args.labels, label_field=args.label_field)


if __name__ == "__main__":
    sys.exit(main())
