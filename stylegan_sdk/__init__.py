"""stylegan-sdk: StyleGAN generators to train, export and serve.

    import stylegan_sdk as sg
    G = sg.load("model.safetensors")          # or an official network-snapshot-*.pkl
    images = G.generate("0-3", psi=0.7)       # list of PIL images
    p = sg.project(G, target_image, loss="mse")  # image -> ws (torch backend): p.ws, p.images, p.save_npz(...)
"""

from .config import GeneratorConfig, ModelInfo
from .editing.boundary import boundary
from .editing.directions import Directions, load_directions
from .editing.ganspace import ganspace
from .editing.sefa import sefa
from .formats.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .generator import Generator
from .latents import interpolation_path, mix_ws, seed_to_z, truncate
from .loading import load, read_model
from .version import package_version

# The gRPC client imports grpc, projection imports torch: only when first used (`sg.Client`, `sg.project`), never
# with `import stylegan_sdk`.
_LAZY = {"Client": ".client", "AsyncClient": ".client", "project": ".projection.project",
         "Projection": ".projection.project", "ProjectionUnavailable": ".projection.project"}


def __getattr__(name: str):
    if name == "__version__":
        globals()[name] = package_version()
        return globals()[name]
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncClient",
    "Checkpoint",
    "Client",
    "Directions",
    "Generator",
    "GeneratorConfig",
    "ModelInfo",
    "Projection",
    "ProjectionUnavailable",
    "boundary",
    "ganspace",
    "interpolation_path",
    "load",
    "load_checkpoint",
    "load_directions",
    "mix_ws",
    "project",
    "read_model",
    "save_checkpoint",
    "sefa",
    "seed_to_z",
    "truncate",
]
