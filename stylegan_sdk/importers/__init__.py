"""Importers: each reads one foreign checkpoint format without executing anything in it and yields our
config + a state dict under our names.

    nvlabs/       NVlabs PyTorch pickles (StyleGAN2-ADA, StyleGAN3)      reader + convert
    nvidia_tf/    NVIDIA TensorFlow pickles (StyleGAN v1, StyleGAN2)      reader + convert
    rosinality/   rosinality .pt / .model files (StyleGAN v1, StyleGAN2)  reader + stylegan1 + stylegan2
    safe_pickle   the allow-list unpickler the two pickle readers share
    common        small NumPy helpers
"""
