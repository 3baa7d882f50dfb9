"""Reading a model's answer back into a ``Description``, whatever shape it came in.

Models are asked for JSON, and most of them mostly comply; the rest of the time the answer
is JSON inside a code fence, JSON with prose around it or a trailing comma, a numbered
list, markdown with "Items:" / "Overall:" headings, MISC's own layout (a line of item
names, one detail line per item, a blank line, the paragraph), or a bare caption. Every
backend, and the manual text box, goes through the same reader so that the semantic layer
looks the same whichever model wrote it, and ``enforce_limits`` then holds the answer to
the configured word limits (models do not count words reliably, and every word costs bits).

Reading order: the first JSON value that carries items or a paragraph wins; otherwise the
text is read line by line. Nothing here raises on odd input: the worst case is an empty
``Description``, which callers treat as "no semantic layer".
"""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from typing import Any

from codec.describe.config import DescribeConfig
from codec.records import Description, Item

__all__ = ["parse_description", "enforce_limits", "clean_text", "MAX_INPUT_CHARS"]

MAX_INPUT_CHARS = 20_000

# ── text clean-up ──────────────────────────────────────────────────────────────────────

# Typographic characters that models love and that cost the text coder extra bits.
_ASCII_MAP = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u200b": "",
        "\ufeff": "",
        "\uff1a": ":",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MD_EMPHASIS = re.compile(r"(\*\*|__|`+|~~)")
_MD_SINGLE = re.compile(r"(?<![\w*])[*_](?=\S)(.+?)(?<=\S)[*_](?![\w*])")
_LEADING_MARKS = re.compile(r"^(?:#{1,6}\s*|>\s*)+")
_QUOTES = "\"'"
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)


def _prepare(text: str) -> str:
    """Unicode NFC, ASCII punctuation, Unix newlines, no control characters."""
    text = unicodedata.normalize("NFC", text).translate(_ASCII_MAP)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _CONTROL.sub("", text)


def clean_text(text: str) -> str:
    """One line of plain text: markdown marks, wrapping quotes and extra spaces removed."""
    text = _prepare(str(text))
    text = _LEADING_MARKS.sub("", text.strip())
    text = _MD_EMPHASIS.sub("", text)
    text = _MD_SINGLE.sub(r"\1", text)
    text = " ".join(text.split())
    # Strip quotes that wrap the whole string (possibly several layers: '"dog"').
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] == text[0] and text.count(text[0]) == 2:
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] in _QUOTES and text.count(text[0]) == 1:
        text = text[1:].strip()
    if len(text) >= 2 and text[-1] in _QUOTES and text.count(text[-1]) == 1:
        text = text[:-1].strip()
    return text


# ── limits ─────────────────────────────────────────────────────────────────────────────

_TRAILING_PUNCT = " ,;:.-/"


def _truncate_words(text: str, n: int) -> str:
    words = text.split()
    return " ".join(words[:n])


def _clean_name(name: str, max_words: int) -> str:
    name = clean_text(name).strip(_TRAILING_PUNCT + "\"'()[]")
    name = _ARTICLE.sub("", name)
    return _truncate_words(name, max_words).strip(_TRAILING_PUNCT + "\"'()[]")


def _clean_detail(detail: str, max_words: int) -> str:
    detail = clean_text(detail).strip(_TRAILING_PUNCT + "()")
    return _truncate_words(detail, max_words).strip(_TRAILING_PUNCT)


def _cap_paragraph(text: str, cap: int) -> str:
    """At most ``cap`` words; cut at a sentence end when one keeps ≥ 60 % of the cap."""
    words = text.split()
    if len(words) <= cap:
        return text
    kept = " ".join(words[:cap])
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", kept)]
    if ends and len(kept[: ends[-1]].split()) >= 0.6 * cap:
        return kept[: ends[-1]]
    return kept.rstrip(_TRAILING_PUNCT)


def enforce_limits(description: Description, config: DescribeConfig | None = None) -> Description:
    """A copy of ``description`` that keeps to ``config``'s limits.

    Names and details are cleaned (markdown, quotes, leading article, end punctuation)
    and cut to their word limits; empty and duplicate names are dropped; at most
    ``max_items`` items are kept, in the model's order (its most important first); the
    paragraph is cleaned and capped.
    """
    config = config or DescribeConfig()
    items: list[Item] = []
    seen: set[str] = set()
    for item in description.items:
        if len(items) >= config.max_items:
            break
        name = _clean_name(item.name, config.name_words)
        key = name.casefold()
        if not name or key in seen:
            continue
        seen.add(key)
        items.append(Item(name=name, detail=_clean_detail(item.detail, config.detail_words)))
    overall = _cap_paragraph(clean_text(description.overall), config.overall_cap)
    return Description(items=items, overall=overall)


