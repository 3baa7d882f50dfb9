"""Bits per character of the text coder against raw ASCII, zlib and brotli.

    python -m bench.text_bpc [--corpus DIR] [--tables FILE]

Reads every *.jsonl under the corpus folder (default: the held-out captions in
bench/data/captions/heldout/, see SOURCES.md there). A record with "items"/"overall" is a
MISC description; a record with "caption" or "text" is a plain caption, coded as the
overall paragraph. Each text is coded on its own, as the codec does per image, and every
coder is charged its full output for it (zlib's header and checksum, brotli's framing),
since that is what a file would have to store. Our sizes are real payloads that decode back
exactly (checked). Speeds are characters per second of CPU time of this process (the
machine may be shared), tables already loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import brotli

from codec.records import Description
from codec.textcoder import MODEL_NAME, compress, decompress
from codec.textcoder.tables import load_tables

DEFAULT_CORPUS = Path(__file__).resolve().parent / "data" / "captions" / "heldout"


def load_corpus(folder: Path) -> dict[str, list[Description]]:
    out: dict[str, list[Description]] = {}
    for path in sorted(folder.rglob("*.jsonl")):
        descs = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if "overall" in rec or "items" in rec:
                descs.append(Description.from_dict(rec))
            else:
                descs.append(
                    Description(overall=rec.get("caption") or rec.get("text") or rec.get("prompt") or "")
                )
        if descs:
            out[str(path.relative_to(folder))] = descs
    return out


def n_chars(d: Description) -> int:
    return len(d.overall) + sum(len(i.name) + len(i.detail) for i in d.items)


def plain(d: Description) -> bytes:
    """The description as text for the general-purpose compressors: one field a line."""
    lines = [f"{i.name}\n{i.detail}" for i in d.items] + [d.overall]
    return "\n".join(lines).encode("utf-8")


def measure(descs: list[Description], tables=None, model: str = MODEL_NAME) -> dict[str, float]:
    chars = sum(n_chars(d) for d in descs)
    raw = zl = br = ours = 0
    t_enc = t_dec = 0.0
    for d in descs:
        b = plain(d)
        raw += 8 * n_chars(d)
        zl += 8 * len(zlib.compress(b, 9))
        br += 8 * len(brotli.compress(b, quality=11))
        t0 = time.process_time()
        payload = compress(d, tables, model=model)
        t1 = time.process_time()
        back = decompress(payload, tables, model=model)
        t2 = time.process_time()
        if back != d:
            raise SystemExit("round trip failed: the coder is broken")
        ours += 8 * len(payload)
        t_enc += t1 - t0
        t_dec += t2 - t1
    return {
        "texts": len(descs),
        "chars": chars,
        "raw": raw / chars,
        "zlib": zl / chars,
        "brotli": br / chars,
        "ours": ours / chars,
        "bytes_per_text": ours / 8 / len(descs),
        "enc_cps": chars / t_enc,
        "dec_cps": chars / t_dec,
    }


def _pool(rows: list[tuple[str, dict[str, float]]]) -> dict[str, float]:
    """Totals over several corpora, weighted by their characters."""
    chars = sum(r["chars"] for _, r in rows)
    texts = sum(r["texts"] for _, r in rows)
    out = {"texts": texts, "chars": chars}
    for k in ("raw", "zlib", "brotli", "ours"):
        out[k] = sum(r[k] * r["chars"] for _, r in rows) / chars
    out["bytes_per_text"] = out["ours"] * chars / 8 / texts
    for k in ("enc_cps", "dec_cps"):
        out[k] = chars / sum(r["chars"] / r[k] for _, r in rows)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="bits per character of the text coder vs raw, zlib, brotli")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--tables", type=Path, default=None, help="another build of the tables (experiments)")
    p.add_argument("--json", action="store_true", help="print the results as JSON too")
    a = p.parse_args(argv)
    tables = None
    if a.tables is not None:
        tables = load_tables(a.tables, expected_sha256=None)
    load_tables()
    corpus = load_corpus(a.corpus)
    if not corpus:
        sys.exit(f"no *.jsonl descriptions under {a.corpus}")
    rows = [(name, measure(descs, tables)) for name, descs in corpus.items()]
    if len(rows) > 1:
        rows.append(("ALL", _pool(rows)))
    head = f"{'corpus':<40} {'texts':>5} {'chars':>7} {'raw':>5} {'zlib-9':>6} {'brotli11':>8} {'ours':>5} {'B/text':>6} {'enc c/s':>8} {'dec c/s':>8}"
    print("bits per character (each text coded on its own)")
    print(head)
    for name, r in rows:
        print(
            f"{name:<40} {r['texts']:>5} {r['chars']:>7} {r['raw']:>5.2f} {r['zlib']:>6.2f} {r['brotli']:>8.2f} "
            f"{r['ours']:>5.2f} {r['bytes_per_text']:>6.1f} {r['enc_cps']:>8.0f} {r['dec_cps']:>8.0f}"
        )
    if a.json:
        print(json.dumps(dict(rows), indent=1))


if __name__ == "__main__":
    main()
