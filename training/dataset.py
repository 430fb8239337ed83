"""Training images: a folder or zip of images of any common format, as uint8 [C, R, R] arrays.

One conversion (`convert_image`) serves both the training set and `training.dataset_tool`:

    mode       RGBA / LA / P with transparency -> composited on `background`; CMYK, YCbCr, 16-bit,
               float -> 8-bit RGB or gray; grayscale is kept (channels=1) or expanded (channels=3)
    geometry   centre crop to a square, then Lanczos down-sampling to the resolution; an image
               smaller than the resolution is an error (we never up-sample training data)

Labels come from an optional `dataset.json` at the root of the folder or zip, in the NVlabs layout
`{"labels": [["relative/path.png", 3], ...]}`: an integer is a class (one-hot, label_dim = max + 1),
a list of numbers is used as it is. Files that cannot be read are reported and skipped, with a count.

Batches come from `sample_indices(nimg, batch)`: a pure function of how many images the run has
seen, so a resumed run (or one on another number of processes) draws exactly the same images.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from stylegan_sdk.config import class_names_problem

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
LABELS_FILE = "dataset.json"
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128)}
PRELOAD_LIMIT = 2 << 30     # decode the whole set into memory when it takes at most this many bytes


class DatasetError(ValueError):
    """The data cannot be used as asked (missing, empty, too small, bad labels): one line for the user."""


# ----------------------------------------------------------------------------
# Small helpers


def parse_background(text: str) -> tuple[int, int, int]:
    """'white' | 'black' | 'gray' | '#rrggbb' -> an RGB triple."""
    if text in BACKGROUNDS:
        return BACKGROUNDS[text]
    t = text.lstrip("#")
    if len(t) == 6 and all(ch in "0123456789abcdefABCDEF" for ch in t):
        return int(t[0:2], 16), int(t[2:4], 16), int(t[4:6], 16)
    raise DatasetError(f"background: expected white, black, gray or #rrggbb, got {text!r}")


def is_power_of_two(n: int) -> bool:
    return isinstance(n, int) and n >= 4 and (n & (n - 1)) == 0


# ----------------------------------------------------------------------------
# Reading files from a folder or a zip


class ImageSource:
    """The image files (and dataset.json) of a folder, searched recursively, or of a zip archive."""

    def __init__(self, path: str) -> None:
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise DatasetError(f"data: no such file or folder {self.path!r}")
        self.is_zip = os.path.isfile(self.path)
        if self.is_zip and not zipfile.is_zipfile(self.path):
            raise DatasetError(f"data: {self.path!r} is neither a folder nor a zip archive")
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1
        names = self._all_names()
        self.image_names = sorted(n for n in names if n.lower().endswith(IMAGE_EXTENSIONS)
                                  and not _hidden(n))
        self.has_labels_file = LABELS_FILE in names

    def _all_names(self) -> list[str]:
        if self.is_zip:
            return [n for n in self._archive().namelist() if not n.endswith("/")]
        out = []
        for root, dirs, files in os.walk(self.path):
            dirs.sort()
            for f in files:
                out.append(os.path.relpath(os.path.join(root, f), self.path).replace(os.sep, "/"))
        return out

    def _archive(self) -> zipfile.ZipFile:
        # One handle per process (a forked DataLoader worker must not share the parent's).
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def read(self, name: str) -> bytes:
        if self.is_zip:
            return self._archive().read(name)
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_zip"] = None
        return d


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


# ----------------------------------------------------------------------------
# One image -> uint8 [C, R, R]


def open_image(data: bytes):
    """Decode and fully load an image (PIL raises OSError / ValueError on unreadable data)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def image_channels(img) -> int:
    """1 for grayscale modes (with or without alpha), 3 for everything else."""
    if img.mode == "P":
        return 1 if _palette_is_gray(img) else 3
    return 1 if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3


def _palette_is_gray(img) -> bool:
    pal = img.getpalette() or []
    rgb = np.asarray(pal, np.uint8).reshape(-1, 3)
    return bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


