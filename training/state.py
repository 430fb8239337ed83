"""The full training state in one file: safetensors for the tensors, JSON in its header for the rest.

    training-state-000012800.safetensors        (named by the number of real images seen)
      tensors     G.*, D.*, G_ema.*             every parameter and buffer (w_avg, noise_const, ...)
                  G_opt.<i>.<key>, D_opt.*      Adam moments and step counts, by parameter index
                  loss.pl_mean                  running mean path length
                  rng.torch                     the process's global torch generator (D's augmentations)
                  rng.shared                    the shared torch.Generator (all processes draw the same)
                  augment.p, augment.signs      ADA's probability and sign(D(real)) sums (--aug ada)
      header      format, format_version and "state": JSON with the counters (cur_nimg, cur_tick,
                  batch_idx, ...), the optimisers' param_groups, the options and the data set's shape

`TrainState` is that content as one object, live during training: its `save` and `load` are the
one place where the entries are named.

No pickle: tensors are raw safetensors arrays, everything else is JSON. The file is written
atomically (temporary file, fsync, rename), so a killed run leaves the previous state or the new
one, never half of one; `latest_state` then picks the newest readable file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

import torch

from stylegan_sdk.formats.fileio import atomic_write_bytes

from .augment import AdaptiveP
from .losses import StyleGANLoss, world_size
from .presets import TrainingOptions

FORMAT = "stylegan-sdk.training-state"
FORMAT_VERSION = "1"
STATE_RE = re.compile(r"^training-state-(\d{9,})\.safetensors$")


class StateError(ValueError):
    """A training state file that cannot be used (missing, corrupt, another format)."""


def state_filename(cur_nimg: int) -> str:
    return f"training-state-{cur_nimg:09d}.safetensors"


# ----------------------------------------------------------------------------
# Optimisers <-> flat tensors + JSON


def optimizer_to_flat(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch optimizer state_dict -> {prefix.<param index>.<key>: tensor} and JSON-able param_groups."""
    sd = opt.state_dict()
    tensors = {}
    for idx, per_param in sd["state"].items():
        for key, value in per_param.items():
            tensors[f"{prefix}.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().clone()  # not a live alias
    return tensors, {"param_groups": sd["param_groups"]}


def optimizer_from_flat(prefix: str, tensors: Mapping[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    """The inverse: a state_dict for `opt.load_state_dict`."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    head = prefix + "."
    for name, value in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": info["param_groups"]}


# ----------------------------------------------------------------------------
# Modules <-> flat tensors


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def load_module(prefix: str, module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    head = prefix + "."
    sd = {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(sd) & set(expected) if tuple(sd[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        raise StateError(f"{source}: {prefix} does not match this run's network "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shapes {wrong[:3]})")
    module.load_state_dict(sd, strict=True)


# ----------------------------------------------------------------------------
# The file


def save_training_state(path: str, tensors: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> None:
    """Write tensors + JSON info atomically."""
    from safetensors.torch import save

    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "state": json.dumps(dict(info), sort_keys=True)}
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=header)
    atomic_write_bytes(path, data)


def load_training_state(path: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, info); StateError naming the file for anything unusable."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    if not os.path.isfile(path):
        raise StateError(f"resume: no such training state {path!r}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8: 8 + header_len]).get("__metadata__") or {}
    except (SafetensorError, ValueError, json.JSONDecodeError) as e:
        raise StateError(f"resume: {path!r} is not a readable training state ({e})") from None
    return tensors, _state_info(path, header)


def read_state_info(path: str) -> dict[str, Any]:
    """The info of a training state (cur_nimg, ...) from its header alone; StateError as load_training_state."""
    from safetensors import SafetensorError, safe_open

    if not os.path.isfile(path):
        raise StateError(f"resume: no such training state {path!r}")
    try:
        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise StateError(f"resume: {path!r} is not a readable training state ({e})") from None
    return _state_info(path, header)


def _state_info(path: str, header: Mapping[str, str]) -> dict[str, Any]:
    if header.get("format") != FORMAT:
        raise StateError(f"resume: {path!r} is not a stylegan-sdk training state")
    if header.get("format_version") != FORMAT_VERSION:
        raise StateError(f"resume: {path!r} has format_version {header.get('format_version')!r}, "
                         f"this version reads {FORMAT_VERSION!r}")
    try:
        return json.loads(header["state"])
    except (KeyError, json.JSONDecodeError) as e:
        raise StateError(f"resume: {path!r} has a damaged header ({e})") from None


def list_states(outdir: str) -> list[tuple[int, str]]:
    """(images seen, path) of every training state in a run folder, oldest first."""
    if not os.path.isdir(outdir):
        return []
    found = []
    for name in os.listdir(outdir):
        m = STATE_RE.match(name)
        if m:
            found.append((int(m.group(1)), os.path.join(outdir, name)))
    return sorted(found)


def latest_state(outdir: str) -> str | None:
    """The newest training state whose header reads back (a damaged one falls back to the one before)."""
    from safetensors import SafetensorError, safe_open

    for _, path in reversed(list_states(outdir)):
        try:
            with safe_open(path, framework="pt") as f:
                if (f.metadata() or {}).get("format") == FORMAT:
                    return path
        except (SafetensorError, OSError, ValueError):
            continue
    return None


def prune_states(outdir: str, keep: int) -> None:
    """Delete all but the newest `keep` training states."""
    states = list_states(outdir)
    for _, path in states[: max(0, len(states) - keep)]:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


# ----------------------------------------------------------------------------
# The state as one object

# The entries of a state file besides the networks and optimisers: their names, written and read only below.
PL_MEAN = "loss.pl_mean"
RNG_SHARED = "rng.shared"
RNG_TORCH = "rng.torch"
AUG_P = "augment.p"
AUG_SIGNS = "augment.signs"


@dataclass
class TrainState:
    """Everything a run needs to continue exactly. The loop trains these objects and counts in these fields;
    `save` writes them to a file and `load` puts a file back into them (in place: build the objects first)."""

    G: torch.nn.Module                              # the generator being trained
    D: torch.nn.Module                              # the discriminator
    G_ema: torch.nn.Module                          # G's moving average (what checkpoints hold)
    optimizers: dict[str, torch.optim.Optimizer]    # Adam per network, by name ("G", "D")
    loss: StyleGANLoss                              # holds the running mean path length (pl_mean)
    shared_rng: torch.Generator                     # latents, labels, noise, mixing: the same in every process
    ada: AdaptiveP | None                           # --aug ada: p and the sign(D(real)) sums; None otherwise
    cur_nimg: int = 0                               # real images seen
    cur_tick: int = 0                               # ticks done (= the number of the tick under way)
    batch_idx: int = 0                              # steps done
    stage_resolution: int | None = None             # resolution of the last step (v1 grows; None before a step)
    stage_alpha: float = 1.0                        # fade-in of the last step (v1; 1 = none)
    total_time: float = 0.0                         # seconds trained, over every start of the run

    def modules(self) -> list[tuple[str, torch.nn.Module]]:
        return [("G", self.G), ("D", self.D), ("G_ema", self.G_ema)]

    def save(self, path: str, opts: TrainingOptions, generator_config: dict[str, Any],
             dataset: dict[str, Any]) -> None:
        """Write the state atomically, with the run's options, generator config and data set info for readers."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in self.modules():
            tensors.update(module_tensors(prefix, module))
        info: dict[str, Any] = {name: getattr(self, name) for name in COUNTERS}
        info.update(world_size=world_size(), options=opts.to_dict(), generator_config=generator_config,
                    dataset=dataset, optimizers={})
        for name, opt in self.optimizers.items():
            opt_tensors, info["optimizers"][name] = optimizer_to_flat(f"{name}_opt", opt)
            tensors.update(opt_tensors)
        tensors[PL_MEAN] = self.loss.pl_mean.detach().cpu().reshape([])
        tensors[RNG_SHARED] = self.shared_rng.get_state()
        tensors[RNG_TORCH] = torch.get_rng_state()
        if self.ada is not None:
            tensors[AUG_P] = self.ada.pipe.p.detach().cpu().reshape([])
            tensors[AUG_SIGNS] = self.ada.signs.detach().cpu().clone()
        save_training_state(path, tensors, info)

    def load(self, path: str) -> None:
        """Put the state saved in `path` back: weights, optimiser moments, pl_mean, the shared and the global torch
        random generators, ADA's p and the counters. StateError naming the file for an entry missing or left over,
        or another network."""
        tensors, info = load_training_state(path)
        missing = [k for k in COUNTERS if k not in info]
        missing += [f"optimizers.{n}" for n in self.optimizers if n not in info.get("optimizers", {})]
        missing += [k for k in (PL_MEAN, RNG_SHARED, RNG_TORCH) if k not in tensors]
        if (AUG_P in tensors) != (AUG_SIGNS in tensors):    # ADA's entries come as a pair
            missing.append(AUG_SIGNS if AUG_P in tensors else AUG_P)
        prefixes = tuple(f"{p}." for p, _ in self.modules()) + tuple(f"{n}_opt." for n in self.optimizers)
        stray = [k for k in tensors
                 if k not in (PL_MEAN, RNG_SHARED, RNG_TORCH, AUG_P, AUG_SIGNS) and not k.startswith(prefixes)]
        if missing or stray:
            raise StateError(f"resume: {path!r} does not hold this run's training state "
                             f"(missing {missing[:3]}, unexpected {stray[:3]})")
        for prefix, module in self.modules():
            load_module(prefix, module, tensors, path)
        for name, opt in self.optimizers.items():
            opt.load_state_dict(optimizer_from_flat(f"{name}_opt", tensors, info["optimizers"][name]))
        self.loss.pl_mean.copy_(tensors[PL_MEAN])
        self.shared_rng.set_state(tensors[RNG_SHARED])
        torch.set_rng_state(tensors[RNG_TORCH])
        if self.ada is not None and AUG_P in tensors:  # an ADA run goes on where p was (else: from --aug-p)
            self.ada.pipe.p.copy_(tensors[AUG_P])
            self.ada.signs.copy_(tensors[AUG_SIGNS])
        for name in COUNTERS:
            setattr(self, name, info[name])


# The fields with a default: the counters, saved as JSON in the header.
COUNTERS = tuple(f.name for f in fields(TrainState) if f.default is not MISSING)
