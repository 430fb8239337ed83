"""NVlabs' PyTorch network pickles (stylegan2-ada-pytorch, stylegan3): `reader` unpickles them through the
allow-list (nothing in the file runs; torch only to read tensor storages), `convert` turns a network's
constructor kwargs and state dict into our config and tensors.
"""

from __future__ import annotations

from .convert import config_from_init_kwargs, import_pickle, import_state
from .reader import NetworkRecord, list_network_pickle_keys, read_network_pickle

__all__ = ["NetworkRecord", "config_from_init_kwargs", "import_pickle", "import_state", "list_network_pickle_keys",
           "read_network_pickle"]