def convert_image(
    img,                                    # PIL image, any mode and size
    resolution: int,                        # output side R
    channels: int,                          # 1 = gray, 3 = RGB
    background: tuple[int, int, int],       # colour under transparent pixels
) -> np.ndarray:
    """A PIL image -> uint8 [channels, R, R]: flatten alpha, fix the mode, centre crop, down-sample."""
    from PIL import Image

    # 16-bit and float images: scale to 8 bits first (PIL's own conversion clips instead).
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode != "F" and a.max() > 255 else (1.0 if img.mode == "F" and a.max() <= 1 else 255.0)
        img = Image.fromarray(np.clip(a / hi * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    # Transparency: composite on the background colour.
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        under = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        img = Image.alpha_composite(under, rgba).convert("RGB")
    img = img.convert("L" if channels == 1 else "RGB")
    # Centre crop to a square, then down-sample.
    w, h = img.size
    side = min(w, h)
    if side < resolution:
        raise DatasetError(f"image is {w}x{h}, smaller than the resolution {resolution}")
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if side != resolution:
        img = img.resize((resolution, resolution), Image.LANCZOS)
    a = np.asarray(img, dtype=np.uint8)
    a = a[:, :, np.newaxis] if a.ndim == 2 else a
    return np.ascontiguousarray(a.transpose(2, 0, 1))  # [C, R, R]


# ----------------------------------------------------------------------------
# Labels


def read_labels_json(source: ImageSource) -> dict | None:
    """dataset.json as a JSON object, or None when the source has none."""
    if not source.has_labels_file:
        return None
    try:
        doc = json.loads(source.read(LABELS_FILE))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"data: {LABELS_FILE} is not valid JSON ({e})") from None
    return doc if isinstance(doc, dict) else None


def labels_table(doc: dict | None) -> dict[str, int | list[float]] | None:
    """The labels of a dataset.json object by file name, or None when it has none."""
    entries = None if doc is None else doc.get("labels")
    if entries is None:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, list) and len(e) == 2 for e in entries):
        raise DatasetError(f"data: {LABELS_FILE}: 'labels' must be a list of [file name, label] pairs")
    return {str(name).replace("\\", "/"): label for name, label in entries}


def class_names_of(doc: dict | None) -> tuple[str, ...]:
    """A dataset.json object's "classes" (class index -> name, as dataset_tool --labels writes them); ()
    when absent. Checked against the labels' size by `labels_array`."""
    names = None if doc is None else doc.get("classes")
    if names is None:
        return ()
    problem = class_names_problem(tuple(names) if isinstance(names, list) else names,
                                  len(names) if isinstance(names, list) else 0)
    if problem:
        raise DatasetError(f"data: {LABELS_FILE}: 'classes' {problem}")
    return tuple(names)


def labels_array(table: dict[str, int | list[float]], names: list[str], class_names: tuple[str, ...] = ()
                 ) -> np.ndarray:
    """float32 [N, label_dim]: ints are classes (one-hot, label_dim = max + 1, or the number of class names
    when the data names its classes), lists are used as they are."""
    missing = [n for n in names if n not in table]
    if missing:
        raise DatasetError(f"data: {LABELS_FILE} has no label for {len(missing)} image(s), e.g. {missing[0]!r}")
    values = [table[n] for n in names]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if min(values) < 0:
            raise DatasetError(f"data: {LABELS_FILE}: class labels must be >= 0")
        if class_names and max(values) >= len(class_names):
            raise DatasetError(f"data: {LABELS_FILE}: class label {max(values)} has no name ('classes' lists "
                               f"{len(class_names)})")
        onehot = np.zeros([len(values), len(class_names) or max(values) + 1], np.float32)
        onehot[np.arange(len(values)), values] = 1
        return onehot
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 2 or not np.all(np.isfinite(arr)):
        raise DatasetError(f"data: {LABELS_FILE}: labels must all be ints or all equal-length number lists")
    if class_names and arr.shape[1] != len(class_names):
        raise DatasetError(f"data: {LABELS_FILE}: 'classes' names {len(class_names)} classes, the labels have "
                           f"{arr.shape[1]} values")
    return arr


# ----------------------------------------------------------------------------
# Scanning a data set (sizes and modes from the file headers)


@dataclass
class Scan:
    names: list[str]            # readable image files, sorted
    sizes: list[tuple[int, int]]
    gray: list[bool]            # grayscale mode (channels 1)
    skipped: list[tuple[str, str]]  # (file, why) for unreadable files


def scan_images(source: ImageSource, max_images: int | None = None) -> Scan:
    """Open each file's header: size and mode; unreadable files are listed in `skipped`."""
    from PIL import Image, UnidentifiedImageError

    names, sizes, gray, skipped = [], [], [], []
    for name in source.image_names:
        if max_images is not None and len(names) >= max_images:
            break
        try:
            with Image.open(io.BytesIO(source.read(name))) as img:
                names.append(name)
                sizes.append(img.size)
                gray.append(image_channels(img) == 1)
        except (OSError, ValueError, UnidentifiedImageError, zipfile.BadZipFile) as e:
            skipped.append((name, str(e).splitlines()[0] if str(e) else type(e).__name__))
    return Scan(names, sizes, gray, skipped)


