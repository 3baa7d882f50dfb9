"""Bits per character of text-to-image prompts: the prompt model against zlib, brotli and the
caption model, on HELD-OUT real prompts.

    python -m bench.prompt_bpc [--corpus DIR] [--syntax-seed N]

Corpus: bench/data/prompts/heldout/ (real DiffusionDB prompts, see SOURCES.md; never read by
the table build). Each prompt is coded on its own, as the codec does per image, and every
coder pays its full output (zlib's header and checksum, brotli's framing). Rows:
  * the real held-out prompts, per file and pooled;
  * "synthetic syntax": the same held-out prompts rewritten with A1111 syntax (weights,
    brackets, BREAK, LoRA tags) by codec.textcoder.syntax with a seed the build never uses,
    because no openly licensed collection of such prompts could be had. Synthetic: it
    shows how the coder handles the syntax, not how people write it.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from bench.text_bpc import _pool, load_corpus, measure
from codec.records import Description
from codec.textcoder import MODEL_NAME, PROMPT_MODEL
from codec.textcoder.syntax import syntax_variant

DEFAULT_CORPUS = Path(__file__).resolve().parent / "data" / "prompts" / "heldout"
HELDOUT_SYNTAX_SEED = 2024  # the build's variants use codec.textcoder.build.PROMPT_SEED


def rows(corpus: dict[str, list[Description]]) -> list[tuple[str, dict, dict]]:
    out = []
    for name, descs in corpus.items():
        out.append((name, measure(descs, model=PROMPT_MODEL), measure(descs, model=MODEL_NAME)))
    if len(out) > 1:
        out.append(("ALL", _pool([(n, p) for n, p, _ in out]), _pool([(n, c) for n, _, c in out])))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--syntax-seed", type=int, default=HELDOUT_SYNTAX_SEED)
    a = p.parse_args(argv)
    corpus = load_corpus(a.corpus)
    rng = random.Random(a.syntax_seed)
    synthetic = {
        "synthetic syntax (" + name + ")": [
            Description(overall=syntax_variant(d.overall, rng)) for d in descs
        ]
        for name, descs in corpus.items()
    }
    print("bits per character, each prompt coded on its own")
    print(
        f"{'corpus':<58} {'texts':>5} {'chars':>6} {'zlib-9':>6} {'brotli':>6} {'caption':>7} {'prompt':>6} {'B/prompt':>8}"
    )
    for title, c in (
        ("held-out real prompts", corpus),
        ("held-out prompts + synthetic A1111 syntax", synthetic),
    ):
        print(f"-- {title}")
        for name, pr, cap in rows(c):
            print(
                f"{name:<58} {pr['texts']:>5} {pr['chars']:>6} {pr['zlib']:>6.2f} {pr['brotli']:>6.2f} "
                f"{cap['ours']:>7.2f} {pr['ours']:>6.2f} {pr['bytes_per_text']:>8.1f}"
            )


if __name__ == "__main__":
    main()
