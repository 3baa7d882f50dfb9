"""Fuzzing the recipe reader as tests/test_bitstream.py fuzzes the container: every damaged
file and every JSON graph with wrong types gives a ReadResult or a RecipeError, never
another exception. ``python -m tests.test_aigi_fuzz [N]`` prints the counts and the
distinct refusal messages (digits folded) for the report."""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter

from codec.aigi import read_recipe
from codec.aigi.formats import parse_a1111, parse_comfyui_prompt, parse_comfyui_workflow, parse_invokeai
from codec.aigi.recipe import ReadResult
from codec.errors import RecipeError
from tests.aigi_helpers import INVOKEAI, PROMPT, comfy_prompt_graph, comfy_workflow_graph, sample_files

WEIRD = [None, True, -1, 0, 2**70, 1e308, -0.5, "", "x" * 300, "12", [], {}, [["3", 0]], ["3", 0], ["nope", 0],
         {"a": [1, {"b": None}]}, "\x00\ud800"[0], "Steps: 1"]  # fmt: skip


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    op = rng.randrange(5)
    if op == 0:
        return bytes(b[: rng.randrange(len(b))])
    if op == 1:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 2:
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif op == 3:
        i = rng.randrange(max(1, len(b) - 4))
        b[i : i + 4] = rng.randrange(2**32).to_bytes(4, "big")  # a length field, maybe
    else:
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        del b[i:j]
    return bytes(b)


def _mutate_json(obj, rng: random.Random, depth: int = 0):
    if isinstance(obj, dict) and obj:
        obj = dict(obj)
        k = rng.choice(list(obj))
        if rng.random() < 0.2:
            del obj[k]
        else:
            obj[k] = _mutate_json(obj[k], rng, depth + 1) if rng.random() < 0.6 else rng.choice(WEIRD)
        return obj
    if isinstance(obj, list) and obj and depth < 6:
        obj = list(obj)
        i = rng.randrange(len(obj))
        obj[i] = _mutate_json(obj[i], rng, depth + 1) if rng.random() < 0.6 else rng.choice(WEIRD)
        return obj
    return rng.choice(WEIRD)


def _fold(msg: str) -> str:
    return re.sub(r"\d+", "N", re.sub(r"'[^']{20,}'", "'…'", msg))[:150]


def run(n_files: int, n_json: int, seed: int = 20261202) -> tuple[int, Counter]:
    rng = random.Random(seed)
    files = list(sample_files().values())
    messages: Counter = Counter()
    count = 0
    for _ in range(n_files):
        data = _mutate_bytes(rng.choice(files), rng)
        try:
            res = read_recipe(data)
            assert isinstance(res, ReadResult)
            messages.update(_fold(p) for p in res.problems)
        except RecipeError as e:
            messages[_fold(str(e))] += 1
        count += 1
    graphs = [
        (parse_comfyui_prompt, comfy_prompt_graph()),
        (parse_comfyui_workflow, comfy_workflow_graph()),
        (parse_invokeai, INVOKEAI),
    ]
    for _ in range(n_json):
        parse, graph = rng.choice(graphs)
        for _ in range(rng.randint(1, 4)):
            graph = _mutate_json(graph, rng)
        try:
            parse(json.dumps(graph))
        except RecipeError as e:
            messages[_fold(str(e))] += 1
        count += 1
    for _ in range(n_json // 4):  # A1111 text: random edits of a real parameters block
        text = list(
            PROMPT + "\nNegative prompt: x\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512"
        )
        for _ in range(rng.randint(1, 6)):
            text.insert(rng.randrange(len(text) + 1), rng.choice(':,"\n\\x0 '))
        try:
            parse_a1111("".join(text))
        except RecipeError as e:
            messages[_fold(str(e))] += 1
        count += 1
    return count, messages


def test_fuzzed_files_and_graphs_give_a_result_or_a_recipe_error() -> None:
    count, messages = run(n_files=1500, n_json=1500)
    assert count == 3375
    assert len(messages) >= 20  # the refusals say many different, specific things


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    count, messages = run(n_files=n, n_json=n)
    print(f"{count} fuzz cases, {sum(messages.values())} refusals, {len(messages)} distinct messages:")
    for msg, k in messages.most_common():
        print(f"{k:>7}  {msg}")