def choose_resolution(scan: Scan, resolution: int | None, path: str) -> int:
    """Check the asked resolution against the images; None = the images' common square power-of-two size."""
    if not scan.names:
        raise DatasetError(f"data: no readable images in {path!r}"
                           + (f" ({len(scan.skipped)} unreadable files)" if scan.skipped else ""))
    if resolution is None:
        sides = {min(w, h) for w, h in scan.sizes}
        side = min(sides)
        if len(set(scan.sizes)) == 1 and scan.sizes[0][0] == scan.sizes[0][1] and is_power_of_two(side):
            return side
        resolution = 2 ** int(math.floor(math.log2(max(side, 4))))
        raise DatasetError(f"resolution: the images have different or non-power-of-two sizes "
                           f"(smallest side {side}); pass --resolution (e.g. {resolution})")
    if not is_power_of_two(resolution):
        raise DatasetError(f"resolution: must be a power of two >= 4, got {resolution}")
    small = [(n, s) for n, s in zip(scan.names, scan.sizes) if min(s) < resolution]
    if small:
        name, (w, h) = small[0]
        raise DatasetError(f"data: {len(small)} of {len(scan.names)} images are smaller than "
                           f"{resolution}x{resolution} (e.g. {name} is {w}x{h}); pick a smaller --resolution")
    return resolution


def choose_channels(scan: Scan, channels: int | str | None) -> int:
    """'auto' / None: 1 when every image is grayscale, else 3."""
    if channels in (None, "auto"):
        return 1 if scan.gray and all(scan.gray) else 3
    if int(channels) not in (1, 3):
        raise DatasetError(f"channels: must be auto, 1 or 3, got {channels!r}")
    return int(channels)


# ----------------------------------------------------------------------------
# The training set


