"""One interface over every codec the benchmark runs: code at a target bpp, decode, time both.

    image, target bpp ─▶ adapter.encode ─▶ bytes (whole file, ≤ budget) ─▶ adapter.decode ─▶ image

The benchmark only ever sees bytes and images, so MISC and the classical baselines are
measured the same way: the rate is ``8·len(bytes)/pixels`` and the decode starts from
the bytes alone (plus the original size, for classical files that do not store it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from . import classical


@dataclass
class Coded:
    """One image coded and decoded by one codec at one target."""

    data: bytes
    image: Image.Image  # decoded, original size, RGB
    encode_seconds: float
    decode_seconds: float
    info: dict[str, Any] = field(default_factory=dict)  # factor, quality, decoder, notes ...


class NoFit(Exception):
    """The codec cannot make a file this small for this image (not an error of the run)."""


class Adapter(Protocol):
    name: str
    ext: str  # file extension of the coded file, e.g. ".webp"

    def code(self, image: Image.Image, target_bpp: float, recipe: Any = None) -> Coded: ...


@dataclass
class ClassicalAdapter:
    """A classical codec at its best-PSNR setting that fits (see bench.classical)."""

    name: str

    @property
    def ext(self) -> str:
        return {"jpeg": ".jpg", "webp": ".webp", "avif": ".avif", "jxl": ".jxl"}[self.name]

    def code(self, image: Image.Image, target_bpp: float, recipe: Any = None) -> Coded:
        """``recipe`` is ignored: a classical codec has no use for generation settings."""
        budget = classical.budget_for_bpp(image.size, target_bpp)
        t0 = time.perf_counter()
        r = classical.encode_at_budget(image, budget, self.name)
        t1 = time.perf_counter()
        if r is None:
            raise NoFit(f"no {self.name} file of any quality or downsampling fits {budget} bytes")
        decoded = classical.decode_classical(r.data, self.name, image.size)
        t2 = time.perf_counter()
        info = {
            "factor": r.factor,
            "quality": r.quality,
            "coded_size": list(r.coded_size),
            "decoder": "bicubic",
        }
        return Coded(r.data, decoded, t1 - t0, t2 - t1, info)


@dataclass
class MiscAdapter:
    """The project's codec (codec.pipeline), with the decoder named on the command line.

    `decoder` is the name given to ``codec.pipeline.decode`` ("auto", "restore",
    "bicubic", ...); the encoder gets the matching rate hint so that it searches the
    pixel layer the chosen decoder prefers.
    """

    decoder: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)
    name: str = "misc"
    ext: str = ".misc"

    def _hint(self) -> str:
        if self.decoder != "auto":
            return self.decoder.split("/")[0]
        try:
            from codec.decode import get_decoder

            return str(get_decoder("auto").name).split("/")[0]
        except Exception:  # noqa: BLE001 - no decoder package yet: bicubic is always there
            return "bicubic"

    def code(self, image: Image.Image, target_bpp: float, recipe: Any = None) -> Coded:
        """``recipe``: an AI image's recipe (codec.aigi), coded prompt-aware with a RECIPE section."""
        from codec.errors import BudgetError
        from codec.pipeline import decode, encode

        t0 = time.perf_counter()
        try:
            enc = encode(image, target_bpp, decoder_hint=self._hint(), recipe=recipe, **self.options)
        except BudgetError as e:
            raise NoFit(str(e)) from e
        t1 = time.perf_counter()
        dec = decode(enc.data, decoder=self.decoder)
        t2 = time.perf_counter()
        px = enc.pixel
        info: dict[str, Any] = {"decoder": dec.decoder, "notes": list(enc.notes)}
        if "regeneration" in dec.metadata:
            info["regeneration"] = dec.metadata["regeneration"]["path"]
        for key, attr in (
            ("factor", "factor"),
            ("quality", "level"),
            ("coded_size", "lowres_size"),
            ("family", "family"),
        ):
            if hasattr(px, attr):
                value = getattr(px, attr)
                info[key] = list(value) if isinstance(value, tuple) else value
        img = dec.image.convert("RGB")
        return Coded(enc.data, img, t1 - t0, t2 - t1, info)


def make(name: str, decoder: str = "auto", misc_options: dict[str, Any] | None = None) -> Adapter:
    """The adapter for a codec name on the command line."""
    if name == "misc":
        return MiscAdapter(decoder=decoder, options=dict(misc_options or {}))
    if name in classical.CODECS:
        return ClassicalAdapter(name)
    raise ValueError(f"unknown codec {name!r}; choose from misc, {', '.join(classical.CODECS)}")


def unavailable(name: str) -> str | None:
    """Why a codec cannot run here (None when it can)."""
    if name == "misc":
        try:
            import codec.pipeline  # noqa: F401
        except Exception as e:  # noqa: BLE001
            return f"codec.pipeline does not import: {e}"
        return None
    if name in classical.CODECS:
        return classical.available()[name]
    return f"unknown codec {name!r}"
