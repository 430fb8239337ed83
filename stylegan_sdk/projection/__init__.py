"""Projection: find the latents (W or W+, and the noise) whose synthesis matches a target image."""
