"""The floor every other decoder must beat: a bicubic resize of the pixel layer.

It needs no model, so it is the decoder of last resort, and the reference that shows what
the restoration and diffusion decoders add.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import DecodedLayers, DecodeResult
from .base import Progress, finish, report, require_lowres, upsample


@dataclass
class BicubicDecoder:
    name: str = "bicubic"
    reason: str = "chosen by the caller"  # why this decoder: set by get_decoder

    def decode(self, layers: DecodedLayers, progress: Progress | None = None) -> DecodeResult:
        lowres = require_lowres(layers)
        image = finish(upsample(lowres, (layers.width, layers.height)), layers)
        report(progress, 1.0, "bicubic upsampling done")
        return DecodeResult(
            image=image,
            decoder=self.name,
            metadata={
                "decoder_reason": self.reason,
                "ignored_layers": ["text", "maps"],
                "lowres_size": list(lowres.size),
            },
        )
