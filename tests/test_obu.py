"""The pixel layer's compact form (codec/obu.py): SVT-AV1's sequence header rebuilt by the
decoder instead of stored, the raw form still read, and hostile compact sections refused."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from codec_helpers import kodak_crop
from PIL import Image

from codec import bitstream as bs
from codec import obu
from codec.errors import BitstreamError
from codec.pipeline import decode, encode, info, read_layers
from codec.pixel import TEMPORAL_DELIMITER, decode_pixels, encode_av1, section_type


def _raw_av1(image: Image.Image, family: str, level: int) -> bytes:
    """SVT-AV1's own OBUs for ``image`` (what encode_av1 compacts)."""
    compact = encode_av1(image, family, level)
    assert obu.is_compact(compact)
    return obu.expand(compact)[0]


@pytest.mark.parametrize("size", [(8, 8), (17, 33), (64, 64), (125, 125), (300, 200), (500, 500), (1000, 700)])
@pytest.mark.parametrize("quantiser", [("crf", 0), ("crf", 62), ("qindex", 0), ("qindex", 199)])
def test_the_compact_form_decodes_to_the_same_pixels_and_is_10_to_13_bytes_smaller(size, quantiser):
    rng = np.random.default_rng(size[0] * 7 + size[1])
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    compact = encode_av1(image, *quantiser)
    raw, named = obu.expand(compact)
    assert named == size and section_type(compact) == bs.SectionType.PIXEL_AV1_COMPACT
    # the rebuilt sequence header is SVT-AV1's: the compact form of the raw OBUs is the same bytes
    assert obu.compact(raw, size) == compact
    assert 10 <= len(raw) - len(compact) <= 13
    assert np.array_equal(np.asarray(decode_pixels(compact)), np.asarray(decode_pixels(raw, compact=False)))


def test_a_sequence_header_the_form_does_not_rebuild_keeps_the_raw_obus():
    raw = _raw_av1(kodak_crop(3, (40, 30)), "crf", 10)
    header_len = raw[1]
    flipped = bytearray(raw)
    flipped[2 + header_len - 2] ^= 0x10  # a field near the end of the sequence header
    assert obu.compact(bytes(flipped), (40, 30)) is None
    assert obu.compact(raw[: 2 + header_len], (40, 30)) is None  # no frame OBU
    assert obu.compact(TEMPORAL_DELIMITER + raw, (40, 30)) is None  # a third OBU
    assert obu.compact(raw, (41, 30)) is None  # not this frame's size


def test_files_are_written_compact_and_files_in_the_raw_form_still_decode():
    image = kodak_crop(5, (160, 120))
    data = encode(image, 0.05, decoder_hint="bicubic").data
    f = bs.unpack(data)
    assert f.section(bs.SectionType.PIXEL_AV1_COMPACT) is not None and f.section(bs.SectionType.PIXEL_AV1) is None
    assert info(data)["sections"]["pixel_av1"]["form"] == "compact"
    legacy = obu.with_raw_pixels(data)
    assert bs.unpack(legacy).section(bs.SectionType.PIXEL_AV1) is not None
    assert info(legacy)["sections"]["pixel_av1"]["form"] == "raw"
    assert 10 <= len(legacy) - len(data) <= 13
    assert np.array_equal(np.asarray(decode(data, "bicubic").image), np.asarray(decode(legacy, "bicubic").image))


def _with_sections(data: bytes, sections: list[bs.Section]) -> bytes:
    f = bs.unpack(data)
    f.sections = sections
    return bs.pack(f)


def test_hostile_compact_sections_are_refused_before_decoding():
    image = kodak_crop(7, (96, 64))
    data = encode(image, 0.1, decoder_hint="bicubic").data
    payload = bs.unpack(data).section(bs.SectionType.PIXEL_AV1_COMPACT)
    w, h = read_layers(data).lowres.size
    frame_at = 1 + len(bs.varint(w)) + len(bs.varint(h))
    frame = payload[frame_at:]

    def compact(mark: int, w: int, h: int, body: bytes = frame) -> bytes:
        return _with_sections(data, [bs.Section(bs.SectionType.PIXEL_AV1_COMPACT, bytes([mark]) + bs.varint(w)
                                                + bs.varint(h) + body)])  # fmt: skip

    mark = payload[0]
    # a frame larger than the picture: refused from the section's own numbers, dav1d never runs
    with pytest.raises(BitstreamError, match="larger than the picture"):
        read_layers(compact(mark, 8000, 8000))
    with pytest.raises(BitstreamError, match="larger than the image"):
        read_layers(compact(mark, 97, 1))
    with pytest.raises(BitstreamError):
        read_layers(compact(mark, 0, h))
    with pytest.raises(BitstreamError, match="no frame"):
        read_layers(compact(mark, w, h, b""))
    with pytest.raises(BitstreamError, match="mark byte"):
        read_layers(compact(mark & 0x7F, w, h))
    with pytest.raises(BitstreamError):  # the frame's payload damaged: dav1d refuses, typed
        read_layers(compact(mark, w, h, bytes(len(frame))))
    # the form must match the section type, and a file holds one pixel section
    raw = obu.expand(payload)[0]
    with pytest.raises(BitstreamError, match="forbidden bit"):
        read_layers(_with_sections(data, [bs.Section(bs.SectionType.PIXEL_AV1, payload)]))
    with pytest.raises(BitstreamError, match="mark byte"):
        read_layers(_with_sections(data, [bs.Section(bs.SectionType.PIXEL_AV1_COMPACT, raw)]))
    both = bs.unpack(data)
    both.sections = [*both.sections, bs.Section(bs.SectionType.PIXEL_AV1, raw)]
    with pytest.raises(BitstreamError, match="raw or compact"):
        bs.pack(both)
    body = bs.header_bytes(both) + b"".join(bs.section_bytes(s) for s in both.sections)
    with pytest.raises(BitstreamError, match="two pixel sections"):
        bs.unpack(body + zlib.crc32(body).to_bytes(bs.CRC_BYTES, "little"))
