"""Metadata entries out of PNG, JPEG and WebP files, read with hard bounds and no pixel decoding.

    PNG   tEXt / zTXt / iTXt chunks (keyword → text), caBX (C2PA)
    JPEG  APP1 Exif (UserComment, ImageDescription, Software, Make), APP1 XMP, APP11 JUMBF (C2PA)
    WebP  EXIF, XMP and C2PA chunks of the RIFF container

A file is untrusted input, so these walkers never allocate what a length field claims before
checking it against what is there, never inflate a zTXt/iTXt chunk past ``MAX_TEXT_BYTES``
(a decompression bomb stops at the bound), stop after ``MAX_ENTRIES`` entries, and follow no
offset outside the EXIF block. Anything malformed raises RecipeError saying where.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..errors import RecipeError

MAX_FILE_BYTES = 64 * 1024 * 1024  # metadata is searched in at most this much of a file
MAX_TEXT_BYTES = 256 * 1024  # one text entry, after decompression
MAX_TOTAL_TEXT = 1024 * 1024  # all entries of one file together
MAX_ENTRIES = 64
MAX_IFD_ENTRIES = 512

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Entry:
    """One piece of metadata: where it came from, its key, and its text (or raw bytes)."""

    container: str  # "png", "jpeg", "webp"
    kind: str  # "text" (PNG text chunk), "exif", "xmp", "c2pa"
    key: str
    value: str


class _Budget:
    def __init__(self) -> None:
        self.entries = 0
        self.text = 0

    def add(self, n: int, where: str) -> None:
        self.entries += 1
        self.text += n
        if self.entries > MAX_ENTRIES:
            raise RecipeError(f"{where}: more than {MAX_ENTRIES} metadata entries")
        if self.text > MAX_TOTAL_TEXT:
            raise RecipeError(f"{where}: metadata text exceeds {MAX_TOTAL_TEXT} bytes in total")


def _inflate(data: bytes, where: str) -> bytes:
    """zlib-decompress at most MAX_TEXT_BYTES; a bomb is refused, not inflated."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, MAX_TEXT_BYTES + 1)
    except zlib.error as e:
        raise RecipeError(f"{where}: compressed text is corrupt ({e})") from e
    if len(out) > MAX_TEXT_BYTES or d.unconsumed_tail:
        raise RecipeError(
            f"{where}: compressed text inflates to more than {MAX_TEXT_BYTES} bytes (decompression bomb?)"
        )
    return out


def _latin1_keyword(raw: bytes, where: str) -> str:
    if not 1 <= len(raw) <= 79:
        raise RecipeError(f"{where}: keyword of {len(raw)} bytes (PNG allows 1-79)")
    return raw.decode("latin-1")


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecipeError(f"{where}: text is not valid UTF-8") from e


def png_entries(data: bytes) -> list[Entry]:
    """Text chunks (tEXt latin-1, zTXt latin-1 compressed, iTXt UTF-8) and a C2PA marker."""
    if not data.startswith(PNG_SIGNATURE):
        raise RecipeError("not a PNG file")
    out: list[Entry] = []
    budget = _Budget()
    pos = len(PNG_SIGNATURE)
    n = len(data)
    while pos < n:
        if pos + 8 > n:
            raise RecipeError(f"PNG is truncated: a chunk header at offset {pos} is cut off")
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        if length > 0x7FFFFFFF or pos + 12 + length > n:
            raise RecipeError(
                f"PNG chunk {ctype!r} at offset {pos} claims {length} bytes, past the end of the file"
            )
        body = data[pos + 8 : pos + 8 + length]
        where = f"PNG {ctype.decode('latin-1')} chunk at offset {pos}"
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            if length > MAX_TEXT_BYTES:
                raise RecipeError(f"{where}: {length} bytes, above the limit {MAX_TEXT_BYTES}")
            key_raw, sep, rest = body.partition(b"\x00")
            if not sep:
                raise RecipeError(f"{where}: no keyword terminator")
            key = _latin1_keyword(key_raw, where)
            if ctype == b"tEXt":
                text = rest.decode("latin-1")
            elif ctype == b"zTXt":
                if not rest or rest[0] != 0:
                    raise RecipeError(f"{where}: unknown compression method")
                text = _inflate(rest[1:], where).decode("latin-1")
            else:
                if len(rest) < 2:
                    raise RecipeError(f"{where}: truncated iTXt header")
                compressed, method = rest[0], rest[1]
                parts = rest[2:].split(b"\x00", 2)
                if len(parts) != 3:
                    raise RecipeError(f"{where}: truncated iTXt language/translated keyword")
                payload = parts[2]
                if compressed == 1:
                    if method != 0:
                        raise RecipeError(f"{where}: unknown compression method")
                    payload = _inflate(payload, where)
                elif compressed != 0:
                    raise RecipeError(f"{where}: bad compression flag {compressed}")
                text = _utf8(payload, where)
            budget.add(len(text), where)
            out.append(Entry("png", "text", key, text))
        elif ctype == b"caBX":
            budget.add(0, where)
            out.append(Entry("png", "c2pa", "caBX", f"{length} bytes"))
        elif ctype == b"eXIf":
            out.extend(exif_entries(body, "png", budget))
        elif ctype == b"IEND":
            break
        pos += 12 + length
    return out


