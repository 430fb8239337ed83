"""The `triton://` model address and the model parameter that a Triton model repository carries.

    triton://HOST[:PORT]/NAME[?timeout=SECONDS]      the pair NAME_mapping / NAME_synthesis on Triton's gRPC port
    parameters { key: "stylegan_sdk_model" ... }     in each config.pbtxt: format, graph, precision, the
                                                     generator's config and w_avg, as JSON
    parameters { key: "stylegan_sdk_directions" ... } in the synthesis model's config.pbtxt, when the exported
                                                     folder carries direction sets: each set's file (base64),
                                                     so a triton:// model edits like the folder (G.directions)

The `triton` backend reads both (no torch); the repository writer (`stylegan_sdk.export.triton`) writes
the parameter. The parameter is checked like model.json's config before a model is used.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import PRECISIONS, GeneratorConfig
from ..editing.directions import Directions, check_shipped_set_name, directions_from_bytes
from .exported import GRAPHS, check_config_record, check_w_avg

PARAMETER = "stylegan_sdk_model"            # config.pbtxt parameter (JSON): format, graph, precision, config, w_avg
PARAMETER_FORMAT = "stylegan-sdk.triton/1"
DIRECTIONS_PARAMETER = "stylegan_sdk_directions"   # synthesis config.pbtxt parameter (JSON): the direction sets
DIRECTIONS_FORMAT = "stylegan-sdk.triton-directions/1"
MAX_DIRECTIONS_PARAMETER = 8 << 20          # characters: well within what the triton backend reads of a config
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
SCHEME = "triton"                           # sg.load("triton://host:8001/NAME")
DEFAULT_PORT = 8001                         # Triton's gRPC port
DEFAULT_TIMEOUT_S = 30.0


def model_names(name: str) -> dict[str, str]:
    """graph -> Triton model name: NAME_mapping, NAME_synthesis."""
    return {graph: f"{name}_{graph}" for graph in GRAPHS}


def check_name(name: object, what: str = "name") -> str:
    """A model name prefix: letters, digits, '_' and '-' (a folder name in the repository and a URL segment)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{what}: {name!r} is not a model name (1-100 letters, digits, '_' or '-', "
                         f"starting with a letter or digit)")
    return name



def model_parameter(graph: str, config: GeneratorConfig, w_avg: np.ndarray, precision: str) -> str:
    """The `stylegan_sdk_model` parameter: what a client needs to run the pair (config, w_avg), as JSON."""
    record = {"format": PARAMETER_FORMAT, "graph": graph, "precision": precision, "config": config.to_dict(),
              "w_avg": np.asarray(w_avg, np.float32).tolist()}
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True)



def read_parameter(text: str, graph: str, where: str) -> tuple[GeneratorConfig, np.ndarray, str]:
    """(config, w_avg, precision) from a model's `stylegan_sdk_model` parameter, checked like model.json."""
    try:
        record: Any = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{where}: unreadable {PARAMETER} parameter ({' '.join(str(e).split())[:120]})") from None
    if not isinstance(record, dict) or record.get("format") != PARAMETER_FORMAT or record.get("graph") != graph:
        raise ValueError(f"{where}: the {PARAMETER} parameter is not a stylegan-sdk {graph} model's "
                         f"(format {PARAMETER_FORMAT!r}; re-export with stylegan export triton)")
    if record.get("precision") not in PRECISIONS:
        raise ValueError(f"{where}: {PARAMETER} precision must be one of {PRECISIONS}")
    config = check_config_record(f"{where}: {PARAMETER}", record.get("config"))
    return config, check_w_avg(where, record.get("w_avg"), config.w_dim), record["precision"]


def directions_parameter(sets: Mapping[str, bytes]) -> str:
    """The `stylegan_sdk_directions` parameter: {set name: the bytes of its direction set file} as JSON (base64).
    ValueError naming `directions` when the sets are too large for a model config."""
    record = {"format": DIRECTIONS_FORMAT,
              "sets": {check_shipped_set_name(name): base64.b64encode(data).decode("ascii")
                       for name, data in sets.items()}}
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=True)
    if len(text) > MAX_DIRECTIONS_PARAMETER:
        raise ValueError(f"directions: the direction sets take {len(text) >> 20} MiB in the Triton model config, "
                         f"over {MAX_DIRECTIONS_PARAMETER >> 20} MiB; ship fewer or smaller sets, or give them to "
                         f"sg.load(url, directions=...)")
    return text


