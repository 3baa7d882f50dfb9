"""What every describer is: something with a ``name`` that turns an image into a Description.

The name goes into the file's header (the decoder and the reader of a bench manifest must
know which model wrote the semantic layer), so it always names the model, e.g.
``openai:gpt-4o`` or ``hf:Qwen/Qwen2.5-VL-3B-Instruct``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from PIL import Image

from codec.describe.config import DescribeConfig
from codec.records import Description


@runtime_checkable
class Describer(Protocol):
    """A vision-language backend. ``describe`` returns a Description within ``config``'s limits."""

    name: str
    config: DescribeConfig

    def describe(self, image: Image.Image) -> Description: ...


def fit_image(image: Image.Image, max_side: int | None) -> Image.Image:
    """RGB copy whose longest side is at most ``max_side`` (None: any size).

    Vision models downscale or tile big pictures anyway (GPT-4o works on 512-px tiles,
    Qwen2.5-VL spends one token per 28×28 pixels), so a 12-megapixel original only
    costs upload time, memory and tokens.
    """
    img = image.convert("RGB")
    if max_side and max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    return img


class NoDescriber:
    """The "none" backend: no semantic layer. Returns an empty Description, which the
    pipeline reads as "write no text section"."""

    name = "none"

    def __init__(self, config: DescribeConfig | None = None) -> None:
        self.config = config or DescribeConfig()

    def describe(self, image: Image.Image) -> Description:
        return Description()

    def __repr__(self) -> str:
        return "NoDescriber()"
