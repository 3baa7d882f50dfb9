"""How long a description may be, and the question that asks a model for one.

Every word of the semantic layer costs bits (the text coder spends roughly two bits per
character), so the lengths are the knob that trades rate for fidelity: more items and
longer details give the decoder more to work with and the file more bytes. The limits are
asked for in the prompt *and* enforced afterwards (see ``parse.enforce_limits``), because
no model keeps to a word count reliably.

MISC (arXiv 2402.16749) asked GPT-4V for a few key items, a short detail per item, and an
overall paragraph of about 50 words; its published example names three items. The
question below is this project's own wording of the same request, with a JSON answer
format so that the answer can be read back without guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DescribeConfig:
    """Shape of the description every backend returns.

    ``max_items`` items at most, each with a name of at most ``name_words`` words (the
    name is also the CLIP prompt of the item's map, so it should be a plain noun phrase)
    and a detail of at most ``detail_words`` words; then an overall paragraph of about
    ``overall_words`` words. Models overshoot, so the paragraph is cut at
    ``overall_max_words`` (default: 1.4 × ``overall_words``), at a sentence end when one
    is near enough.
    """

    max_items: int = 3
    name_words: int = 3
    detail_words: int = 10
    overall_words: int = 50
    overall_max_words: int | None = None

    def __post_init__(self) -> None:
        if self.max_items < 0:
            raise ValueError("max_items must be >= 0")
        for field_name in ("name_words", "detail_words", "overall_words"):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{field_name} must be >= 1")
        if self.overall_max_words is not None and self.overall_max_words < 1:
            raise ValueError("overall_max_words must be >= 1")

    @property
    def overall_cap(self) -> int:
        """The hard word limit enforced on the overall paragraph."""
        if self.overall_max_words is not None:
            return self.overall_max_words
        return max(self.overall_words, math.ceil(self.overall_words * 1.4))

    def token_budget(self) -> int:
        """A generous ``max_new_tokens`` for an answer of this shape, JSON syntax included.

        About 1.5 tokens per English word plus ~12 tokens of JSON per item; doubled so a
        model that rambles a little is not cut before the closing brace.
        """
        words = self.max_items * (self.name_words + self.detail_words) + self.overall_cap
        return int(2 * (1.5 * words + 12 * self.max_items + 24))


SYSTEM_PROMPT = (
    "You describe photographs for an image codec. Your words are all the decoder gets "
    "besides a tiny blurred thumbnail, so state concrete visual facts (objects, colours, "
    "materials, textures, positions, lighting, style) rather than opinions or stories."
)


def build_prompt(config: DescribeConfig) -> str:
    """The user question: items, details and paragraph, with the JSON answer format."""
    n = config.max_items
    if n == 0:
        return (
            f"Describe the whole picture in about {config.overall_words} words: the scene, "
            "the main objects with their colours and positions, the background, the lighting "
            "and the style.\n"
            'Answer with JSON only, exactly in this form: {"items": [], "overall": "..."}'
        )
    return (
        f"1. Name the {n} most important items in this picture (fewer if it has fewer): "
        f"each name at most {config.name_words} words, a plain noun phrase such as "
        '"red car" or "old man".\n'
        f"2. For each item give one detail of at most {config.detail_words} words: colour, "
        "texture, shape, pose or position.\n"
        f"3. Describe the whole picture in about {config.overall_words} words. You may refer "
        "to the items by name; say where they are, what the background is, and the "
        "lighting and style.\n"
        "Answer with JSON only, exactly in this form:\n"
        '{"items": [{"name": "...", "detail": "..."}], "overall": "..."}'
    )