def _segments(data: bytes):
    """(marker, payload) of the JPEG header segments, up to the start of scan."""
    if not data.startswith(b"\xff\xd8"):
        raise RecipeError("not a JPEG file")
    pos = 2
    n = len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise RecipeError(f"JPEG is corrupt: expected a marker at offset {pos}")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise RecipeError("JPEG is truncated after a marker")
        marker = data[pos]
        pos += 1
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > n:
            raise RecipeError(f"JPEG is truncated: segment length at offset {pos} is cut off")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > n:
            raise RecipeError(
                f"JPEG segment 0x{marker:02X} at offset {pos} claims {length} bytes, past the end"
            )
        yield marker, data[pos + 2 : pos + length]
        pos += length


XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


def jpeg_entries(data: bytes) -> list[Entry]:
    out: list[Entry] = []
    budget = _Budget()
    for marker, payload in _segments(data):
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            out.extend(exif_entries(payload[6:], "jpeg", budget))
        elif marker == 0xE1 and payload.startswith(XMP_HEADER):
            xml = payload[len(XMP_HEADER) :].decode("utf-8", errors="replace")  # searched, never parsed
            budget.add(len(xml), "JPEG XMP segment")
            out.append(Entry("jpeg", "xmp", "xmp", xml))
        elif marker == 0xEB and b"jumb" in payload[:64] and b"c2pa" in payload[:256]:
            budget.add(0, "JPEG APP11 segment")
            out.append(Entry("jpeg", "c2pa", "jumbf", f"{len(payload)} bytes"))
        elif marker == 0xFE:  # COM
            budget.add(len(payload), "JPEG comment")
            out.append(Entry("jpeg", "text", "comment", payload.decode("utf-8", errors="replace")))
    return out


def webp_entries(data: bytes) -> list[Entry]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise RecipeError("not a WebP file")
    out: list[Entry] = []
    budget = _Budget()
    pos = 12
    n = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    while pos + 8 <= n:
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + size > len(data):
            raise RecipeError(f"WebP chunk {fourcc!r} at offset {pos} claims {size} bytes, past the end")
        body = data[pos + 8 : pos + 8 + size]
        if fourcc == b"EXIF":
            out.extend(exif_entries(body[6:] if body.startswith(b"Exif\x00\x00") else body, "webp", budget))
        elif fourcc == b"XMP ":
            xml = body.decode("utf-8", errors="replace")
            budget.add(len(xml), "WebP XMP chunk")
            out.append(Entry("webp", "xmp", "xmp", xml))
        elif fourcc == b"C2PA":
            budget.add(0, "WebP C2PA chunk")
            out.append(Entry("webp", "c2pa", "C2PA", f"{size} bytes"))
        pos += 8 + size + (size & 1)
    return out


