"""Projection: find the latents (ws) whose generated image matches a given image, by optimisation."""
