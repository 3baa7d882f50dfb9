"""Typed errors raised at the codec's edges.

Every way a caller can hand the codec something bad ends in one of these, with a message
a person can act on. The CLI prints the message on one line and exits non-zero; the demo
shows it; nothing else in the process has to know how the input was bad.
"""

from __future__ import annotations


class CodecError(Exception):
    """Base of every error the codec raises on purpose."""


class BitstreamError(CodecError, ValueError):
    """A .misc file is truncated, corrupted, of an unknown version, or otherwise unreadable."""


class ImageInputError(CodecError, ValueError):
    """An input image cannot be coded: unreadable, empty, too large or too small."""


class BudgetError(CodecError, ValueError):
    """The requested rate is below the smallest file the codec can make for this image.

    ``minimum_bpp`` says what the smallest achievable rate is, so callers can offer it.
    """

    def __init__(self, message: str, minimum_bpp: float | None = None, minimum_bytes: int | None = None):
        super().__init__(message)
        self.minimum_bpp = minimum_bpp
        self.minimum_bytes = minimum_bytes


class ModelUnavailableError(CodecError, RuntimeError):
    """A model the file or the configuration names cannot be loaded here.

    The message names the model and says how to provide it (a local path, an
    environment variable, network access to the hub).
    """


class DescriberError(CodecError, RuntimeError):
    """A describer could not produce a description: the API refused, timed out or kept
    failing after its retries, or a user's text could not be read. The message says which
    backend, what it answered and what to change."""


class RecipeError(CodecError, ValueError):
    """Generation metadata (an AI image's recipe: PNG text chunks, EXIF, XMP, ComfyUI or
    InvokeAI JSON) is malformed, too large or of the wrong type. Metadata is untrusted
    input: the message says which field of which format is wrong and why."""


class PixelLimitError(BitstreamError):
    """A file's header names a picture larger than this decoder's pixel limit.

    The file may be valid; decoding it would cost time and memory in proportion to its
    size, and a few hundred bytes can name 8192×8192, so the size is checked from the
    header before any work. ``width``, ``height`` and ``limit`` let a caller say how much
    it would take (MISC_MAX_PIXELS or a ``max_pixels`` argument raise the limit).
    """

    def __init__(self, width: int, height: int, limit: int):
        super().__init__(
            f"the file's picture is {width}x{height} = {width * height:,} pixels, above this decoder's "
            f"limit of {limit:,} pixels"
        )
        self.width = width
        self.height = height
        self.limit = limit

    def __reduce__(self):  # picklable across processes, like the other errors
        return type(self), (self.width, self.height, self.limit)


class ArgumentError(CodecError, ValueError):
    """A caller asked for something that cannot mean anything: an unknown decoder name, a
    target rate that is not a positive number. Distinct from BudgetError (a real target
    below what the image allows) so that a CLI can tell bad usage from a low target."""
