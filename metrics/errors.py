"""Typed errors raised at the edge of the metrics package.

Callers (bench, study, demo) catch these to tell a user what went wrong with their
input, instead of seeing a shape error from deep inside torch or scipy.
"""

from __future__ import annotations


class MetricsError(Exception):
    """Base class of every error this package raises on purpose."""


class ImageInputError(MetricsError, ValueError):
    """An image is not a PIL image or an HxWx3 uint8 array, or is too small."""


class ImageSizeMismatchError(ImageInputError):
    """A full-reference metric got a reference and a distorted image of different sizes."""


class UnknownMetricError(MetricsError, KeyError):
    """A metric name that the registry does not know."""

    def __str__(self) -> str:  # KeyError would print the repr with quotes
        return str(self.args[0]) if self.args else "unknown metric"


class MetricUnavailableError(MetricsError, RuntimeError):
    """A metric was asked for explicitly but cannot run here (weights missing, ...)."""


class MetricInputError(MetricsError, ValueError):
    """The call lacks something a metric needs (a caption for CLIP-T, enough images for a set)."""


class FetchError(MetricsError):
    """A parameter file could not be fetched, or its bytes were not the expected ones."""
