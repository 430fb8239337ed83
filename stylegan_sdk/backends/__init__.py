"""Backends behind one interface (see base.py); the heavy ones import lazily."""

from .base import REGISTRY, Backend, backend_class, register

__all__ = ["REGISTRY", "Backend", "backend_class", "register"]
