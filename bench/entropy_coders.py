"""Our arithmetic coder against ``constriction`` 0.5.0 on the text coder's real distributions.

    python -m bench.entropy_coders [--corpus DIR ...]

The text model (codec.textcoder) is run once over every held-out text; the frequency table
and symbol of every step are recorded. Then only the entropy coders are timed on the same
tables: ours (codec.entropy.ArithmeticEncoder/Decoder, exact integers, bit-granular end)
against constriction's range coder (queue) and ANS coder (stack), which take float
probabilities, requantise them to 24 bits and emit 32-bit words. Bytes are real payload
lengths per text (each text its own stream, as in a file); every stream is decoded and
checked. Times are process CPU seconds per text, coding only (the model is excluded).
constriction is no longer a dependency: `pip install constriction==0.5.0` to rerun this.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.text_bpc import DEFAULT_CORPUS, load_corpus
from codec.entropy import ArithmeticDecoder, ArithmeticEncoder
from codec.records import Description
from codec.textcoder import coder as text_coder


def trace(desc: Description) -> list[tuple[int, int, int]]:
    """(cum_low, freq, total) of every arithmetic-coded step of one description."""
    steps: list[tuple[int, int, int]] = []

    class Recorder(ArithmeticEncoder):
        def encode(self, cum_low: int, freq: int, total: int) -> None:
            super().encode(cum_low, freq, total)
            steps.append((cum_low, freq, total))

    real = text_coder.ArithmeticEncoder
    text_coder.ArithmeticEncoder = Recorder
    try:
        text_coder.compress(desc)
    finally:
        text_coder.ArithmeticEncoder = real
    return steps


def as_table(steps: list[tuple[int, int, int]]) -> np.ndarray:
    """Each step as a 3-symbol table (below, the symbol, above): the same information; symbol 1."""
    return np.array([[c, f, t - c - f] for c, f, t in steps], dtype=np.float64).reshape(-1, 3)


def ours(steps) -> tuple[int, float, float]:
    t0 = time.process_time()
    enc = ArithmeticEncoder()
    for cum, freq, total in steps:
        enc.encode(cum, freq, total)
    data = enc.finish()
    t1 = time.process_time()
    dec = ArithmeticDecoder(data)
    for cum, freq, total in steps:
        t = dec.target(total)
        assert cum <= t < cum + freq
        dec.consume(cum, freq, total)
    dec.finish()
    return len(data), t1 - t0, time.process_time() - t1


def constriction_coder(steps, kind: str) -> tuple[int, float, float]:
    import constriction

    model = constriction.stream.model.Categorical(perfect=False)
    probs = as_table(steps)
    syms = np.ones(len(steps), dtype=np.int32)
    t0 = time.process_time()
    if kind == "range":
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(syms, model, probs)
        words = enc.get_compressed()
    else:
        enc = constriction.stream.stack.AnsCoder()
        enc.encode_reverse(syms, model, probs)
        words = enc.get_compressed()
    t1 = time.process_time()
    if kind == "range":
        back = constriction.stream.queue.RangeDecoder(words).decode(model, probs)
    else:
        back = constriction.stream.stack.AnsCoder(words).decode(model, probs)
    t2 = time.process_time()
    assert np.array_equal(np.asarray(back), syms)
    return 4 * len(words), t1 - t0, t2 - t1


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, nargs="+", default=[DEFAULT_CORPUS])
    a = p.parse_args(argv)
    descs = [d for c in a.corpus for ds in load_corpus(c).values() for d in ds]
    traces = [trace(d) for d in descs]
    print(f"{len(traces)} texts, {sum(len(t) for t in traces)} coded steps")
    print(f"{'coder':<28} {'bytes/text':>10} {'enc ms/text':>11} {'dec ms/text':>11}")
    for name, fn in (
        ("ours (codec.entropy)", ours),
        ("constriction range (queue)", lambda s: constriction_coder(s, "range")),
        ("constriction ANS (stack)", lambda s: constriction_coder(s, "ans")),
    ):
        rows = [fn(t) for t in traces]
        n = len(rows)
        print(
            f"{name:<28} {sum(r[0] for r in rows) / n:>10.2f} {1000 * sum(r[1] for r in rows) / n:>11.3f} "
            f"{1000 * sum(r[2] for r in rows) / n:>11.3f}"
        )


if __name__ == "__main__":
    main()
