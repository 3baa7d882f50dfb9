"""The .misc container: a compact header, typed sections, a checksum.

At 100-800 bytes per image every byte of framing is paid for in picture quality, so the
fixed part is a handful of bytes and everything optional is switched on by a flag::

    +--------+---------+-------+--------+-------+--------+----------+--------------------+-------+
    | 'M'    | version | width | height | flags | [seed] | [models] | sections ...       | CRC32 |
    | 1 byte | varint  | varint| varint | varint| varint | list     | {type, len, bytes}*| 4 B LE|
    +--------+---------+-------+--------+-------+--------+----------+--------------------+-------+

The checksum covers every byte before it and is checked before anything else is read,
so a damaged file is refused as a whole instead of decoding into a wrong picture. The
parser never trusts a length it has not checked against what is left of the buffer, and
every field has a bound. docs/FORMAT.md is the normative description.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from .errors import BitstreamError, PixelLimitError

MAGIC = 0x4D  # 'M'
FORMAT_VERSION = 1
CRC_BYTES = 4

# Bounds that keep a hostile file from making the decoder allocate or loop without end.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_SIDE = 16384
MAX_PIXELS = 64 * 1024 * 1024
MAX_SECTIONS = 16
MAX_MODELS = 8
MAX_MODEL_NAME = 128
MAX_VARINT_BYTES = 5  # values below 2**35; every field here is far smaller


class Flag(IntFlag):
    GRAYSCALE = 1  # the source had one channel; decode to one channel
    HAS_SEED = 2  # a seed for stochastic decoders follows
    HAS_MODELS = 4  # a list of model ids follows


KNOWN_FLAGS = Flag.GRAYSCALE | Flag.HAS_SEED | Flag.HAS_MODELS


class SectionType(IntEnum):
    """Section types. Types below ANCILLARY_BASE must be understood by a decoder; types at
    or above it may be skipped by a decoder that does not know them (like PNG's ancillary
    chunks), so later versions can add hints without breaking older readers."""

    PIXEL_AV1 = 1  # raw AV1 OBUs of one intra frame, temporal delimiter removed
    TEXT = 2  # entropy-coded description (items, details, paragraph)
    MAPS = 3  # entropy-coded binary item grids
    RECIPE = 4  # an AI image's generation settings (codec.aigi.section)
    PIXEL_AV1_COMPACT = 5  # the same frame, its sequence header rebuilt by the decoder (codec.obu)
    REALISM = 33  # ancillary: the detail level the encoder chose (codec.realism.detail)


ANCILLARY_BASE = 32
PIXEL_TYPES = {SectionType.PIXEL_AV1, SectionType.PIXEL_AV1_COMPACT}  # one of them per file
# Ancillary sections (older readers skip them): 33 REALISM, the decoder's detail level
# chosen by the encoder (codec.realism.detail).


# Models a decoder may need, by compact id. Id 0 is an escape: a UTF-8 name follows, for
# models this table does not know yet. Ids are never reused for another model.
KNOWN_MODELS: dict[int, str] = {
    1: "restore/realesrgan-x4plus",
    2: "diffusion/sd15-controlnet-tile",
    3: "text/misc-text-en-1",
    4: "text/misc-prompt-en-1",  # text-to-image prompts (codec.textcoder, PROMPT_MODEL)
    # 16-31: who made a layer (provenance; a decoder does not need them). See docs/FORMAT.md.
    16: "describe/hf:Qwen/Qwen2.5-VL-3B-Instruct",
    17: "maps/clip-surgery:ViT-B-16/openai",
    18: "describe/manual",
    19: "maps/painted",
    20: "describe/openai:gpt-4o",
    21: "describe/openai:gpt-4o-mini",
    22: "describe/hf:other",  # another transformers VLM (its full name would cost ~30 bytes)
    23: "describe/openai:other",  # another OpenAI-compatible model
    24: "maps/clip-surgery:other",  # another CLIP model
}
MODEL_IDS = {name: i for i, name in KNOWN_MODELS.items()}


@dataclass(frozen=True)
class Section:
    type: int
    payload: bytes


@dataclass
class MiscFile:
    """A parsed .misc file. ``pack`` and ``unpack`` are exact inverses."""

    width: int
    height: int
    sections: list[Section] = field(default_factory=list)
    grayscale: bool = False
    seed: int | None = None
    models: list[str] = field(default_factory=list)
    version: int = FORMAT_VERSION

    def section(self, type_: int) -> bytes | None:
        for s in self.sections:
            if s.type == type_:
                return s.payload
        return None


# ----------------------------------------------------------------------------- varints


def varint(value: int) -> bytes:
    """Unsigned LEB128."""
    if value < 0:
        raise ValueError("varint of a negative number")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Reader:
    """A cursor over bytes that raises BitstreamError instead of reading past the end."""

    def __init__(self, data: bytes, what: str = "file"):
        self.data = data
        self.pos = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise BitstreamError(f"{self.what} is truncated (needed 1 more byte at offset {self.pos})")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise BitstreamError(
                f"{self.what} is truncated or corrupt: a field claims {n} bytes at offset {self.pos}, "
                f"only {self.remaining} remain"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, limit: int, name: str, max_bytes: int = MAX_VARINT_BYTES) -> int:
        value = 0
        for i in range(max_bytes):
            b = self.byte()
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if b == 0 and i > 0:
                    raise BitstreamError(f"{self.what}: non-canonical number in field '{name}'")
                if value > limit:
                    raise BitstreamError(f"{self.what}: field '{name}' is {value}, above the limit {limit}")
                return value
        raise BitstreamError(f"{self.what}: field '{name}' is longer than {max_bytes} bytes")


# ----------------------------------------------------------------------------- pack / unpack


def header_bytes(f: MiscFile) -> bytes:
    """Everything before the first section."""
    flags = Flag(0)
    if f.grayscale:
        flags |= Flag.GRAYSCALE
    if f.seed is not None:
        flags |= Flag.HAS_SEED
    if f.models:
        flags |= Flag.HAS_MODELS
    out = bytearray([MAGIC])
    out += varint(f.version) + varint(f.width) + varint(f.height) + varint(int(flags))
    if f.seed is not None:
        out += varint(f.seed)
    if f.models:
        out += varint(len(f.models))
        for name in f.models:
            if name in MODEL_IDS:
                out += varint(MODEL_IDS[name])
            else:
                raw = name.encode("utf-8")
                out += varint(0) + varint(len(raw)) + raw
    return bytes(out)


def section_bytes(s: Section) -> bytes:
    return varint(s.type) + varint(len(s.payload)) + s.payload


def section_overhead(payload_len: int, type_: int = SectionType.PIXEL_AV1) -> int:
    """Bytes a section adds beyond its payload (type and length fields)."""
    return len(varint(type_)) + len(varint(payload_len))


def _validate(f: MiscFile) -> None:
    if f.version != FORMAT_VERSION:
        raise BitstreamError(f"cannot write format version {f.version}")
    _check_size(f.width, f.height)
    if f.seed is not None and not 0 <= f.seed < 2**32:
        raise BitstreamError("seed must fit in 32 bits")
    if len(f.models) > MAX_MODELS:
        raise BitstreamError(f"at most {MAX_MODELS} models may be named")
    for name in f.models:
        if not name or len(name.encode("utf-8")) > MAX_MODEL_NAME:
            raise BitstreamError(f"model name {name!r} is empty or longer than {MAX_MODEL_NAME} bytes")
    if len(f.sections) > MAX_SECTIONS:
        raise BitstreamError(f"at most {MAX_SECTIONS} sections")
    types = [s.type for s in f.sections]
    if len(set(types)) != len(types):
        raise BitstreamError("a section type appears twice")
    if PIXEL_TYPES <= set(types):
        raise BitstreamError("a file holds one pixel section, raw or compact, not both")


def _check_size(width: int, height: int, max_pixels: int = MAX_PIXELS) -> None:
    """The format's bounds (BitstreamError), then the caller's limit (PixelLimitError)."""
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise BitstreamError(f"image size {width}x{height} is outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise BitstreamError(f"image size {width}x{height} exceeds the format's pixel limit {MAX_PIXELS}")
    if width * height > max_pixels:
        raise PixelLimitError(width, height, max_pixels)


def pack(f: MiscFile) -> bytes:
    _validate(f)
    body = header_bytes(f) + b"".join(section_bytes(s) for s in f.sections)
    data = body + zlib.crc32(body).to_bytes(CRC_BYTES, "little")
    if len(data) > MAX_FILE_BYTES:
        raise BitstreamError(f"file would be {len(data)} bytes, above the limit {MAX_FILE_BYTES}")
    return data


def read_file(path) -> bytes:
    """A file's bytes, reading no more than a .misc file can hold: an upload or a path
    given by someone else may be any size, and is refused without being read whole."""
    with open(path, "rb") as fp:
        data = fp.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise BitstreamError(f"file is more than {MAX_FILE_BYTES:,} bytes, the most a .misc file holds: not a .misc file")
    return data


def unpack(data: bytes, max_pixels: int = MAX_PIXELS) -> MiscFile:
    """Parse a .misc file, or raise BitstreamError saying what is wrong with it.

    The picture size is checked against ``max_pixels`` as soon as the header is read,
    before any section is looked at: PixelLimitError (a BitstreamError) when it is larger."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BitstreamError("expected bytes")
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise BitstreamError(f"file is {len(data)} bytes, above the limit {MAX_FILE_BYTES}: not a .misc file")
    if len(data) < 1 + 4 + CRC_BYTES:
        raise BitstreamError(f"file is only {len(data)} bytes: truncated or not a .misc file")
    if data[0] != MAGIC:
        raise BitstreamError("not a .misc file (bad magic byte)")
    body, crc = data[:-CRC_BYTES], int.from_bytes(data[-CRC_BYTES:], "little")
    r = Reader(body)
    r.pos = 1
    version = r.varint(2**16, "version")
    if version != FORMAT_VERSION:
        raise BitstreamError(
            f"format version {version} is not supported by this decoder (it reads version {FORMAT_VERSION})"
        )
    if zlib.crc32(body) != crc:
        raise BitstreamError("checksum mismatch: the file is corrupted or truncated")
    width = r.varint(MAX_SIDE, "width")
    height = r.varint(MAX_SIDE, "height")
    _check_size(width, height, max_pixels)
    flags = r.varint(2**16, "flags")
    if flags & ~int(KNOWN_FLAGS):
        raise BitstreamError(f"unknown header flags 0x{flags & ~int(KNOWN_FLAGS):x}: written by a newer encoder?")
    seed = r.varint(2**32 - 1, "seed") if flags & Flag.HAS_SEED else None
    models: list[str] = []
    if flags & Flag.HAS_MODELS:
        n = r.varint(MAX_MODELS, "model count")
        if n == 0:
            raise BitstreamError("model list flagged but empty")
        for _ in range(n):
            mid = r.varint(2**16, "model id")
            if mid == 0:
                raw = r.take(r.varint(MAX_MODEL_NAME, "model name length"))
                try:
                    name = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise BitstreamError("model name is not valid UTF-8") from e
                if not name:
                    raise BitstreamError("empty model name")
            elif mid in KNOWN_MODELS:
                name = KNOWN_MODELS[mid]
            else:
                raise BitstreamError(f"the file needs model id {mid}, unknown to this decoder (written by a newer encoder?)")
            models.append(name)
    sections: list[Section] = []
    seen: set[int] = set()
    while r.remaining:
        if len(sections) >= MAX_SECTIONS:
            raise BitstreamError(f"more than {MAX_SECTIONS} sections")
        type_ = r.varint(2**16, "section type")
        payload = r.take(r.varint(MAX_FILE_BYTES, "section length"))
        if type_ in seen:
            raise BitstreamError(f"section type {type_} appears twice")
        seen.add(type_)
        if PIXEL_TYPES <= seen:
            raise BitstreamError("the file holds two pixel sections (raw and compact)")
        if type_ in SectionType._value2member_map_:
            sections.append(Section(type_, payload))
        elif type_ < ANCILLARY_BASE:
            raise BitstreamError(f"unknown required section type {type_}: written by a newer encoder?")
        # unknown ancillary sections are skipped on purpose
    return MiscFile(
        width=width, height=height, sections=sections, grayscale=bool(flags & Flag.GRAYSCALE),
        seed=seed, models=models, version=version,
    )


def layout(data: bytes) -> dict:
    """Byte accounting of a valid file: header, each section (framing included), checksum."""
    f = unpack(data)
    head = len(header_bytes(f))
    sections = {}
    for s in f.sections:
        name = "pixel_av1" if s.type in PIXEL_TYPES else SectionType(s.type).name.lower()
        sections[name] = {"payload_bytes": len(s.payload), "framing_bytes": section_overhead(len(s.payload), s.type)}
        if s.type in PIXEL_TYPES:
            sections[name]["form"] = "compact" if s.type == SectionType.PIXEL_AV1_COMPACT else "raw"
    return {
        "header_bytes": head,
        "checksum_bytes": CRC_BYTES,
        "sections": sections,
        "total_bytes": len(data),
    }
