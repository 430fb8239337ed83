"""Importers that read third-party StyleGAN checkpoint formats without executing them."""