# ------------------------------------------------------------------------------ EXIF

EXIF_TAGS = {0x010E: "ImageDescription", 0x010F: "Make", 0x0131: "Software", 0x9286: "UserComment"}
EXIF_IFD_POINTER = 0x8769
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


def _user_comment(raw: bytes, big_endian: bool) -> str:
    """EXIF UserComment: 8-byte character code, then the text (A1111 writes UNICODE = UTF-16)."""
    code, body = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        if body.startswith((b"\xfe\xff", b"\xff\xfe")):
            return body.decode("utf-16")
        # Writers disagree on the byte order (piexif: big-endian; some: the TIFF's order).
        # Latin text in UTF-16 has a zero in every other byte; pick the order that puts it first.
        zeros_even = body[0::2].count(0)
        zeros_odd = body[1::2].count(0)
        order = "utf-16-be" if zeros_even >= zeros_odd else "utf-16-le"
        if zeros_even == zeros_odd:
            order = "utf-16-be" if big_endian else "utf-16-le"
        return body[: len(body) // 2 * 2].decode(order, errors="replace").rstrip("\x00")
    return body.decode("utf-8", errors="replace").rstrip("\x00")


def exif_entries(tiff: bytes, container: str, budget: _Budget | None = None) -> list[Entry]:
    """The few EXIF tags a recipe can hide in, from IFD0 and the Exif sub-IFD."""
    budget = budget or _Budget()
    where = f"{container.upper()} EXIF"
    if len(tiff) < 8 or tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        raise RecipeError(f"{where}: not a TIFF header")
    big = tiff[:2] == b"MM"
    bo = "big" if big else "little"

    def u16(o: int) -> int:
        return int.from_bytes(tiff[o : o + 2], bo)

    def u32(o: int) -> int:
        return int.from_bytes(tiff[o : o + 4], bo)

    out: list[Entry] = []
    seen: set[int] = set()

    def walk(offset: int) -> None:
        if offset in seen or offset + 2 > len(tiff):
            raise RecipeError(f"{where}: IFD offset {offset} is outside the block or repeats")
        seen.add(offset)
        count = u16(offset)
        if count > MAX_IFD_ENTRIES or offset + 2 + 12 * count > len(tiff):
            raise RecipeError(f"{where}: IFD at {offset} claims {count} entries, past the end")
        for i in range(count):
            e = offset + 2 + 12 * i
            tag, typ, n = u16(e), u16(e + 2), u32(e + 4)
            if tag == EXIF_IFD_POINTER:
                walk(u32(e + 8))
                continue
            if tag not in EXIF_TAGS:
                continue
            size = _TYPE_SIZES.get(typ, 0) * n
            if size == 0:
                continue
            if size > MAX_TEXT_BYTES:
                raise RecipeError(
                    f"{where}: tag {EXIF_TAGS[tag]} claims {size} bytes, above {MAX_TEXT_BYTES}"
                )
            start = e + 8 if size <= 4 else u32(e + 8)
            if start + size > len(tiff):
                raise RecipeError(f"{where}: tag {EXIF_TAGS[tag]} points past the end of the block")
            raw = tiff[start : start + size]
            if tag == 0x9286:
                text = _user_comment(raw, big)
            else:
                text = raw.rstrip(b"\x00").decode("utf-8", errors="replace")
            budget.add(len(text), where)
            out.append(Entry(container, "exif", EXIF_TAGS[tag], text))

    walk(u32(4))
    return out


def file_entries(data: bytes) -> tuple[str, list[Entry]]:
    """(container name, entries) of any supported file; RecipeError for others."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RecipeError("expected the file's bytes")
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise RecipeError(f"file is {len(data)} bytes, above the {MAX_FILE_BYTES}-byte limit for metadata")
    if data.startswith(PNG_SIGNATURE):
        return "png", png_entries(data)
    if data.startswith(b"\xff\xd8"):
        return "jpeg", jpeg_entries(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", webp_entries(data)
    raise RecipeError("not a PNG, JPEG or WebP file: no generation metadata can be read from it")
