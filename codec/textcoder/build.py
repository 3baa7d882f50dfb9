"""Build the text coder's model tables from their public sources: ``python -m codec.textcoder.build``.

Sources (each named, with its licence, in data/README.md):
  * wordfreq (PyPI, Apache-2.0 code, CC-BY-SA 4.0 data): English word frequencies -> the
    vocabulary and its unigram probabilities.
  * wordsegment (PyPI, Apache-2.0): unigram and bigram counts of the Google web corpus ->
    word-pair probabilities.
  * WordNet 3.0 (Debian ``wordnet-base``, WordNet 3.0 licence): glosses, examples and
    lemma names -> training text of the character model.
  * fortune cookies (Debian ``fortunes``, BSD licence): English prose -> training text of
    the character model.
  * bench/data/captions/train/ (see its SOURCES.md): a few dozen VLM image descriptions ->
    caption word statistics and character-model text. The held-out corpus
    (bench/data/captions/heldout/) is never read here.
  * ``--model prompt`` only: bench/data/prompts/train/ (see its SOURCES.md): real
    text-to-image prompts (DiffusionDB, CC0, via ImageReward, Apache-2.0) and synthetic
    A1111-syntax variants of them (codec.textcoder.syntax) -> the prompt model's statistics.
    bench/data/prompts/heldout/ is never read here.

The Debian packages are read from their installed paths, or fetched with ``apt-get
download`` and unpacked with ``dpkg -x`` when missing. Every number that reaches the
tables is computed with integer or exact decimal arithmetic, so a rebuild gives the same
bytes on every machine; the SHA-256 of the table file is printed and checked by the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from decimal import Decimal, getcontext
from fractions import Fraction
from pathlib import Path

import numpy as np

from codec.textcoder.alphabet import (
    BASE_SIZE,
    CHAR_TO_ID,
    END,
    ESC,
    FNV_OFFSET,
    FNV_PRIME,
    MARK_DETAIL,
    MARK_NAME,
    MARK_OVERALL,
    MASK32,
    prev_word,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_OUT = HERE / "data" / "misc-text-en-1.npz"
PROMPT_OUT = HERE / "data" / "misc-prompt-en-1.npz"
TRAIN_CAPTIONS = REPO / "bench" / "data" / "captions" / "train"
TRAIN_PROMPTS = REPO / "bench" / "data" / "prompts" / "train"
# R and V were set on a dev split of the training prompts (see data/README.md)
PROMPT_REPEAT = 3  # each training prompt counts this often
PROMPT_VARIANTS = 4  # and this many syntax variants of it (codec.textcoder.syntax)
PROMPT_SEED = 1402  # the variants' seed (held-out variants in bench.text_bpc use another)

STATIC_ORDER = 5  # longest context of the shipped character model
VOCAB_SIZE = 60000  # most frequent wordfreq words kept (plus caption words)
CAP_UNIGRAM_SHARE = Fraction(3, 10)  # weight of caption word counts in the unigram
CAP_BIGRAM_K = 3  # caption successor counts trusted as n/(n+K)
U_SCALE = 1 << 30  # unigram probabilities in units of 2^-30
Q_SCALE = 1 << 22  # bigram probabilities in units of 2^-22
COUNT_CAP = 4095  # static context totals are scaled down to at most this

WORD_RE = re.compile(r"[A-Za-z]+")


# ----------------------------------------------------------------------------- sources


# The cookie files of Debian's fortunes-min + fortunes (bookworm 1:1.99.1-7.3), listed so that
# another package adding files to the same folder cannot change the tables.
FORTUNE_FILES = (
    "computers cookie debian definitions disclaimer drugs education ethnic food fortunes goedel "
    "humorists kids knghtbrd law linux linuxcookie literature love magic medicine men-women "
    "miscellaneous news paradoxum people perl pets platitudes politics pratchett riddles science "
    "songs-poems sports startrek tao translate-me wisdom work zippy"
).split()
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")


def _debian_dir(
    packages: tuple[str, ...], installed: str, needed: list[str] | tuple[str, ...], workdir: Path
) -> Path:
    """The installed folder if it holds every needed file, else the packages fetched and unpacked."""
    if all((Path(installed) / name).is_file() for name in needed):
        return Path(installed)
    for package in packages:
        print(f"  {installed} incomplete: apt-get download {package}", file=sys.stderr)
        subprocess.run(["apt-get", "download", package], cwd=workdir, check=True, capture_output=True)
        deb = sorted(workdir.glob(f"{package}_*.deb"))[-1]
        subprocess.run(["dpkg", "-x", str(deb), str(workdir / "x")], check=True)
    return workdir / "x" / installed.lstrip("/")


def wordnet_docs(wn_dir: Path) -> list[tuple[int, str]]:
    """(marker, text): lemma names as item names, definitions as details, examples as prose."""
    docs: list[tuple[int, str]] = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(wn_dir / f"data.{pos}", encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                head, gloss = line.split("|", 1)
                fields = head.split()
                n_words = int(fields[3], 16)
                lemmas = [re.sub(r"\(.*\)$", "", fields[4 + 2 * i]).replace("_", " ") for i in range(n_words)]
                if pos == "noun":
                    for lemma in lemmas[:2]:
                        if len(lemma.split()) <= 3:
                            docs.append((MARK_NAME, lemma))
                parts = [p.strip() for p in gloss.strip().split(";")]
                definition = [p for p in parts if not p.startswith('"')]
                examples = [p.strip('"') for p in parts if p.startswith('"')]
                if definition:
                    docs.append((MARK_DETAIL, "; ".join(definition)))
                for ex in examples:
                    ex = ex.strip().rstrip('"')
                    if ex:
                        docs.append(
                            (MARK_OVERALL, ex[:1].upper() + ex[1:] + ("" if ex[-1] in ".!?" else "."))
                        )
    return docs


def fortune_docs(fortune_dir: Path) -> list[tuple[int, str]]:
    docs: list[tuple[int, str]] = []
    for name in FORTUNE_FILES:
        text = (fortune_dir / name).read_bytes().decode("latin-1")
        text = re.sub(r".\x08", "", text)  # overstrike
        for cookie in text.split("\n%\n"):
            body = " ".join(cookie.split())
            if 20 <= len(body) <= 2000:
                docs.append((MARK_OVERALL, body))
    return docs


def caption_texts(train_dir: Path) -> list[str]:
    texts: list[str] = []
    for path in sorted(train_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                texts.append(rec.get("text") or rec.get("caption") or rec.get("prompt") or "")
    return [t for t in texts if t]


def prompt_texts(train_dir: Path) -> list[str]:
    """Training prompts, each PROMPT_REPEAT times, plus PROMPT_VARIANTS syntax variants of each."""
    import random

    from codec.textcoder.syntax import syntax_variant

    prompts = caption_texts(train_dir)
    rng = random.Random(PROMPT_SEED)
    out: list[str] = []
    for p in prompts:
        out += [p] * PROMPT_REPEAT
        out += [syntax_variant(p, rng) for _ in range(PROMPT_VARIANTS)]
    return out


# ----------------------------------------------------------------------- character model


def _encode_docs(docs: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
    seq: list[int] = []
    pos: list[int] = []
    for marker, text in docs:
        ids = [marker] + [CHAR_TO_ID.get(c, ESC) for c in text] + [END]
        seq.extend(ids)
        pos.extend(range(len(ids)))
    return np.array(seq, dtype=np.uint64), np.array(pos, dtype=np.int64)


def _runtime_keys(ctx: np.ndarray, k: int) -> np.ndarray:
    """alphabet.context_keys for packed contexts (7 bits a symbol, most recent lowest)."""
    h = np.full(ctx.shape, FNV_OFFSET, dtype=np.uint64)
    for j in range(k):
        s = (ctx >> np.uint64(7 * j)) & np.uint64(127)
        h = ((h ^ s) * np.uint64(FNV_PRIME)) & np.uint64(MASK32)
    kk = np.uint64(k * 0x9E3779B1 & MASK32)
    return ((h ^ kk) * np.uint64(FNV_PRIME)) & np.uint64(MASK32)


def char_model(docs: list[tuple[int, str]]) -> dict[str, np.ndarray]:
    seq, pos = _encode_docs(docs)
    print(f"  character model: {len(seq):,} symbols of training text", file=sys.stderr)
    predicted = pos >= 1
    order0 = np.bincount(seq[predicted].astype(np.int64), minlength=BASE_SIZE)[:BASE_SIZE]

    grams: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in range(1, STATIC_ORDER + 1):
        idx = np.nonzero(pos >= k)[0]
        ctx = np.zeros(idx.shape, dtype=np.uint64)
        for j in range(1, k + 1):
            ctx |= seq[idx - j] << np.uint64(7 * (j - 1))
        packed = (ctx << np.uint64(7)) | seq[idx]
        uniq, counts = np.unique(packed, return_counts=True)
        grams[k] = (uniq, counts.astype(np.int64))

    all_keys, all_sym, all_cnt, all_tot, all_cid = [], [], [], [], []
    n_ctx = 0
    for k in range(1, STATIC_ORDER + 1):
        uniq, counts = grams[k]
        ctx = uniq >> np.uint64(7)
        sym = (uniq & np.uint64(127)).astype(np.int64)
        oldest = (ctx >> np.uint64(7 * (k - 1))) & np.uint64(127)
        if k < STATIC_ORDER:
            # Kneser-Ney: a lower order counts the distinct contexts one longer that lead to it,
            # except where the context already starts at a field marker (nothing precedes it).
            up, _ = grams[k + 1]
            shortened = up & np.uint64((1 << (7 * (k + 1))) - 1)  # drop the oldest symbol
            ext_uniq, ext_counts = np.unique(shortened, return_counts=True)
            where = np.searchsorted(ext_uniq, uniq)
            where = np.minimum(where, len(ext_uniq) - 1)
            cont = np.where(ext_uniq[where] == uniq, ext_counts[where], 0)
            counts = np.where(oldest >= np.uint64(MARK_NAME), counts, cont)
        min_count = 1 if k <= 2 else 2
        keep = counts >= min_count
        ctx, sym, counts = ctx[keep], sym[keep], counts[keep]
        # group by context
        order = np.lexsort((sym, ctx))
        ctx, sym, counts = ctx[order], sym[order], counts[order]
        starts = np.r_[0, np.nonzero(np.diff(ctx))[0] + 1]
        totals = np.add.reduceat(counts, starts)
        keys = _runtime_keys(ctx[starts], k)
        seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(ctx)]))
        # scale big contexts down so that every total fits COUNT_CAP (integer arithmetic)
        tot_each = totals[seg]
        scaled = np.where(tot_each > COUNT_CAP, np.maximum(1, counts * COUNT_CAP // tot_each), counts)
        all_keys.append(keys[seg])
        all_sym.append(sym)
        all_cnt.append(scaled)
        all_tot.append(totals[seg])
        all_cid.append(seg + n_ctx)
        n_ctx += len(starts)
        print(f"  order {k}: {len(starts):,} contexts, {len(sym):,} entries", file=sys.stderr)

    keys = np.concatenate(all_keys).astype(np.int64)
    sym = np.concatenate(all_sym)
    cnt = np.concatenate(all_cnt)
    tot = np.concatenate(all_tot)
    cid = np.concatenate(all_cid)
    # sort by key; on a (rare) key collision keep the context seen most often
    order = np.lexsort((sym, cid, -tot, keys))
    keys, sym, cnt, cid = keys[order], sym[order], cnt[order], cid[order]
    starts = np.r_[0, np.nonzero(np.diff(cid))[0] + 1]
    first_of_key = np.r_[True, keys[starts[1:]] != keys[starts[:-1]]]
    print(f"  {int((~first_of_key).sum())} colliding contexts dropped", file=sys.stderr)
    seg_keep = np.repeat(first_of_key, np.diff(np.r_[starts, len(keys)]))
    keys, sym, cnt = keys[seg_keep], sym[seg_keep], cnt[seg_keep]
    starts = np.r_[0, np.nonzero(np.diff(keys))[0] + 1]
    ctx_keys = keys[starts]
    lengths = np.diff(np.r_[starts, len(keys)])
    assert lengths.max() <= 255
    # stored as differences (sorted keys, context sizes): they compress far better
    return {
        "cm_order0": order0.astype(np.uint32),
        "cm_keys_delta": np.diff(np.r_[0, ctx_keys]).astype(np.uint32),
        "cm_len": lengths.astype(np.uint8),
        "cm_sym": sym.astype(np.uint8),
        "cm_cnt": cnt.astype(np.uint16),
    }


# ---------------------------------------------------------------------------- word model


def _tokens_with_prev(text: str) -> list[tuple[str, str | None]]:
    """(word, pair context) as the coder sees them: lowercase runs of ASCII letters."""
    out: list[tuple[str, str | None]] = []
    last: str | None = None
    last_end = 0
    for m in WORD_RE.finditer(text):
        w = m.group(0).lower()
        out.append((w, prev_word(text[last_end : m.start()], last)))
        last, last_end = w, m.end()
    return out


def _delta_within(values: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Differences of the sorted next-word indices, restarting at each previous word."""
    d = np.diff(np.r_[0, values])
    d[ptr[:-1][ptr[:-1] < len(values)]] = values[ptr[:-1][ptr[:-1] < len(values)]]
    return d