# ── JSON ───────────────────────────────────────────────────────────────────────────────

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")

_ITEMS_KEYS = (
    "items",
    "key_items",
    "keyitems",
    "objects",
    "key_objects",
    "main_objects",
    "elements",
    "key_elements",
    "entities",
    "subjects",
)
_OVERALL_KEYS = (
    "overall",
    "overall_description",
    "overall_paragraph",
    "overall_scene",
    "description",
    "paragraph",
    "summary",
    "caption",
    "scene",
    "scene_description",
    "image_description",
    "text",
)
_NAME_KEYS = ("name", "item", "object", "label", "title", "entity", "noun")
_DETAIL_KEYS = (
    "detail",
    "details",
    "description",
    "desc",
    "attributes",
    "attribute",
    "features",
    "feature",
    "info",
    "appearance",
)


def _balanced_spans(text: str, open_ch: str, close_ch: str) -> list[str]:
    """Every top-level ``open_ch … close_ch`` span, honouring JSON strings."""
    spans: list[str] = []
    depth, start, in_str, esc = 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == open_ch:
            if depth == 0:
                start = i
            depth += 1
        elif ch == close_ch and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    if depth > 0 and start >= 0:  # cut off before its end (max_tokens): try to close it
        spans.append(text[start:])
    return spans


def _close_truncated(s: str) -> str:
    """Close the strings, lists and objects a truncated JSON answer left open."""
    stack: list[str] = []
    in_str, esc = False, False
    for ch in s:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    tail = '"' if in_str else ""
    s = (s + tail).rstrip().rstrip(",:")
    return s + "".join(reversed(stack))


def _loads_lenient(s: str) -> Any:
    s = s.strip()
    attempts = [s, _TRAILING_COMMA.sub(r"\1", s)]
    attempts.append(_close_truncated(attempts[-1]))
    attempts.append(_TRAILING_COMMA.sub(r"\1", attempts[-1]))
    for candidate in attempts:
        try:
            return json.loads(candidate, strict=False)
        except (json.JSONDecodeError, ValueError):
            pass
    # Python-style literals: single quotes, True/None (some small models write these).
    for candidate in attempts[:2]:
        try:
            return ast.literal_eval(candidate)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            pass
    return None


def _json_candidates(text: str) -> list[str]:
    out: list[str] = []
    for m in _FENCE.finditer(text):
        body = m.group(2).strip()
        if body[:1] in "{[":
            out.append(body)
        out.extend(_balanced_spans(body, "{", "}"))
    out.extend(_balanced_spans(text, "{", "}"))
    out.extend(_balanced_spans(text, "[", "]"))
    return out


def _norm_key(key: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _pick(
    d: dict[str, Any], keys: tuple[str, ...], fragments: tuple[str, ...] = (), kinds: Any = None
) -> Any:
    """The value of the first known key; else of the first key containing a fragment
    (``item_name``, ``Overall Description (50 words)``) whose value has the right type."""
    for k in keys:
        if k in d and d[k] not in (None, ""):
            return d[k]
    for k, v in d.items():
        if v not in (None, "") and any(f in k for f in fragments) and (kinds is None or isinstance(v, kinds)):
            return v
    return None


_ITEMS_FRAGMENTS = ("item", "object", "element", "entit")
_OVERALL_FRAGMENTS = ("overall", "description", "summary", "paragraph", "caption", "scene")
_NAME_FRAGMENTS = ("name", "label", "title")
_DETAIL_FRAGMENTS = ("detail", "desc", "attribute", "feature")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value if _as_text(v))
    if isinstance(value, dict):
        return ", ".join(f"{k} {_as_text(v)}".strip() for k, v in value.items())
    return str(value)


