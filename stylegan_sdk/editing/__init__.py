"""Editing: direction sets in W (the file format), SeFa, GANSpace and attribute boundaries."""
