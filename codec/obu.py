"""The pixel layer's compact form: the AV1 sequence header rebuilt, not stored.

SVT-AV1's intra frame comes as two OBUs: a sequence header (OBU header, size, 9-11
bytes of fields) and the frame (OBU header, size, payload). At 0.01 bpp the whole pixel
layer is ~300 bytes, so those ~15 bytes of framing are ~5 % of it, and at 0.005 bpp ~10 %.
Every field of that sequence header is fixed by how codec.pixel drives SVT-AV1 except
the frame size and three choices SVT-AV1 makes from it (level, 128×128 superblocks,
loop restoration), so the compact form stores only those, and the frame OBU's payload:

    raw:      0x0A size  sequence_header(...)   0x32 size  frame
    compact:  mark       varint(w) varint(h)    frame
              mark = 0x80 | sb128 << 6 | restoration << 5 | seq_level_idx (5 bits)

``mark`` has the OBU header's forbidden bit set, so no raw OBU stream starts like a
compact one. The encoder writes the compact form only when the header it rebuilds is
byte for byte SVT-AV1's (``compact`` returns None otherwise and the raw OBUs are kept);
the decoder rebuilds the two OBUs (``expand``) and hands them to dav1d. The file says
which form a PIXEL section holds by its type (codec.bitstream: PIXEL_AV1 raw,
PIXEL_AV1_COMPACT compact). Syntax: AV1 specification, section 5.5 (sequence header OBU).
"""

from __future__ import annotations

from .bitstream import MAX_SIDE, Reader, varint
from .errors import BitstreamError

SEQUENCE_HEADER_OBU = 0x0A  # obu_type 1, obu_has_size_field 1
FRAME_OBU = 0x32  # obu_type 6, obu_has_size_field 1
COMPACT_MARK = 0x80  # an OBU header's forbidden bit


class _Bits:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, n: int) -> None:
        self.bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def trailing(self) -> bytes:
        """trailing_bits(): a one, then zeros to the byte boundary."""
        self.bits.append(1)
        self.bits.extend([0] * (-len(self.bits) % 8))
        return bytes(
            int("".join(map(str, self.bits[i : i + 8])), 2) for i in range(0, len(self.bits), 8)
        )


def sequence_header(width: int, height: int, *, level: int, sb128: int, restoration: int) -> bytes:
    """The sequence header fields SVT-AV1 writes for codec.pixel's key frame (profile 0,
    8-bit 4:2:0, one operating point, no timing info), for this frame size and choices."""
    if not (1 <= width <= 1 << 16 and 1 <= height <= 1 << 16 and 0 <= level < 32):
        raise ValueError(f"no sequence header for {width}x{height} at level {level}")
    b = _Bits()
    b.put(0, 3)  # seq_profile
    b.put(0, 1)  # still_picture
    b.put(0, 1)  # reduced_still_picture_header
    b.put(0, 1)  # timing_info_present_flag
    b.put(0, 1)  # initial_display_delay_present_flag
    b.put(0, 5)  # operating_points_cnt_minus_1
    b.put(0, 12)  # operating_point_idc[0]
    b.put(level, 5)  # seq_level_idx[0]
    if level > 7:
        b.put(0, 1)  # seq_tier[0]
    wbits, hbits = max(1, (width - 1).bit_length()), max(1, (height - 1).bit_length())
    b.put(wbits - 1, 4)  # frame_width_bits_minus_1
    b.put(hbits - 1, 4)
    b.put(width - 1, wbits)  # max_frame_width_minus_1
    b.put(height - 1, hbits)
    b.put(0, 1)  # frame_id_numbers_present_flag
    b.put(sb128, 1)  # use_128x128_superblock
    for flag in (1, 1, 1, 0, 1, 0, 1):
        # enable_filter_intra, enable_intra_edge_filter, enable_interintra_compound,
        # enable_masked_compound, enable_warped_motion, enable_dual_filter, enable_order_hint
        b.put(flag, 1)
    b.put(0, 1)  # enable_jnt_comp
    b.put(1, 1)  # enable_ref_frame_mvs
    b.put(1, 1)  # seq_choose_screen_content_tools (seq_force_screen_content_tools = 2)
    b.put(1, 1)  # seq_choose_integer_mv
    b.put(6, 3)  # order_hint_bits_minus_1
    b.put(0, 1)  # enable_superres
    b.put(1, 1)  # enable_cdef
    b.put(restoration, 1)  # enable_restoration
    b.put(0, 1)  # color_config: high_bitdepth
    b.put(0, 1)  # mono_chrome
    b.put(0, 1)  # color_description_present_flag
    b.put(0, 1)  # color_range
    b.put(0, 2)  # chroma_sample_position
    b.put(0, 1)  # separate_uv_delta_q
    b.put(0, 1)  # film_grain_params_present
    return b.trailing()