def _items_from_obj(value: Any) -> list[Item]:
    items: list[Item] = []
    if isinstance(value, dict):
        # {"dog": "brown, sitting", ...}, or a single item {"name": .., "detail": ..}
        d = {_norm_key(k): v for k, v in value.items()}
        if _pick(d, _NAME_KEYS) is not None:
            value = [value]
        else:
            return [Item(str(k), _as_text(v)) for k, v in value.items()]
    if isinstance(value, str):
        value = [p for p in re.split(r"\n|;", value) if p.strip()]
    if not isinstance(value, (list, tuple)):
        return items
    for entry in value:
        if isinstance(entry, dict):
            d = {_norm_key(k): v for k, v in entry.items()}
            name = _pick(d, _NAME_KEYS, _NAME_FRAGMENTS, str)
            detail = _pick(d, _DETAIL_KEYS, _DETAIL_FRAGMENTS)
            if name is None and len(d) == 1:  # {"dog": "brown, sitting"}
                ((name, detail),) = entry.items()
            if name is not None:
                items.append(Item(_as_text(name), _as_text(detail)))
        elif isinstance(entry, (list, tuple)) and entry:
            items.append(Item(_as_text(entry[0]), _as_text(list(entry[1:]))))
        elif isinstance(entry, str):
            item = _parse_item_line(entry)
            if item is not None:
                items.append(item)
    return items


def _from_obj(obj: Any, depth: int = 0) -> Description | None:
    """A Description from a decoded JSON value, or None when it has neither part."""
    if depth > 3:
        return None
    if isinstance(obj, list):
        items = _items_from_obj(obj)
        return Description(items=items) if items else None
    if not isinstance(obj, dict):
        return None
    d = {_norm_key(k): v for k, v in obj.items()}
    items_val = _pick(d, _ITEMS_KEYS, _ITEMS_FRAGMENTS, (list, dict))
    overall_val = _pick(d, _OVERALL_KEYS, _OVERALL_FRAGMENTS, (str, dict))
    if isinstance(overall_val, dict) and items_val is None:
        nested = _from_obj(overall_val, depth + 1)
        if nested is not None:
            return nested
    if items_val is None and overall_val is None:
        # {"answer": {...}} / {"response": {...}}: look one level down.
        for v in d.values():
            if isinstance(v, (dict, list)):
                nested = _from_obj(v, depth + 1)
                if nested is not None:
                    return nested
        return None
    return Description(
        items=_items_from_obj(items_val) if items_val is not None else [], overall=_as_text(overall_val)
    )


def _parse_json(text: str) -> Description | None:
    for candidate in _json_candidates(text):
        obj = _loads_lenient(candidate)
        if obj is None:
            continue
        desc = _from_obj(obj)
        if desc is not None and not desc.is_empty():
            return desc
    return None


# ── line formats ───────────────────────────────────────────────────────────────────────

_BULLET = re.compile(
    r"^\s*(?:[-*+\u2022\u00b7\u25aa\u25cf](?=\s)|[\u2022\u25aa\u25cf]|\(?\d{1,2}[.):]|\(?[a-hA-H][.)](?=\s))\s*"
)
_ITEM_PREFIX = re.compile(r"^(?:item|object|element)\s*#?\d+\s*[:.\-)]\s*", re.IGNORECASE)
_NAME_DETAIL_INLINE = re.compile(
    r"^name\s*:\s*(?P<name>.*?)\s*[,;|]\s*(?:detail|details|description)\s*:\s*(?P<detail>.*)$",
    re.IGNORECASE,
)
_ITEMS_HEADING = re.compile(
    r"^(?:(?:the\s+)?(?:\d+\s+)?(?:key|main|important|most\s+important)\s+)?"
    r"(?:items?|objects?|elements?|entities|subjects?)(?:\s+(?:and|with|&)\s+(?:their\s+)?details?)?"
    r"\s*(?::\s*(?P<rest>.*))?$",
    re.IGNORECASE,
)
_OVERALL_HEADING = re.compile(
    r"^(?:(?:overall|whole|full|general|scene|image|picture)(?:\s+(?:scene|image|picture))?"
    r"(?:\s+(?:description|paragraph|summary|caption))?|description|summary|paragraph|caption)"
    r"(?:\s+of\s+the\s+(?:whole\s+)?(?:image|picture|scene|photo(?:graph)?))?"
    r"\s*(?::\s*(?P<rest>.*))?$",
    re.IGNORECASE,
)
_DETAIL_LINE = re.compile(r"^(?:detail|details|description|desc)\s*:\s*(?P<detail>.*)$", re.IGNORECASE)
_NAME_LINE = re.compile(r"^name\s*:\s*(?P<name>.*)$", re.IGNORECASE)
_SEPARATORS = (re.compile(r"\s*:\s+|\s*:$"), re.compile(r"\s+[-|]\s+"), re.compile(r"\s*=\s*"))
_PREAMBLE = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|here(?:'s| is| are)|below is|the following)\b", re.IGNORECASE
)


