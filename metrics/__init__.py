"""Image quality metrics for the MISC project: full-reference, no-reference, CLIP, set-level.

Public API::

    import metrics
    metrics.available()                      # {name: (ok, reason)}
    metrics.compute(ref, dist, ["psnr", "lpips_alex"])           # one pair
    metrics.compute(None, dist, ["niqe"])                         # no-reference only
    metrics.compute_batch(refs, dists, names)                     # many pairs
    metrics.compute_set(refs, dists, ["fd_vgg16", "fid", "kid"])  # sets
    metrics.METRICS["lpips_alex"].higher_is_better                # False
    metrics.METRICS["lpips_alex"].display_name                    # "LPIPS-alex"

Nothing here imports the codec.
"""

from .api import available, compute, compute_batch, compute_set, configure, set_model
from .errors import (
    FetchError,
    ImageInputError,
    ImageSizeMismatchError,
    MetricInputError,
    MetricsError,
    MetricUnavailableError,
    UnknownMetricError,
)
from .registry import METRICS, PAIR_METRICS, SET_METRICS, MetricInfo, info

__all__ = [
    "METRICS",
    "FetchError",
    "PAIR_METRICS",
    "SET_METRICS",
    "ImageInputError",
    "ImageSizeMismatchError",
    "MetricInfo",
    "MetricInputError",
    "MetricUnavailableError",
    "MetricsError",
    "UnknownMetricError",
    "available",
    "compute",
    "compute_batch",
    "compute_set",
    "configure",
    "info",
    "set_model",
]