def _obus(raw: bytes) -> list[tuple[int, bytes]]:
    """(OBU header byte, payload) of each OBU of a stream whose OBUs all carry a size."""
    r, out = Reader(raw, "pixel layer"), []
    while r.remaining:
        head = r.byte()
        if head & 0x85 != 0 or not head & 0x02:  # forbidden bit, extension, reserved bit; size field
            raise BitstreamError(f"OBU header 0x{head:02x} is not one the compact form knows")
        out.append((head, r.take(r.varint(len(raw), "OBU size", max_bytes=8))))
    return out


def compact(raw: bytes, size: tuple[int, int]) -> bytes | None:
    """The compact form of SVT-AV1's two OBUs for a ``size`` frame, or None when its
    sequence header is not one ``sequence_header`` rebuilds exactly (keep ``raw`` then)."""
    try:
        obus = _obus(raw)
    except BitstreamError:
        return None
    if [h for h, _ in obus] != [SEQUENCE_HEADER_OBU, FRAME_OBU] or len(obus[0][1]) < 4:
        return None
    header, frame = obus[0][1], obus[1][1]
    level = header[3] >> 3  # seq_level_idx sits at bits 24-28 (fixed fields before it)
    w, h = size
    for sb128 in (0, 1):
        for restoration in (1, 0):
            if sequence_header(w, h, level=level, sb128=sb128, restoration=restoration) == header:
                mark = COMPACT_MARK | sb128 << 6 | restoration << 5 | level
                return bytes([mark]) + varint(w) + varint(h) + frame
    return None


def is_compact(payload: bytes) -> bool:
    return bool(payload) and bool(payload[0] & COMPACT_MARK)


def expand(payload: bytes, max_pixels: int | None = None) -> tuple[bytes, tuple[int, int]]:
    """The raw OBUs of a compact payload, and the frame size it names (checked against
    ``max_pixels`` before anything is built: BitstreamError)."""
    if not is_compact(payload):
        raise BitstreamError("compact pixel section does not start with its mark byte")
    r = Reader(payload, "compact pixel section")
    mark = r.byte()
    w, h = r.varint(MAX_SIDE, "pixel layer width"), r.varint(MAX_SIDE, "pixel layer height")
    if w < 1 or h < 1:
        raise BitstreamError(f"compact pixel section names a {w}x{h} frame")
    if max_pixels is not None and w * h > max_pixels:
        raise BitstreamError(f"pixel layer {w}x{h} is larger than the picture's {max_pixels} pixels")
    frame = r.take(r.remaining)
    if not frame:
        raise BitstreamError("compact pixel section has no frame")
    header = sequence_header(w, h, level=mark & 0x1F, sb128=mark >> 6 & 1, restoration=mark >> 5 & 1)
    raw = bytes([SEQUENCE_HEADER_OBU]) + varint(len(header)) + header + bytes([FRAME_OBU]) + varint(len(frame)) + frame
    return raw, (w, h)


def with_raw_pixels(data: bytes) -> bytes:
    """A .misc file with its compact pixel section rewritten to the raw form (PIXEL_AV1),
    as files written before the compact form were: for tests and the fuzzer's seeds."""
    from . import bitstream as bs

    f = bs.unpack(data)
    sections = [
        bs.Section(bs.SectionType.PIXEL_AV1, expand(s.payload)[0]) if s.type == bs.SectionType.PIXEL_AV1_COMPACT else s
        for s in f.sections
    ]
    f.sections = sections
    return bs.pack(f)