def _strip_line(line: str) -> str:
    return clean_text(_LEADING_MARKS.sub("", line.strip()))


def _parse_item_line(line: str) -> Item | None:
    """``1. **Dog**: brown, sitting`` → Item("Dog", "brown, sitting"); None for empty lines."""
    s = _BULLET.sub("", _prepare(line).strip())
    s = _ITEM_PREFIX.sub("", clean_text(s))
    if not s:
        return None
    m = _NAME_DETAIL_INLINE.match(s)
    if m:
        return Item(m.group("name"), m.group("detail"))
    for sep in _SEPARATORS:
        parts = sep.split(s, maxsplit=1)
        if len(parts) == 2 and parts[0].strip() and len(parts[0].split()) <= 6:
            return Item(parts[0], parts[1])
    m = re.match(r"^(?P<name>[^()]{1,60}?)\s*\((?P<detail>[^()]*)\)\s*\.?$", s)
    if m:  # "dog (brown, sitting)"
        return Item(m.group("name"), m.group("detail"))
    head, sep, tail = s.partition(",")
    if sep and len(head.split()) <= 3:  # "dog, brown and sitting"
        return Item(head, tail)
    return Item(s, "")


def _is_item_like(raw: str) -> bool:
    """A bulleted/numbered line, or a short "name: detail" line."""
    if _BULLET.match(raw) and _BULLET.sub("", raw).strip():
        return True
    s = _strip_line(raw)
    if _NAME_DETAIL_INLINE.match(s) or _NAME_LINE.match(s):
        return True
    m = re.match(r"^([^:.!?]{1,40}?)\s*:\s+\S", s)
    return bool(m) and len(m.group(1).split()) <= 4 and len(s.split()) <= 20


def _items_from_lines(lines: list[str]) -> list[Item]:
    """Items from the lines of an item section (bullets, "name: detail", name/detail pairs)."""
    items: list[Item] = []
    last_indent = -1
    for raw in lines:
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip())
        s = _strip_line(_BULLET.sub("", raw))
        dm = _DETAIL_LINE.match(s)
        nm = _NAME_LINE.match(s)
        if nm and not _NAME_DETAIL_INLINE.match(s):
            items.append(Item(nm.group("name"), ""))
        elif dm and items and not items[-1].detail:
            items[-1].detail = dm.group("detail")
        elif items and not items[-1].detail and indent > last_indent >= 0 and not _is_item_like(raw.strip()):
            items[-1].detail = s  # a continuation line under a bare name
        elif items and not items[-1].detail and indent > last_indent >= 0 and _BULLET.match(raw.lstrip()):
            items[-1].detail = s  # "1. Dog" followed by "   - brown, sitting"
        else:
            # One line listing several bare names: "Items: dog, red car, tree"
            parts = [p.strip() for p in re.split(r",|;", s)]
            listing = ":" not in s and "(" not in s and not _BULLET.match(raw)
            if listing and len(parts) > 1 and all(0 < len(p.split()) <= 3 for p in parts):
                items.extend(Item(p, "") for p in parts)
                last_indent = indent
                continue
            item = _parse_item_line(raw)
            if item is not None:
                items.append(item)
            last_indent = indent
            continue
        if nm:
            last_indent = indent
    return items


def _misc_block(block: list[str]) -> list[Item] | None:
    """MISC's layout: "Helmet, Blue Hair, Paint." then one detail line per named item."""
    if len(block) < 2:
        return None
    if _BULLET.match(block[0]) or ":" in block[0]:
        return None
    first = clean_text(block[0]).rstrip(".")
    names = [n.strip() for n in first.split(",") if n.strip()]
    rest = [_strip_line(_BULLET.sub("", line)) for line in block[1:] if line.strip()]
    if not names or any(len(n.split()) > 4 for n in names) or len(rest) != len(names):
        return None
    if len(names) == 1 and len(rest[0].split()) > 20:
        return None
    return [Item(n, d) for n, d in zip(names, rest, strict=True)]


