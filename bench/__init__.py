"""Benchmark: MISC and classical codecs at matched bits per pixel over an image folder."""
