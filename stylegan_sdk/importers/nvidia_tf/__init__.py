"""NVIDIA's TensorFlow StyleGAN (v1) and StyleGAN2 pickles, without TensorFlow or torch: `reader` unpickles
them through the allow-list (the embedded build source is never run), `convert` turns `Gs` into our
config and tensors.
"""

from __future__ import annotations

from .convert import import_tf_network, import_tf_pickle
from .reader import TFNetwork, is_tf_pickle, read_tf_pickle

__all__ = ["TFNetwork", "import_tf_network", "import_tf_pickle", "is_tf_pickle", "read_tf_pickle"]
