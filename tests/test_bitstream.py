"""The container: exact round trips, strict refusal of anything damaged, and fuzzing."""

from __future__ import annotations

import random
import zlib

import pytest
from codec_helpers import kodak_crop

from codec import bitstream as bs
from codec.errors import BitstreamError
from codec.pipeline import encode, read_layers


def _file(**kw) -> bs.MiscFile:
    base = dict(width=500, height=375, sections=[bs.Section(bs.SectionType.PIXEL_AV1, b"\x0a\x0b" * 40)])
    base.update(kw)
    return bs.MiscFile(**base)


def test_round_trip_all_fields():
    f = _file(
        grayscale=True,
        seed=123456,
        models=["restore/realesrgan-x4plus", "someone/custom-model-v2"],
        sections=[bs.Section(bs.SectionType.PIXEL_AV1, b"abc"), bs.Section(bs.SectionType.TEXT, bytes(300))],
    )
    g = bs.unpack(bs.pack(f))
    assert g == f


def test_fixed_overhead_is_a_few_bytes():
    data = bs.pack(_file())
    lay = bs.layout(data)
    # magic + version + 2-byte width + 2-byte height + flags, then a CRC-32.
    assert lay["header_bytes"] == 7
    assert lay["checksum_bytes"] == 4
    assert lay["sections"]["pixel_av1"]["framing_bytes"] == 2


def test_known_models_cost_one_byte_each():
    plain = len(bs.pack(_file()))
    named = len(bs.pack(_file(models=["restore/realesrgan-x4plus"])))
    assert named - plain == 2  # count + id


def _recrc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:-1], "checksum"),
        (lambda d: d[:5], "truncated"),
        (lambda d: b"X" + d[1:], "magic"),
        (lambda d: d[:1] + b"\x02" + d[2:], "version 2"),
        (lambda d: bytes([d[0], d[1], d[2] ^ 1]) + d[3:], "checksum"),
        (lambda d: b"", "only 0 bytes"),
        (lambda d: d + b"\x00" * (bs.MAX_FILE_BYTES), "limit"),
    ],
)
def test_damaged_files_are_refused_with_a_clear_message(mutate, message):
    with pytest.raises(BitstreamError, match=message):
        bs.unpack(mutate(bs.pack(_file())))


def test_structural_errors_behind_a_valid_checksum():
    good = bs.pack(_file())[:-4]
    head = bs.header_bytes(_file())
    # width above the limit
    with pytest.raises(BitstreamError, match="width"):
        bs.unpack(_recrc(bytes([bs.MAGIC, 1]) + bs.varint(100000) + head[4:]))
    # a section claiming more bytes than remain
    with pytest.raises(BitstreamError, match="claims"):
        bs.unpack(_recrc(head + bytes([1]) + bs.varint(5000) + b"xx"))
    # an unknown required section type
    with pytest.raises(BitstreamError, match="unknown required section"):
        bs.unpack(_recrc(good + bytes([7, 1, 0])))
    # unknown flags
    with pytest.raises(BitstreamError, match="flags"):
        bs.unpack(_recrc(head[:-1] + bytes([0x40]) + good[len(head):]))
    # duplicate section
    sec = bs.section_bytes(bs.Section(1, b"ab"))
    with pytest.raises(BitstreamError, match="twice"):
        bs.unpack(_recrc(head + sec + sec))
    # a non-canonical varint
    with pytest.raises(BitstreamError, match="non-canonical"):
        bs.unpack(_recrc(bytes([bs.MAGIC, 0x81, 0x00]) + head[2:]))
    # unknown model id
    f = _file(models=["restore/realesrgan-x4plus"])
    raw = bs.pack(f)[:-4]
    i = raw.index(bytes([1, 1]), 5)  # count 1, id 1
    with pytest.raises(BitstreamError, match="model id 99"):
        bs.unpack(_recrc(raw[:i] + bytes([1, 99]) + raw[i + 2 :]))


def test_unknown_ancillary_sections_are_skipped():
    body = bs.pack(_file())[:-4] + bytes([40, 3]) + b"new"
    f = bs.unpack(_recrc(body))
    assert [s.type for s in f.sections] == [bs.SectionType.PIXEL_AV1]


def test_pack_refuses_invalid_records():
    with pytest.raises(BitstreamError):
        bs.pack(_file(width=0))
    with pytest.raises(BitstreamError):
        bs.pack(_file(sections=[bs.Section(1, b"a"), bs.Section(1, b"b")]))
    with pytest.raises(BitstreamError):
        bs.pack(_file(seed=2**40))


@pytest.fixture(scope="module")
def real_files() -> list[bytes]:
    return [
        encode(kodak_crop(1, (96, 80)), 0.05).data,
        encode(kodak_crop(5, (120, 64)), 0.1, seed=7, decoder_hint="restore").data,
        encode(kodak_crop(23, (64, 64)).convert("L"), 0.2).data,
    ]


def _same(a, b) -> bool:
    return (a.width, a.height, a.grayscale, a.seed, a.models) == (b.width, b.height, b.grayscale, b.seed, b.models) and (
        a.lowres.tobytes() == b.lowres.tobytes()
    )


def test_fuzz_mutations_and_truncations(real_files):
    """Every damaged copy of a real file is either decoded identically or refused with
    BitstreamError: nothing else escapes, nothing wrong comes back."""
    rng = random.Random(20261126)
    counts = {"identical": 0, "rejected": 0}
    for data in real_files:
        ref = read_layers(data)
        for _ in range(700):
            d = bytearray(data)
            kind = rng.randrange(4)
            if kind == 0:
                for _ in range(rng.randint(1, 3)):
                    d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
            elif kind == 1:
                d[rng.randrange(len(d))] = rng.randrange(256)
            elif kind == 2:
                d = d[: rng.randrange(len(d))]
            else:
                pos = rng.randrange(len(d) + 1)
                d[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            try:
                got = read_layers(bytes(d))
            except BitstreamError:
                counts["rejected"] += 1
                continue
            assert _same(got, ref)
            counts["identical"] += 1
    assert sum(counts.values()) == 2100
    assert counts["rejected"] > 1900


def test_fuzz_structure_behind_valid_checksums(real_files):
    """Mutations with the checksum recomputed reach the field parsers and the AV1 decoder:
    they must raise BitstreamError or parse, never anything else."""
    rng = random.Random(7)
    outcomes = {"parsed": 0, "rejected": 0}
    for data in real_files:
        body = data[:-4]
        for _ in range(300):
            d = bytearray(body)
            pos = rng.randrange(len(d))
            if rng.random() < 0.5:
                d[pos] = rng.randrange(256)
            else:
                d = d[:pos]
            try:
                layers = read_layers(_recrc(bytes(d)))
            except BitstreamError:
                outcomes["rejected"] += 1
                continue
            assert layers.lowres is not None and layers.width >= 1
            outcomes["parsed"] += 1
    assert sum(outcomes.values()) == 900