class ImageDataset:
    """uint8 images [C, R, R] (+ float32 labels) from a folder or zip; x-flip doubles the set."""

    def __init__(
        self,
        path: str,                          # folder or zip of images (+ optional dataset.json)
        resolution: int | None = None,      # output side; None = the images' own (square, power of two)
        xflip: bool = False,                # add mirrored copies (indices N..2N-1)
        use_labels: bool = True,            # read dataset.json labels when present
        background: str = "white",          # colour under transparent pixels
        channels: int | str = "auto",       # 1, 3 or "auto" (1 if every image is gray)
        max_images: int | None = None,      # use only the first N files (sorted by name)
        preload: bool | None = None,        # decode everything up front (None: when it fits PRELOAD_LIMIT)
    ) -> None:
        self.path = os.fspath(path)
        self.name = os.path.splitext(os.path.basename(os.path.normpath(self.path)))[0]
        self.xflip = xflip
        self.background = parse_background(background)
        self.source = ImageSource(self.path)
        if not self.source.image_names:
            raise DatasetError(f"data: no images in {self.path!r} (looked for {', '.join(IMAGE_EXTENSIONS)})")
        scan = scan_images(self.source, max_images)
        self.resolution = choose_resolution(scan, resolution, self.path)
        self.num_channels = choose_channels(scan, channels)
        self.skipped = list(scan.skipped)
        self.names = list(scan.names)
        doc = read_labels_json(self.source) if use_labels else None
        table = labels_table(doc)
        self.class_names = class_names_of(doc) if table is not None else ()   # class index -> name, or ()
        self._labels = None if table is None else labels_array(table, self.names, self.class_names)
        self._images: np.ndarray | None = None
        nbytes = len(self.names) * self.num_channels * self.resolution**2
        if preload or (preload is None and nbytes <= PRELOAD_LIMIT):
            self._preload()

    def _preload(self) -> None:
        """Decode every image once; files that fail to decode are skipped (and counted)."""
        keep, images = [], []
        for i, name in enumerate(self.names):
            try:
                images.append(self._decode(name))
                keep.append(i)
            except (OSError, ValueError, zipfile.BadZipFile) as e:
                if isinstance(e, DatasetError):
                    raise DatasetError(f"data: {name}: {e}") from None
                self.skipped.append((name, str(e).splitlines()[0] if str(e) else type(e).__name__))
        if not keep:
            raise DatasetError(f"data: no readable images in {self.path!r} ({len(self.skipped)} unreadable files)")
        self.names = [self.names[i] for i in keep]
        if self._labels is not None:
            self._labels = self._labels[keep]
        self._images = np.stack(images)  # [N, C, R, R]

    def _decode(self, name: str) -> np.ndarray:
        return convert_image(open_image(self.source.read(name)), self.resolution, self.num_channels,
                             self.background)

    # -- shape ---------------------------------------------------------------
    @property
    def num_images(self) -> int:
        """Distinct images (without the mirrored copies)."""
        return len(self.names)

    def __len__(self) -> int:
        return self.num_images * (2 if self.xflip else 1)

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    @property
    def has_class_labels(self) -> bool:
        """Labels that are classes: one-hot rows (dataset.json's integer labels)."""
        labels = self._labels
        return labels is not None and bool(np.all((labels == 0) | (labels == 1)) and np.all(labels.sum(1) == 1))

    @property
    def label_dim(self) -> int:
        return 0 if self._labels is None else int(self._labels.shape[1])

    @property
    def image_shape(self) -> list[int]:
        return [self.num_channels, self.resolution, self.resolution]

    # -- items ---------------------------------------------------------------
    def get_image(self, idx: int) -> np.ndarray:
        """uint8 [C, R, R]; indices >= num_images are the mirrored copies."""
        flip = idx >= self.num_images
        i = idx - self.num_images if flip else idx
        img = self._images[i] if self._images is not None else self._decode(self.names[i])
        return np.ascontiguousarray(img[:, :, ::-1]) if flip else img

    def get_label(self, idx: int) -> np.ndarray:
        """float32 [label_dim] (empty for unlabelled data)."""
        if self._labels is None:
            return np.zeros([0], np.float32)
        return self._labels[idx % self.num_images]

    def item_classes(self) -> np.ndarray:
        """int64 [len(self)]: the class of every item, mirrored copies included; DatasetError unless the
        labels are classes (one-hot)."""
        if not self.has_class_labels:
            raise DatasetError(f"data: {self.path!r} has no class labels (one class per image in {LABELS_FILE})")
        classes = self._labels.argmax(1).astype(np.int64)
        return np.concatenate([classes, classes]) if self.xflip else classes

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [N, C, R, R] images and float32 [N, label_dim] labels."""
        imgs = np.stack([self.get_image(int(i)) for i in indices]) if len(indices) else \
            np.zeros([0, *self.image_shape], np.uint8)
        labels = np.stack([self.get_label(int(i)) for i in indices]) if len(indices) else \
            np.zeros([0, self.label_dim], np.float32)
        return imgs, labels

    def iter_batches(self, batch: int, max_items: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The distinct images in order (no mirrored copies), for metrics."""
        n = self.num_images if max_items is None else min(max_items, self.num_images)
        for start in range(0, n, batch):
            yield self.get_batch(np.arange(start, min(start + batch, n)))

    def info(self) -> dict:
        return {"path": self.path, "num_images": self.num_images, "resolution": self.resolution,
                "num_channels": self.num_channels, "label_dim": self.label_dim, "xflip": self.xflip,
                "background": list(self.background), "skipped": len(self.skipped)}


# ----------------------------------------------------------------------------
# Which images a step trains on


def sample_indices(num_items: int, seed: int, start: int, count: int) -> np.ndarray:
    """Items start .. start+count-1 of an endless stream: epoch e is a permutation drawn from (seed, e).

    A pure function of the position, so a resumed run continues the same stream and every process
    of a distributed run agrees on the global batch (each then takes its own slice).
    """
    out = np.empty([count], np.int64)
    pos = start
    filled = 0
    while filled < count:
        epoch, offset = divmod(pos, num_items)
        perm = np.random.default_rng([seed, epoch]).permutation(num_items)
        take = min(count - filled, num_items - offset)
        out[filled: filled + take] = perm[offset: offset + take]
        filled += take
        pos += take
    return out


def group_by_class(indices: np.ndarray, item_class: np.ndarray, group: int, seed: int, start: int) -> np.ndarray:
    """`indices` (a batch of `sample_indices`) with every run of `group` consecutive items made one class.

    The first item of each run keeps its place in the stream, so classes come as often as in the data;
    the others are drawn, with replacement, from the items of its class. A pure function of (seed, start),
    like `sample_indices`: a resumed run and every process draw the same batch.
    """
    assert len(indices) % group == 0, (len(indices), group)
    rng = np.random.default_rng([seed, start, group])
    out = np.array(indices, np.int64)
    for s in range(0, len(out), group):
        members = np.flatnonzero(item_class == item_class[out[s]])
        out[s + 1: s + group] = members[rng.integers(len(members), size=group - 1)]
    return out
