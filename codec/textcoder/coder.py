"""Serialise a Description into symbols and code them with the model.

    n_items, then for each item: name END detail END, then overall END

The item count has a small fixed distribution; every character goes through the model
(ESC + 21-bit code point for a character outside the alphabet); END closes a field, so no
length is ever written. The payload is a section of the .misc file, which stores its
length, so the coder writes no length prefix of its own.
"""

from __future__ import annotations

import numpy as np

from codec.entropy import ArithmeticDecoder, ArithmeticEncoder
from codec.errors import BitstreamError
from codec.records import Description, Item
from codec.textcoder.alphabet import (
    BASE_CHARS,
    BASE_SIZE,
    CHAR_TO_ID,
    END,
    ESC,
    MARK_DETAIL,
    MARK_NAME,
    MARK_OVERALL,
)
from codec.textcoder.model import ModelState
from codec.textcoder.tables import Tables, tables_for

DEFAULT_MODEL = "text/misc-text-en-1"

MAX_ITEMS = 64
MAX_CHARS = 8192  # characters in all fields together; the decoder never produces more
CODEPOINT_BITS = 21
SURROGATES = range(0xD800, 0xE000)  # not characters: no UTF-8 text holds them, JSON writers refuse them

# item count 0..MAX_ITEMS: descriptions mostly carry a handful of items
_COUNT_FREQ = np.array([6, 4, 6, 8, 8, 8, 5, 4, 3, 2, 2] + [1] * (MAX_ITEMS - 10), dtype=np.int64)
_COUNT_CUM = np.concatenate(([0], np.cumsum(_COUNT_FREQ)))
_COUNT_TOTAL = int(_COUNT_CUM[-1])


def _fields(desc: Description) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for item in desc.items:
        out.append((MARK_NAME, item.name))
        out.append((MARK_DETAIL, item.detail))
    out.append((MARK_OVERALL, desc.overall))
    return out


def compress(desc: Description, tables: Tables | None = None, model: str = DEFAULT_MODEL) -> bytes:
    """Losslessly code a description (items' names and details, overall paragraph).

    ``model`` names the shipped tables (codec.textcoder.tables.MODELS); the file must name
    the same model for its decoder. ``tables`` overrides them, for experiments only: files
    written with anything but a model's shipped tables are not that model's files.
    """
    if not isinstance(desc, Description):
        raise TypeError(f"expected a Description, got {type(desc).__name__}")
    if len(desc.items) > MAX_ITEMS:
        raise ValueError(f"a description may carry at most {MAX_ITEMS} items, this one has {len(desc.items)}")
    fields = _fields(desc)
    n_chars = sum(len(text) for _, text in fields)
    if n_chars > MAX_CHARS:
        raise ValueError(f"a description may hold at most {MAX_CHARS} characters, this one has {n_chars}")
    for _, text in fields:
        if not isinstance(text, str):
            raise TypeError("item names, details and the overall paragraph must be strings")
        if any(ord(ch) in SURROGATES for ch in text):
            raise ValueError("the description holds a lone surrogate code point, which is not a character")
    state = ModelState(tables or tables_for(model))
    enc = ArithmeticEncoder()
    n = len(desc.items)
    enc.encode(int(_COUNT_CUM[n]), int(_COUNT_FREQ[n]), _COUNT_TOTAL)
    extra: dict[str, int] = {}
    for marker, text in fields:
        state.start_field(marker)
        for ch in text:
            sid = CHAR_TO_ID.get(ch)
            if sid is None:
                sid = extra.get(ch)
            freq = state.predict()
            cum = np.cumsum(freq)
            total = int(cum[-1])
            if sid is None:
                enc.encode(0, int(freq[ESC]), total)
                enc.encode_uniform(ord(ch), CODEPOINT_BITS)
                state.update(ESC, None)
                sid = state.add_char()
                extra[ch] = sid
                state.push_new_char(sid, ch)
                continue
            enc.encode(int(cum[sid] - freq[sid]), int(freq[sid]), total)
            state.update(sid, ch)
        freq = state.predict()
        cum = np.cumsum(freq)
        enc.encode(int(cum[END] - freq[END]), int(freq[END]), int(cum[-1]))
        state.update(END, None)
    return enc.finish()


def decompress(data: bytes, tables: Tables | None = None, model: str = DEFAULT_MODEL) -> Description:
    """Inverse of compress; BitstreamError on data that compress could not have written."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("expected bytes")
    data = bytes(data)
    if len(data) > MAX_CHARS * 4 + 64:
        raise BitstreamError("text payload is longer than any description the coder writes")
    state = ModelState(tables or tables_for(model))
    dec = ArithmeticDecoder(data)
    t = dec.target(_COUNT_TOTAL)
    n = int(np.searchsorted(_COUNT_CUM, t, side="right")) - 1
    dec.consume(int(_COUNT_CUM[n]), int(_COUNT_FREQ[n]), _COUNT_TOTAL)
    chars: list[str] = [c for c in BASE_CHARS]
    known: set[str] = set(BASE_CHARS[2:])
    texts: list[str] = []
    n_chars = 0
    markers = [m for _ in range(n) for m in (MARK_NAME, MARK_DETAIL)] + [MARK_OVERALL]
    for marker in markers:
        state.start_field(marker)
        out: list[str] = []
        while True:
            freq = state.predict()
            cum = np.cumsum(freq)
            total = int(cum[-1])
            target = dec.target(total)
            sid = int(np.searchsorted(cum, target, side="right"))
            dec.consume(int(cum[sid] - freq[sid]), int(freq[sid]), total)
            if sid == END:
                state.update(END, None)
                break
            n_chars += 1
            if n_chars > MAX_CHARS:
                raise BitstreamError(f"text payload decodes to more than {MAX_CHARS} characters")
            if sid == ESC:
                cp = dec.decode_uniform(CODEPOINT_BITS)
                if cp > 0x10FFFF or cp in SURROGATES:
                    raise BitstreamError("text payload is corrupt (not a Unicode character: code point out of range or a surrogate)")
                ch = chr(cp)
                if ch in known:
                    raise BitstreamError("text payload is corrupt (escaped a character already known)")
                state.update(ESC, None)
                new = state.add_char()
                assert new == len(chars)
                chars.append(ch)
                known.add(ch)
                state.push_new_char(new, ch)
                out.append(ch)
                continue
            ch = chars[sid]
            state.update(sid, ch)
            out.append(ch)
        texts.append("".join(out))
    dec.finish()
    items = [Item(texts[2 * i], texts[2 * i + 1]) for i in range(n)]
    return Description(items=items, overall=texts[-1])


__all__ = ["compress", "decompress", "MAX_CHARS", "MAX_ITEMS", "BASE_SIZE"]
