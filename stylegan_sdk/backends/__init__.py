"""Backends: the interface (base.py) and its one registry (registry.py)."""

from .base import Backend
from .registry import BACKEND_CHOICES, REGISTRY, backend_class, register

__all__ = ["BACKEND_CHOICES", "REGISTRY", "Backend", "backend_class", "register"]