def _blocks(lines: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _parse_lines(text: str) -> Description:
    text = _FENCE.sub(lambda m: m.group(2), text)
    lines = [line.rstrip() for line in text.split("\n")]
    # Section headings.
    items_at, overall_at = -1, -1
    items_rest, overall_rest = "", ""
    for i, raw in enumerate(lines):
        s = _strip_line(_BULLET.sub("", raw)) if raw.strip() else ""
        if not s:
            continue
        m = _OVERALL_HEADING.match(s)
        if m and overall_at < 0 and (m.group("rest") is not None or len(s.split()) <= 4):
            overall_at, overall_rest = i, m.group("rest") or ""
            continue
        m = _ITEMS_HEADING.match(s)
        if m and items_at < 0 and overall_at < 0 and (m.group("rest") is not None or len(s.split()) <= 5):
            items_at, items_rest = i, m.group("rest") or ""
    if overall_at >= 0:
        overall = " ".join(_strip_line(x) for x in [overall_rest, *lines[overall_at + 1 :]] if x.strip())
        start = items_at + 1 if 0 <= items_at < overall_at else 0
        item_lines = lines[start:overall_at]
        if 0 <= items_at < overall_at and items_rest:
            item_lines = [items_rest, *item_lines]
        item_lines = [x for x in item_lines if not _is_preamble(x)]
        return Description(items=_items_from_lines(item_lines), overall=overall)
    if items_at >= 0:
        # Items heading but no paragraph heading: item lines, then the first prose block.
        after = lines[items_at + 1 :]
        item_lines: list[str] = [items_rest] if items_rest else []
        prose: list[str] = []
        for block in _blocks(after):
            if (
                not prose
                and all(_is_item_like(x) or len(x.split()) <= 12 for x in block)
                and (not item_lines or all(_is_item_like(x) for x in block))
            ):
                item_lines.extend(block)
            else:
                prose.extend(block)
        return Description(
            items=_items_from_lines(item_lines), overall=" ".join(_strip_line(x) for x in prose)
        )
    # No headings: classify blank-line separated blocks.
    items: list[Item] = []
    prose = []
    for block in _blocks(lines):
        block = [x for x in block if not _is_preamble(x)]
        if not block:
            continue
        misc = _misc_block(block) if not items and not prose else None
        if misc:
            items.extend(misc)
        elif all(_is_item_like(x) for x in block) and (len(block) > 1 or not prose):
            # A lone short "name: detail" line after prose is kept as prose.
            if len(block) == 1 and not _BULLET.match(block[0]) and len(block[0].split()) > 8 and not items:
                prose.append(_strip_line(block[0]))
            else:
                items.extend(_items_from_lines(block))
        else:
            prose.append(" ".join(_strip_line(x) for x in block))
    return Description(items=items, overall=" ".join(prose))


def _is_preamble(line: str) -> bool:
    s = _strip_line(line)
    return (
        bool(s) and bool(_PREAMBLE.match(s)) and (s.endswith(":") or s.endswith("!") or len(s.split()) <= 5)
    )


# ── entry point ────────────────────────────────────────────────────────────────────────


def parse_description(text: str, config: DescribeConfig | None = None) -> Description:
    """Read a model's (or a person's) answer into a Description within ``config``'s limits.

    Accepted, in this order: a JSON object ``{"items": [{"name", "detail"}], "overall"}``
    (key synonyms, items as a name→detail object or as "name: detail" strings, code
    fences, prose around it, trailing commas, single quotes, an answer cut off before its
    closing brace); "Items:" / "Overall:" headed sections; MISC's layout (a line of item
    names, one detail line per item, a blank line, the paragraph); bulleted or numbered
    "name: detail" lines followed by a paragraph; and a bare caption, which becomes the
    paragraph with no items.
    """
    config = config or DescribeConfig()
    if not text or not str(text).strip():
        return Description()
    # A description is a few hundred characters; a huge paste is cut before the regexes
    # and literal parsers see it, so parsing time stays bounded.
    text = _prepare(str(text)[:MAX_INPUT_CHARS]).strip()
    desc = _parse_json(text)
    if desc is None:
        unfenced = _FENCE.sub(lambda m: m.group(2), text).strip()
        if unfenced[:1] in "{[" and _loads_lenient(unfenced) is not None:
            return Description()  # valid JSON that says nothing: not a caption "{}"
        desc = _parse_lines(text)
    return enforce_limits(desc, config)