def read_directions_parameter(text: str, where: str) -> dict[str, Directions]:
    """The direction sets of a synthesis model's `stylegan_sdk_directions` parameter, each read as its file is."""
    if len(text) > MAX_DIRECTIONS_PARAMETER:
        raise ValueError(f"{where}: the {DIRECTIONS_PARAMETER} parameter is larger than "
                         f"{MAX_DIRECTIONS_PARAMETER >> 20} MiB (not one stylegan export triton wrote)")
    try:
        record: Any = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{where}: unreadable {DIRECTIONS_PARAMETER} parameter "
                         f"({' '.join(str(e).split())[:120]})") from None
    if not isinstance(record, dict) or record.get("format") != DIRECTIONS_FORMAT \
            or not isinstance(record.get("sets"), dict):
        raise ValueError(f"{where}: the {DIRECTIONS_PARAMETER} parameter is not stylegan-sdk direction sets "
                         f"(format {DIRECTIONS_FORMAT!r})")
    out = {}
    for name, data in record["sets"].items():
        check_shipped_set_name(name, f"{where}: {DIRECTIONS_PARAMETER}")
        try:
            raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None:
            raise ValueError(f"{where}: {DIRECTIONS_PARAMETER}: set {name!r} is not base64 text")
        out[name] = directions_from_bytes(raw, f"{where}: {DIRECTIONS_PARAMETER}: set {name!r}")
    return out


# ----------------------------------------------------------------------------
# triton://HOST[:PORT]/NAME


@dataclass(frozen=True)
class TritonAddress:
    target: str        # host:port of Triton's gRPC endpoint
    name: str          # the model pair NAME_mapping / NAME_synthesis
    timeout_s: float   # per call

    @property
    def url(self) -> str:
        return f"{SCHEME}://{self.target}/{self.name}"


def is_triton_url(path: object) -> bool:
    return isinstance(path, str) and path.startswith(f"{SCHEME}://")


MAX_URL = 2048                              # characters in a triton:// address
MAX_HOST = 253                              # a DNS name's limit
_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                        r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}")


def check_host(host: str, url: str) -> None:
    """A DNS name, an IPv4 address or an IPv6 literal (letters, digits, '-', '_', '.', ':'), at most
    MAX_HOST characters: gRPC would otherwise resolve whatever a NUL or a megabyte of text makes of it.
    ValueError naming the URL's host part."""
    ok = bool(_IPV6.fullmatch(host) and ":" in host) if ":" in host else bool(_HOST_NAME.fullmatch(host))
    if not ok:
        shown = repr(host[:60]) + (f"... ({len(host)} characters)" if len(host) > 60 else "")
        raise ValueError(f"path: the host {shown} of {url[:100]!r} is not a host name or IP address "
                         f"(at most {MAX_HOST} letters, digits, '-', '_', '.'; IPv6 in [brackets])")


def parse_url(url: str) -> TritonAddress:
    """triton://HOST[:PORT]/NAME[?timeout=SECONDS] -> TritonAddress; ValueError naming `path` otherwise."""
    bad = f"path: {url[:200]!r} is not a Triton address (expected triton://HOST[:PORT]/NAME[?timeout=SECONDS])"
    try:
        parts = urllib.parse.urlsplit(url)
        port = DEFAULT_PORT if parts.port is None else parts.port
    except ValueError:
        raise ValueError(bad) from None
    if parts.scheme != SCHEME or not 0 < port < 65536 or not parts.hostname or parts.fragment \
            or parts.username or parts.password:
        raise ValueError(bad)
    check_host(parts.hostname, url)
    if len(url) > MAX_URL:
        raise ValueError(f"path: a Triton address of {len(url)} characters (at most {MAX_URL}): {url[:60]!r}...")
    name = parts.path[1:] if parts.path.startswith("/") else ""
    if not name:
        raise ValueError(bad)
    check_name(name, "path")
    try:
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        query = {"": []}
    if set(query) - {"timeout"} or any(len(v) != 1 for v in query.values()):
        raise ValueError(f"path: {url!r}: the only option is ?timeout=SECONDS")
    timeout = DEFAULT_TIMEOUT_S
    if "timeout" in query:
        try:
            timeout = float(query["timeout"][0])
        except ValueError:
            timeout = float("nan")
        if not 0 < timeout <= 3600:
            raise ValueError(f"path: {url!r}: timeout must be a number of seconds in (0, 3600]")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return TritonAddress(f"{host}:{port}", name, timeout)


__all__ = ["DIRECTIONS_PARAMETER", "PARAMETER", "SCHEME", "TritonAddress", "check_name", "directions_parameter",
           "is_triton_url", "model_names", "model_parameter", "parse_url", "read_directions_parameter",
           "read_parameter"]
