"""The text coder's fixed symbol alphabet and context hash, shared by the model and its build.

Symbols 0 and 1 are not characters: ESC introduces a character outside the alphabet (its
code point follows, spelled out), END closes a field. Characters first met through ESC are
appended to a per-description alphabet, so a repeated unusual character is cheap after its
first use. Three more ids mark the start of a field in the context history only; they are
never coded.
"""

from __future__ import annotations

ESC = 0
END = 1

_EXTRA = "\u2019\u2018\u201c\u201d\u2013\u2014\u2026\u00e9\u00e8\u00e1\u00e0\u00ed\u00f3\u00fa\u00f1\u00fc\u00f6\u00e4\u00e7\u00b0\u00d7\u2022"
BASE_CHARS: tuple[str, ...] = ("\x00", "\x01", "\n", " ", *(chr(c) for c in range(33, 127)), *_EXTRA)
BASE_SIZE = len(BASE_CHARS)
assert BASE_SIZE <= 125

# Context-only markers: the start of an item name, an item detail, the overall paragraph.
MARK_NAME = BASE_SIZE
MARK_DETAIL = BASE_SIZE + 1
MARK_OVERALL = BASE_SIZE + 2

CHAR_TO_ID: dict[str, int] = {c: i for i, c in enumerate(BASE_CHARS) if i >= 2}

LETTER_IDS: tuple[int, ...] = tuple(CHAR_TO_ID[chr(c)] for c in range(ord("a"), ord("z") + 1))
UPPER_IDS: tuple[int, ...] = tuple(CHAR_TO_ID[chr(c)] for c in range(ord("A"), ord("Z") + 1))

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
MASK32 = 0xFFFFFFFF


def context_keys(history: list[int], max_order: int) -> list[int]:
    """32-bit keys of the contexts of orders 1..max_order ending at the end of ``history``.

    keys[k-1] hashes the last k ids (most recent first) and the order k; only orders up to
    len(history) are returned. The same function builds the tables, so keys agree exactly.
    """
    keys: list[int] = []
    h = FNV_OFFSET
    n = len(history)
    for k in range(1, min(max_order, n) + 1):
        h = ((h ^ history[n - k]) * FNV_PRIME) & MASK32
        keys.append(((h ^ (k * 0x9E3779B1 & MASK32)) * FNV_PRIME) & MASK32)
    return keys


def prev_word(gap: str, last_word: str | None) -> str | None:
    """The word-pair context of a word that follows ``gap`` after ``last_word``.

    '<s>' at the start of a field and after a sentence end or a line break; the last word
    when only spaces separate them; None (no pair context) after any other punctuation.
    """
    if last_word is None:
        return "<s>"
    if gap and gap.strip(" ") == "":
        return last_word
    stripped = gap.rstrip()
    if "\n" in gap or (stripped and stripped[-1] in ".!?"):
        return "<s>"
    return None
