"""text/misc-prompt-en-1: the prompt text model, its shipped tables, and its data split."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from codec.bitstream import KNOWN_MODELS, MODEL_IDS
from codec.records import Description, Item
from codec.textcoder import MODEL_NAME, PROMPT_MODEL, TEXT_MODELS, compress, decompress
from codec.textcoder.syntax import syntax_variant
from codec.textcoder.tables import MODELS

PROMPTS = Path(__file__).resolve().parent.parent / "bench" / "data" / "prompts"

# Prompts written for this test (not from any collection).
WRITTEN = [
    "a cozy cabin in a snowy pine forest at night, warm light in the windows, highly detailed, digital painting",
    "masterpiece, best quality, (a white cat:1.2) sleeping on a red sofa, [soft light], <lora:catstyle_v2:0.8>",
    "portrait of an old fisherman, oil painting, dramatic lighting BREAK stormy sea in the background, 8k",
]


def test_model_ids_and_tables() -> None:
    assert MODEL_IDS[PROMPT_MODEL] == 4 and KNOWN_MODELS[3] == MODEL_NAME
    assert TEXT_MODELS == (MODEL_NAME, PROMPT_MODEL)
    for path, sha in MODELS.values():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha


@pytest.mark.parametrize("text", WRITTEN)
def test_prompts_round_trip_and_cost_less_than_with_the_caption_model(text: str) -> None:
    d = Description(overall=text)
    ours = compress(d, model=PROMPT_MODEL)
    assert decompress(ours, model=PROMPT_MODEL) == d
    assert len(ours) < len(compress(d, model=MODEL_NAME))


def test_the_two_models_cannot_read_each_others_payloads_as_the_same_text() -> None:
    d = Description(items=[Item("fox", "red fur")], overall=WRITTEN[1])
    data = compress(d, model=PROMPT_MODEL)
    try:
        other = decompress(data, model=MODEL_NAME)
    except ValueError:
        return  # refused: fine
    assert other != d


def test_syntax_variants_are_deterministic_and_keep_the_words() -> None:
    a = syntax_variant("a castle, fog, by greg rutkowski", random.Random(3))
    assert a == syntax_variant("a castle, fog, by greg rutkowski", random.Random(3))
    assert all(w in a for w in ("castle", "fog", "greg rutkowski"))


def _prompts(split: str) -> list[str]:
    return [
        json.loads(line)["prompt"] for f in sorted((PROMPTS / split).glob("*.jsonl")) for line in f.open()
    ]


def test_no_training_prompt_is_a_held_out_prompt_or_a_near_copy_of_one() -> None:
    train, held = _prompts("train"), _prompts("heldout")
    assert len(train) >= 190 and len(held) >= 170
    assert not {p.lower() for p in train} & {p.lower() for p in held}
    held_words = [set(re.findall(r"\w+", p.lower())) for p in held]
    for p in train:
        w = set(re.findall(r"\w+", p.lower()))
        for h in held_words:
            small = min(len(w), len(h))
            assert small < 5 or len(w & h) / small < 0.8, p


def test_the_build_trains_on_training_prompts_only() -> None:
    from codec.textcoder.build import TRAIN_PROMPTS, prompt_texts

    texts = set(prompt_texts(TRAIN_PROMPTS))
    assert set(_prompts("train")) <= texts
    assert not set(_prompts("heldout")) & texts
