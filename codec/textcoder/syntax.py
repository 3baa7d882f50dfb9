"""A1111 / ComfyUI prompt syntax, added to plain prompts: for building and measuring only.

Real prompt collections with an open licence (DiffusionDB and what derives from it) were
gathered in 2022, before emphasis weights, LoRA tags and BREAK became common, so they hold
almost none of that syntax. To teach the prompt model the syntax, and to measure it, this
module rewrites a plain prompt the way current web UIs' users write it:

    "a castle, fog, by greg rutkowski"
    ─▶ "masterpiece, best quality, (a castle:1.2), fog BREAK by greg rutkowski, <lora:castle_v2:0.8>"

Deterministic for a given ``random.Random``; the tables are built from variants of the
TRAINING prompts only; bench.text_bpc measures variants of the held-out prompts (another
seed), and says that they are synthetic.
"""

from __future__ import annotations

import random
import re

WEIGHTS = ("1.1", "1.2", "1.3", "1.4", "1.5", "0.8", "0.9", "0.7", "1.15", "1.25")
LORA_WEIGHTS = ("0.6", "0.7", "0.8", "0.9", "1", "0.5", "0.75")
QUALITY = ("masterpiece", "best quality", "high quality", "ultra detailed", "8k", "absurdres", "highres")


def syntax_variant(prompt: str, rng: random.Random) -> str:
    """The prompt with emphasis weights, brackets, BREAK and LoRA tags, as a web UI user writes it."""
    phrases = [p.strip() for p in prompt.split(",") if p.strip()]
    if not phrases:
        return prompt
    out: list[str] = []
    if rng.random() < 0.4:
        out.extend(rng.sample(QUALITY, rng.randint(1, 3)))
    for p in phrases:
        r = rng.random()
        if r < 0.25:
            p = f"({p}:{rng.choice(WEIGHTS)})"
        elif r < 0.32:
            p = f"(({p}))"
        elif r < 0.36:
            p = f"[{p}]"
        out.append(p)
    text = ", ".join(out)
    if len(out) > 3 and rng.random() < 0.3:
        cut = text.find(", ", len(text) // 2)
        if cut > 0:
            text = text[:cut] + rng.choice((" BREAK ", "\nBREAK\n", ", BREAK, ")) + text[cut + 2 :]
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        words = re.findall(r"[a-z]{4,}", prompt.lower()) or ["style"]
        name = rng.choice(words) + rng.choice(("", "_v2", "XL", "_style", "-000008", "_lora"))
        text += f", <lora:{name}:{rng.choice(LORA_WEIGHTS)}>"
    return text
