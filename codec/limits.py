"""The pixel limit: how large a picture this process agrees to encode or decode.

One limit for both directions, so that every file the codec writes it can also read
back, and a file whose header names a huge picture (a few hundred bytes can say
8192×8192) is refused before any work. Decoding costs time and memory in proportion to
the picture (the restore decoder: about 250 s and 1.9 GB for 2048² on a 2-core machine),
so the default is what a shared CPU machine decodes in reasonable time; raise
it with MISC_MAX_PIXELS or a ``max_pixels`` argument (``--max-pixels`` on the CLI).
"""

from __future__ import annotations

import os

from .errors import ArgumentError

ENV = "MISC_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 1024 * 1024


def max_pixels(explicit: int | None = None) -> int:
    """`explicit` when given, else MISC_MAX_PIXELS, else DEFAULT_MAX_PIXELS (read at each call)."""
    value: object = explicit
    source = "max_pixels"
    if value is None:
        value = os.environ.get(ENV)
        source = ENV
        if value is None:
            return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        limit = 0
    if limit < 1 or (isinstance(value, float) and value != limit):
        raise ArgumentError(f"{source} must be a positive whole number of pixels, got {value!r}")
    return limit