def _unigram_bins() -> list[int]:
    getcontext().prec = 40
    return [
        int((Decimal(U_SCALE) * Decimal(10) ** (Decimal(-i) / 100)).to_integral_value()) for i in range(900)
    ]


def word_model(captions: list[str]) -> dict[str, np.ndarray]:
    import wordfreq
    import wordsegment

    bins = wordfreq.get_frequency_list("en", wordlist="large")
    ubin = _unigram_bins()
    freq: dict[str, int] = {}
    for i, words in enumerate(bins):
        for w in sorted(words):
            if len(freq) < VOCAB_SIZE and re.fullmatch(r"[a-z]+", w):
                freq[w] = ubin[min(i, len(ubin) - 1)]
    cap_uni: Counter[str] = Counter()
    cap_bi: Counter[tuple[str, str]] = Counter()
    for text in captions:
        for w, prev in _tokens_with_prev(text):
            cap_uni[w] += 1
            if prev is not None:
                cap_bi[(prev, w)] += 1
    for w in cap_uni:
        freq.setdefault(w, 0)
    vocab = sorted(freq)
    index = {w: i for i, w in enumerate(vocab)}
    V = len(vocab)
    assert V < 65535
    cap_total = sum(cap_uni.values()) or 1
    wf_total = sum(freq.values())
    uni = []
    for w in vocab:
        u_wf = Fraction(freq[w] * U_SCALE, wf_total)
        u_cap = Fraction(cap_uni.get(w, 0) * U_SCALE, cap_total)
        uni.append(max(1, int((1 - CAP_UNIGRAM_SHARE) * u_wf + CAP_UNIGRAM_SHARE * u_cap)))

    # wordsegment counts (Google web corpus)
    ws_dir = Path(wordsegment.__file__).parent
    ws_uni: dict[str, int] = {}
    with open(ws_dir / "unigrams.txt", encoding="utf-8") as f:
        for line in f:
            w, c = line.rstrip("\n").split("\t")
            ws_uni[w] = int(c)
    ws_bi: dict[str, dict[str, int]] = {}
    with open(ws_dir / "bigrams.txt", encoding="utf-8") as f:
        for line in f:
            pair, c = line.rstrip("\n").split("\t")
            a, b = pair.split(" ")
            if b in index and (a in index or a == "<s>"):
                ws_bi.setdefault(a, {})[b] = int(c)
    cap_by_prev: dict[str, dict[str, int]] = {}
    for (a, b), c in cap_bi.items():
        if b in index and (a in index or a == "<s>"):
            cap_by_prev.setdefault(a, {})[b] = c

    prevs = vocab + ["<s>"]
    ptr = [0]
    nxt: list[int] = []
    q: list[int] = []
    r: list[int] = []
    for a in prevs:
        ws = ws_bi.get(a, {})
        cp = cap_by_prev.get(a, {})
        ws_n = sum(ws.values())
        if a == "<s>":
            denom = Fraction(ws_n * 10, 7) if ws_n else Fraction(1)
        else:
            denom = Fraction(max(ws_uni.get(a, 0), ws_n * 20 // 19)) if ws_n else Fraction(1)
        cov = Fraction(ws_n) / denom if ws_n else Fraction(0)
        cap_n = sum(cp.values())
        rho = Fraction(cap_n, cap_n + CAP_BIGRAM_K)
        probs: dict[int, Fraction] = {}
        for b, c in ws.items():
            probs[index[b]] = probs.get(index[b], Fraction(0)) + (1 - rho) * Fraction(c) / denom
        for b, c in cp.items():
            probs[index[b]] = probs.get(index[b], Fraction(0)) + rho * Fraction(c, cap_n)
        kept = sorted((i, int(p * Q_SCALE)) for i, p in probs.items())
        kept = [(i, v) for i, v in kept if v > 0]
        nxt.extend(i for i, _ in kept)
        q.extend(v for _, v in kept)
        ptr.append(len(nxt))
        r.append(int((1 - rho) * (1 - cov) * Q_SCALE) if (ws or cp) else Q_SCALE)
    print(f"  word model: {V:,} words, {len(nxt):,} word pairs", file=sys.stderr)
    return {
        "wm_vocab": np.frombuffer("\n".join(vocab).encode("ascii"), dtype=np.uint8),
        "wm_uni": np.array(uni, dtype=np.uint32),
        "wm_ptr": np.array(ptr, dtype=np.uint32),
        "wm_next_delta": _delta_within(np.array(nxt, dtype=np.int64), np.array(ptr, dtype=np.int64)).astype(
            np.uint16
        ),
        "wm_q": np.array(q, dtype=np.uint32),
        "wm_rest": np.array(r, dtype=np.uint32),
    }


# ---------------------------------------------------------------------------------- main


def build(
    out: Path,
    wordnet: str,
    fortunes: str,
    captions_dir: Path = TRAIN_CAPTIONS,
    prompts_dir: Path | None = None,
    model: str = "text/misc-text-en-1",
) -> str:
    """Write one model's tables; with ``prompts_dir`` the training prompts (and their syntax
    variants) join the caption text in both the character and the word statistics."""
    with tempfile.TemporaryDirectory() as tmp:
        wn_dir = _debian_dir(("wordnet-base",), wordnet, WORDNET_FILES, Path(tmp))
        fo_dir = _debian_dir(("fortunes-min", "fortunes"), fortunes, FORTUNE_FILES, Path(tmp))
        docs = wordnet_docs(wn_dir) + fortune_docs(fo_dir)
    captions = caption_texts(captions_dir)
    domain = captions + (prompt_texts(prompts_dir) if prompts_dir is not None else [])
    docs += [(MARK_OVERALL, t) for t in domain]
    print(
        f"  {len(docs):,} training documents ({len(captions)} captions, {len(domain) - len(captions)} prompt texts)",
        file=sys.stderr,
    )
    tables = char_model(docs)
    tables.update(word_model(domain))
    meta = {
        "model": model,
        "static_order": STATIC_ORDER,
        "base_size": BASE_SIZE,
        "u_scale": U_SCALE,
        "q_scale": Q_SCALE,
    }
    tables["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    # np.savez_compressed writes zip timestamps; write the arrays ourselves for stable bytes
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(tables):
            arr = np.ascontiguousarray(tables[name])
            raw = io.BytesIO()
            np.lib.format.write_array(raw, arr, allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, raw.getvalue(), compresslevel=9)
    data = buf.getvalue()
    out.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    print(f"wrote {out} ({len(data):,} bytes) sha256 {digest}")
    return digest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--model",
        choices=("text", "prompt"),
        default="text",
        help="text/misc-text-en-1 (descriptions) or text/misc-prompt-en-1 (text-to-image prompts)",
    )
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--wordnet", default=os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))
    p.add_argument("--fortunes", default=os.environ.get("FORTUNES_DIR", "/usr/share/games/fortunes"))
    p.add_argument("--captions", type=Path, default=TRAIN_CAPTIONS, help="training captions (experiments)")
    p.add_argument("--prompts", type=Path, default=TRAIN_PROMPTS, help="training prompts (experiments)")
    a = p.parse_args(argv)
    if a.model == "prompt":
        build(a.out or PROMPT_OUT, a.wordnet, a.fortunes, a.captions, a.prompts, "text/misc-prompt-en-1")
    else:
        build(a.out or DEFAULT_OUT, a.wordnet, a.fortunes, a.captions)


if __name__ == "__main__":
    main()
