"""Attribute boundaries: InterFaceGAN (Shen et al., CVPR 2020, arXiv 1907.10786) on any backend.

    d = sg.boundary(G, scores, name="smile")            # scores: uint8 images [N, H, W, C] -> [N] floats
    d = sg.boundary(G, scores, name=["smile", "age"])   # scores -> [N, A]: A directions from one sample
    ws = G.edit(ws, d, {"smile": 2.0})

How a boundary is found (InterFaceGAN's `train_boundary`, written here from the paper's recipe):

    1. seeds seed .. seed+samples-1 -> z (RandomState(seed_i).randn, as `generate`) -> w = G.map(z, psi)
       (default psi 1: no truncation, as InterFaceGAN samples) -> images (G.synthesize, const noise);
    2. scores(images) per image; keep the `ratio` (default 0.02, InterFaceGAN's) of the samples that
       score highest and the same number that score lowest;
    3. hold out `holdout` (0.3, InterFaceGAN's split 0.7 / 0.3) of each, fit a linear SVM in W on the rest
       (scikit-learn's LinearSVC on w centred on the training mean; labels: top = 1), and score it on the
       held-out part: that validation accuracy is the direction's `value`;
    4. the normal of the hyperplane, unit length, pointing toward higher scores, is the direction.

`conditions` (up to two unit vectors, or rows of other direction sets) makes the edit conditional, as
InterFaceGAN's `project_boundary`: the part of the normal in the span of the conditions is removed (the
conditions orthonormalised first, so two correlated conditions are handled exactly) and the rest is
normalised again. Moving along the result leaves each condition's side of its hyperplane unchanged.

scikit-learn is the `editing` extra, imported when a boundary is fitted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..generator import Generator
from ..images import check_output
from ..latents import check_c, check_psi, seed_to_z
from ..version import install_hint
from .directions import Directions, add_on_rows, model_identity

MAX_SAMPLES = 10**8
MAX_CONDITIONS = 2          # InterFaceGAN's project_boundary takes one or two
MIN_KEPT = 10               # samples per side (top / bottom) at least
SVM_C = 1.0                 # LinearSVC's regularisation (scikit-learn's default)
PARALLEL = 1e-6             # |projected normal| below this: the normal lies in the span of the conditions


def boundary(
    G: Generator,
    scores: Callable[[np.ndarray], Any],
    *,
    name: str | Sequence[str] | None = None,
    samples: int = 20_000,
    seed: int = 0,
    psi: float = 1.0,
    c: Any = None,
    ratio: float = 0.02,
    holdout: float = 0.3,
    conditions: Any = None,
    output: str = "uint8",
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> Directions:
    """InterFaceGAN boundaries of a model for a scoring function (module docstring): a Directions of kind
    "boundary" with one unit normal per attribute, values = validation accuracy of its SVM.

    scores: images -> [N] floats (one attribute) or [N, A] (A attributes, fitted on the same sample); the
        images are what `G.synthesize(ws, output=output)` returns: uint8 [N, H, W, C] (default) or float32
        [N, C, H, W] in [-1, 1] unclipped ("float"). Higher score = more of the attribute.
    name: the direction's name (one attribute) or a list of A names; None: "boundary" / "boundary0", ...
    samples, seed: seeds seed .. seed+samples-1 are scored; psi: truncation of their w (1: none);
    c: a conditional model's class for every sample (None: classes drawn evenly, RandomState(seed)).
    ratio: share of the samples kept at each end (top and bottom); holdout: share of those kept for validation.
    conditions: None, a unit vector [w_dim], an array [m, w_dim], a Directions, or a list of these:
        at most two vectors in all, projected out of every normal.
    batch: images generated and scored per call of `scores`; progress(done, samples) after each batch.
    Bad arguments raise ValueError naming the argument; a missing scikit-learn raises ImportError with the
    pip command that installs the `editing` extra."""
    if not isinstance(G, Generator):
        raise ValueError(f"G: expected a Generator (sg.load), got {type(G).__name__}")
    cfg = G.config
    if not callable(scores):
        raise ValueError(f"scores: expected a function images -> [N] or [N, A] floats, got {type(scores).__name__}")
    names = _check_names(name)
    samples = _check_int(samples, "samples", 2 * MIN_KEPT, MAX_SAMPLES)
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    if seed + samples > 2**32:
        raise ValueError(f"seed: seeds seed .. seed+samples-1 must stay below 2**32, got seed {seed} and "
                         f"samples {samples}")
    psi = check_psi(psi)
    classes = _check_class(c, cfg, samples, seed)
    ratio = _check_fraction(ratio, "ratio", 0.5)
    kept = int(math.floor(ratio * samples + 1e-9))
    if kept < MIN_KEPT:
        raise ValueError(f"ratio: ratio * samples keeps {kept} samples at each end, at least {MIN_KEPT} are needed "
                         f"(raise ratio or samples)")
    holdout = _check_fraction(holdout, "holdout", 1.0, inclusive=False)
    n_val = int(round(kept * holdout))
    if not 1 <= n_val < kept:
        raise ValueError(f"holdout: keeps {n_val} of the {kept} samples at each end for validation; at least one "
                         f"must be held out and one fitted")
    cond = condition_rows(conditions, cfg.w_dim)
    check_output(output)
    if output == "pil":
        raise ValueError("output: must be 'uint8' or 'float' (arrays for the scoring function), got 'pil'")
    batch = _check_int(batch, "batch", 1, 1 << 20)
    LinearSVC, sklearn_version = _linear_svc()

    # 1-2: sample and score
    w = np.empty((samples, cfg.w_dim), np.float32)
    score_parts = []
    for start in range(0, samples, batch):
        n = min(batch, samples - start)
        z = seed_to_z(range(seed + start, seed + start + n), cfg.z_dim)
        ws = G.map(z, c=None if classes is None else classes[start: start + n], psi=psi)
        w[start: start + n] = ws[:, 0]
        part = _check_scores(scores(G.synthesize(ws, output=output)), n, score_parts)
        score_parts.append(part)
        if progress is not None:
            progress(start + n, samples)
    s = np.concatenate(score_parts)                                        # [samples, A]
    attrs = s.shape[1]
    if names is None:
        names = ("boundary",) if attrs == 1 else tuple(f"boundary{i}" for i in range(attrs))
    elif len(names) != attrs:
        raise ValueError(f"name: scores gave {attrs} attribute(s) per image, got {len(names)} name(s)")

    # 3-4: one SVM per attribute
    rng = np.random.RandomState(seed)
    w64 = w.astype(np.float64)
    centre = w64.mean(axis=0)      # W centred on its mean: liblinear regularises the intercept too, which would
                                   # otherwise tilt the normal toward w's far-off mean
    normals, accuracy, report = [], [], []
    for a in range(attrs):
        order = np.argsort(s[:, a], kind="stable")
        low, high = order[:kept], order[-kept:]
        if s[high, a].min() <= s[low, a].max():
            raise ValueError(f"scores: attribute {names[a]!r} gives the top and bottom {kept} samples equal scores "
                             f"({s[low, a].max():.6g}); nothing separates them")
        high, low = rng.permutation(high), rng.permutation(low)
        n_fit = kept - n_val
        x_fit = np.concatenate([w64[high[:n_fit]], w64[low[:n_fit]]]) - centre
        x_val = np.concatenate([w64[high[n_fit:]], w64[low[n_fit:]]]) - centre
        y_fit = np.r_[np.ones(n_fit), np.zeros(n_fit)]
        y_val = np.r_[np.ones(n_val), np.zeros(n_val)]
        svm = LinearSVC(C=SVM_C, dual=bool(len(x_fit) <= cfg.w_dim), max_iter=100_000, random_state=seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            svm.fit(x_fit, y_fit)
        coef = svm.coef_.reshape(-1).astype(np.float64)
        norm = float(np.linalg.norm(coef))
        if not norm > 0:
            raise ValueError(f"scores: the SVM of attribute {names[a]!r} found no direction (a zero normal)")
        normals.append(coef / norm)
        accuracy.append(float(svm.score(x_val, y_val)))
        report.append({
            "train_accuracy": float(svm.score(x_fit, y_fit)),
            "validation_accuracy": accuracy[-1],
            "scores_kept": [float(s[low, a].min()), float(s[low, a].max()), float(s[high, a].min()),
                            float(s[high, a].max())],
            "offset": float(centre @ normals[-1] - svm.intercept_[0] / norm),   # the hyperplane: w . n = offset
            "top_seeds": [seed + int(i) for i in order[::-1][:8]],
            "bottom_seeds": [seed + int(i) for i in order[:8]],
            "svm_warnings": sorted({str(m.message).splitlines()[0] for m in caught}),
        })
    vectors = project_boundary(np.stack(normals), cond, names=names)
    for a, r in enumerate(report):
        r["w_std"] = float(np.std(w64 @ vectors[a]))                         # std of W along the final vector
    meta = {
        "method": "InterFaceGAN: linear SVM in W between the top and bottom `ratio` of the scored samples",
        "samples": samples, "seed": seed, "seeds": f"{seed}-{seed + samples - 1}", "psi": psi,
        "classes": "unconditional" if cfg.c_dim == 0 else ("evenly drawn" if c is None else repr(c)),
        "ratio": ratio, "kept": kept, "holdout": holdout, "validation": n_val, "output": output,
        "noise_mode": "const", "scores": getattr(scores, "__qualname__", type(scores).__name__),
        "svm": {"library": f"scikit-learn {sklearn_version}", "class": "LinearSVC", "C": SVM_C,
                "centred": True},
        "conditions": cond.tolist(), "attributes": dict(zip(names, report)),
        "w_std": [r["w_std"] for r in report], "source": G.source,
    }
    return Directions(vectors=vectors, values=np.array(accuracy), names=tuple(names), kind="boundary",
                      layers=None, model=model_identity(cfg, G.w_avg), meta=meta)


def project_boundary(normals: Any, conditions: Any, names: Sequence[str] | None = None) -> np.ndarray:
    """Unit normals [K, w_dim] (or one [w_dim]) with their part in the span of the condition vectors removed
    (InterFaceGAN's conditional manipulation; the conditions orthonormalised first), normalised again:
    float64, each row orthogonal to every condition. conditions: as `boundary`'s (already checked rows
    [m, w_dim] pass through). ValueError naming `conditions` when a normal lies in their span."""
    normals = np.asarray(normals, np.float64)
    single = normals.ndim == 1
    normals = np.atleast_2d(normals)
    cond = condition_rows(conditions, normals.shape[1])
    out = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    if len(cond):
        q, _ = np.linalg.qr(cond.T)                                  # [w_dim, m] orthonormal basis of the span
        for _ in range(2):                                           # the second pass removes float64 residue
            out = out - (out @ q) @ q.T
        lengths = np.linalg.norm(out, axis=1)
        if np.any(lengths < PARALLEL):
            k = int(np.argmin(lengths))
            label = repr(names[k]) if names is not None else f"row {k}"
            raise ValueError(f"conditions: the normal of {label} lies in the span of the conditions; nothing is "
                             f"left after projecting them out")
        out = out / lengths[:, None]
    return out[0] if single else out


def condition_rows(conditions: Any, w_dim: int) -> np.ndarray:
    """conditions -> float64 unit rows [m, w_dim], m <= MAX_CONDITIONS, linearly independent; ValueError
    naming `conditions`."""
    if conditions is None:
        return np.zeros((0, w_dim))
    items = list(conditions) if isinstance(conditions, (list, tuple)) else [conditions]
    rows = []
    for item in items:
        if isinstance(item, Directions):
            if item.w_dim != w_dim:
                raise ValueError(f"conditions: a direction set of w_dim {item.w_dim}, the model's w_dim is {w_dim}")
            rows.extend(item.vectors.astype(np.float64))
            continue
        try:
            arr = np.asarray(item, np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"conditions: expected vectors [w_dim] or Directions, got {type(item).__name__}") from None
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != w_dim:
            raise ValueError(f"conditions: expected vectors of w_dim {w_dim}, got shape {list(np.shape(item))}")
        rows.extend(arr)
    if len(rows) > MAX_CONDITIONS:
        raise ValueError(f"conditions: at most {MAX_CONDITIONS} condition vectors, got {len(rows)} (pick rows of "
                         f"a set with d.vectors[d.index(name)])")
    if not rows:
        return np.zeros((0, w_dim))
    cond = np.stack(rows)
    if not np.all(np.isfinite(cond)):
        raise ValueError("conditions: NaN or Inf")
    norms = np.linalg.norm(cond, axis=1)
    if np.any(norms == 0):
        raise ValueError("conditions: a zero vector has no direction")
    cond = cond / norms[:, None]
    if len(cond) == 2 and abs(float(cond[0] @ cond[1])) > 1 - 1e-9:
        raise ValueError("conditions: the two condition vectors are parallel; give one")
    return cond


def edit_effect(
    G: Generator,
    directions: Directions,
    scores: Callable[[np.ndarray], Any],
    *,
    sigmas: float = 3.0,
    samples: int = 200,
    seed: int = 10**9,
    psi: float = 1.0,
    c: Any = None,
    output: str = "uint8",
    batch: int = 256,
) -> dict[str, dict[str, Any]]:
    """What moving along each direction does to the scores: `samples` seeds from `seed` (by default far from
    the seeds a boundary was fitted on) are edited by -s, 0 and +s, s = sigmas * the standard deviation of W
    along the direction (meta["w_std"] of a boundary set, else measured on 10,000 mapped z), and scored.

    scores: as `boundary`'s; [N] floats are read for every direction, [N, K] column k for direction k.
    -> {name: {"strength": s, "minus": mean score at -s, "zero": at 0, "plus": at +s}}."""
    cfg = G.config
    directions.check_for(cfg)
    samples = _check_int(samples, "samples", 1, MAX_SAMPLES)
    seed = _check_int(seed, "seed", 0, 2**32 - samples)
    if isinstance(sigmas, bool) or not isinstance(sigmas, (int, float)) or not 0 < sigmas <= 100:
        raise ValueError(f"sigmas: must be a number in (0, 100], got {sigmas!r}")
    classes = _check_class(c, cfg, samples, seed)
    std = directions.meta.get("w_std")
    if not (isinstance(std, list) and len(std) == len(directions)):
        z = np.random.RandomState(seed).randn(10_000, cfg.z_dim)
        w = G.map(z, c=_check_class(c, cfg, 10_000, seed), psi=psi)[:, 0].astype(np.float64)
        std = list(np.std(w @ directions.vectors.T.astype(np.float64), axis=0))
    ws = G.map(seed_to_z(range(seed, seed + samples), cfg.z_dim), c=classes, psi=psi)

    def mean_scores(edited: np.ndarray) -> np.ndarray:
        parts: list[np.ndarray] = []
        for i in range(0, samples, batch):
            parts.append(_check_scores(scores(G.synthesize(edited[i: i + batch], output=output)),
                                       len(edited[i: i + batch]), parts))
        return np.concatenate(parts).mean(axis=0)

    zero = mean_scores(ws)
    if zero.shape[0] not in (1, len(directions)):
        raise ValueError(f"scores: gave {zero.shape[0]} attributes per image; expected 1 or {len(directions)} "
                         f"(one per direction)")
    out = {}
    for k, name in enumerate(directions.names):
        col = 0 if zero.shape[0] == 1 else k
        strength = float(sigmas * std[k])
        row = {"strength": strength, "zero": float(zero[col])}
        for label, sign in (("minus", -1.0), ("plus", 1.0)):
            delta = (sign * strength * directions.vectors[k]).astype(np.float32)
            row[label] = float(mean_scores(add_on_rows(ws, directions.layers, delta))[col])
        out[name] = {key: row[key] for key in ("strength", "minus", "zero", "plus")}
    return out


# ----------------------------------------------------------------------------
# Checks


def _linear_svc() -> tuple[Any, str]:
    """(scikit-learn's LinearSVC, scikit-learn's version); ImportError with the pip command of the extra."""
    try:
        import sklearn
        from sklearn.svm import LinearSVC
    except ImportError as e:
        raise ImportError(f"boundaries are fitted with scikit-learn, which is not installed ({e}); install it "
                          f"with: {install_hint('editing')}") from None
    return LinearSVC, sklearn.__version__


def _check_names(name: Any) -> tuple[str, ...] | None:
    if name is None:
        return None
    names = (name,) if isinstance(name, str) else name
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"name: expected a name or a list of names (one per attribute), got {name!r}")
    return tuple(names)


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name}: must be an int in {low}..{high}, got {value!r}")
    return int(value)


def _check_fraction(value: Any, name: str, high: float, inclusive: bool = True) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) and math.isfinite(value)
          and 0 < value and (value <= high if inclusive else value < high))
    if not ok:
        raise ValueError(f"{name}: must be a number in (0, {high:g}{']' if inclusive else ')'}, got {value!r}")
    return float(value)


def _check_class(c: Any, cfg: Any, samples: int, seed: int) -> np.ndarray | None:
    """[samples, c_dim] class vectors (None for an unconditional model): c for every sample, or classes drawn
    evenly from RandomState(seed) when c is None on a conditional model."""
    if cfg.c_dim == 0:
        check_c(c, 0, 1)                                  # ValueError naming c when one is given
        return None
    if c is None:
        return np.eye(cfg.c_dim, dtype=np.float32)[np.random.RandomState(seed).randint(cfg.c_dim, size=samples)]
    return np.repeat(check_c(c, cfg.c_dim, 1, cfg.class_names), samples, axis=0)


def _check_scores(value: Any, n: int, before: list[np.ndarray]) -> np.ndarray:
    """What `scores` returned for n images -> float64 [n, A], A the same as the batches before."""
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"scores: the function must return numbers [N] or [N, A], got {type(value).__name__}") \
            from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise ValueError(f"scores: expected [{n}] or [{n}, A] for {n} images, got shape {list(np.shape(value))}")
    if before and arr.shape[1] != before[0].shape[1]:
        raise ValueError(f"scores: gave {before[0].shape[1]} attributes per image, then {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("scores: NaN or Inf among the scores")
    return arr
