"""Plain records passed between the codec's modules.

They carry no behaviour beyond validation, so every module (describers, the text coder,
the map coder, decoders, the pipeline) can agree on them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image


@dataclass
class Item:
    """One key item of the picture: a short name (≤ 3 words) and a detail (≤ 10 words)."""

    name: str
    detail: str = ""


@dataclass
class Description:
    """What a vision-language model says about an image (MISC's semantic layer)."""

    items: list[Item] = field(default_factory=list)
    overall: str = ""

    def is_empty(self) -> bool:
        return not self.items and not self.overall.strip()

    def to_dict(self) -> dict[str, Any]:
        return {"items": [{"name": i.name, "detail": i.detail} for i in self.items], "overall": self.overall}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Description:
        return cls(
            items=[Item(str(i.get("name", "")), str(i.get("detail", ""))) for i in d.get("items", [])],
            overall=str(d.get("overall", "")),
        )


@dataclass
class DecodedLayers:
    """Everything a decoder gets from a file: nothing but the file went into it."""

    width: int
    height: int
    grayscale: bool
    seed: int
    models: list[str]
    lowres: Image.Image | None  # the decoded pixel layer at its own (small) size, RGB
    description: Description | None = None
    # One boolean grid per item, in the order of description.items (None: no map layer).
    maps: list[np.ndarray] | None = None
    # An AI image's recipe (codec.aigi.section.RecipeSection) when the file has one.
    recipe: Any = None
    # Detail level α from the REALISM section (codec.realism.detail; None: the decoder's own picture).
    detail: float | None = None


@dataclass
class DecodeResult:
    image: Image.Image
    decoder: str  # which decoder produced it, e.g. "bicubic", "restore/realesrgan-x4plus"
    metadata: dict[str, Any] = field(default_factory=dict)
