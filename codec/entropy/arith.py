"""One exact arithmetic coder (Witten-Neal-Cleary) on Python integers, two front ends.

    symbols + frequencies ─▶ ArithmeticEncoder(precision=62) ─▶ bytes   (TEXT: text coder)
    bits + P(1) in 1/65536 ─▶ BinaryEncoder (precision=32)   ─▶ bytes   (MAPS: grid coder)

Both sections once had a coder of their own; they were the same interval arithmetic at two
register widths with two ways to end. Here the arithmetic is written once
(:class:`ArithmeticEncoder` / :class:`ArithmeticDecoder`), and a binary symbol is a
frequency pair out of 2^16, which gives the same split as the old binary coder
(``(range * (65536 - p1)) >> 16``), so every existing payload keeps its exact bytes.

Why not a general-purpose range coder: these payloads are a few dozen to a few hundred
bytes, and a coder that flushes 32-bit words spends more on its own framing than on the
maps. The end of a stream costs 0 to a few bits:
  * ``finish`` writes the shortest bit string whose zero-extension lies in the final
    interval; the decoder reads zeros past the end of its data;
  * ``pad="byte"`` (text) pads that string with zeros to a whole byte, and the strict
    decoder checks that the data is exactly what the encoder would have written for the
    symbols it decoded, length included, so appended bytes and truncations are refused;
  * ``pad="strip"`` (maps) also drops trailing zero bits, so no payload ends in a zero
    byte; the grid coder re-encodes what it decoded to refuse damaged input.

Every quantity is an integer: the bits are the same on every machine and Python version.
"""

from __future__ import annotations

import numpy as np

from codec.errors import BitstreamError

TEXT_PRECISION = 62
BINARY_PRECISION = 32
PROB_BITS = 16
PROB_ONE = 1 << PROB_BITS


def _termination(low: int, high: int, pending: int, precision: int) -> tuple[int, int]:
    """(t, v): the fewest top bits t of a ``precision``-bit value v, zero below, in [low, high]."""
    t = 1 if pending else 0
    while True:
        shift = precision - t
        v = ((low + (1 << shift) - 1) >> shift) << shift
        if v <= high:
            return t, v
        t += 1


def _pack(bits: list[int]) -> bytes:
    return np.packbits(np.array(bits, dtype=np.uint8)).tobytes() if bits else b""


class ArithmeticEncoder:
    """Code symbols given as [cum_low, cum_low + freq) of [0, total)."""

    def __init__(self, precision: int = TEXT_PRECISION, pad: str = "byte") -> None:
        if pad not in ("byte", "strip"):
            raise ValueError(f"pad must be 'byte' or 'strip', not {pad!r}")
        self.precision = precision
        self.top = (1 << precision) - 1
        self.half = 1 << (precision - 1)
        self.quarter = 1 << (precision - 2)
        # totals stay far below the narrowest interval after renormalisation (2^(precision-2))
        self.max_total = 1 << (precision - 14)
        self.pad = pad
        self.low = 0
        self.high = self.top
        self.pending = 0
        self.bits: list[int] = []
        self.done = False

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        if self.pending:
            self.bits.extend([1 - bit] * self.pending)
            self.pending = 0

    def encode(self, cum_low: int, freq: int, total: int) -> None:
        if not (0 <= cum_low and freq > 0 and cum_low + freq <= total <= self.max_total):
            raise ValueError(f"bad frequencies {cum_low}+{freq}/{total}")
        if self.done:
            raise RuntimeError("encoder already finished")
        low, high, half, quarter = self.low, self.high, self.half, self.quarter
        r = high - low + 1
        high = low + r * (cum_low + freq) // total - 1
        low = low + r * cum_low // total
        while True:
            if high < half:
                self._emit(0)
            elif low >= half:
                self._emit(1)
                low -= half
                high -= half
            elif low >= quarter and high < half + quarter:
                self.pending += 1
                low -= quarter
                high -= quarter
            else:
                break
            low <<= 1
            high = (high << 1) | 1
        self.low, self.high = low, high

    def encode_uniform(self, value: int, nbits: int) -> None:
        """``nbits`` of ``value``, most significant first, each at probability 1/2."""
        if not 0 <= value < (1 << nbits):
            raise ValueError(f"{value} does not fit in {nbits} bits")
        for i in range(nbits - 1, -1, -1):
            self.encode((value >> i) & 1, 1, 2)

    def finish(self) -> bytes:
        if self.done:
            raise RuntimeError("encoder already finished")
        self.done = True
        t, v = _termination(self.low, self.high, self.pending, self.precision)
        for i in range(t):
            self._emit((v >> (self.precision - 1 - i)) & 1)
        bits = self.bits
        if self.pad == "strip":
            while bits and bits[-1] == 0:
                bits.pop()
        return _pack(bits)


class ArithmeticDecoder:
    """Mirror of :class:`ArithmeticEncoder`; reads zero bits past the end of ``data``.

    ``strict`` (the text coder): a stream that runs out, or data that is not exactly the
    encoder's output, raises BitstreamError naming ``what``. Not strict (the grid coder):
    any bytes decode to some symbols, and the caller checks them itself.
    """

    def __init__(
        self, data: bytes, precision: int = TEXT_PRECISION, strict: bool = True, what: str = "text payload"
    ) -> None:
        self.precision = precision
        self.top = (1 << precision) - 1
        self.half = 1 << (precision - 1)
        self.quarter = 1 << (precision - 2)
        self.strict = strict
        self.what = what
        self.nbits = len(data) * 8
        self.stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist() if data else []
        self.low = 0
        self.high = self.top
        self.pending = 0
        self.shifts = 0
        self.pos = 0
        value = 0
        for _ in range(precision):
            value = (value << 1) | self._bit()
        self.value = value

    def _bit(self) -> int:
        p = self.pos
        self.pos = p + 1
        return self.stream[p] if p < self.nbits else 0

    def target(self, total: int) -> int:
        """The cumulative frequency that the next symbol's interval contains."""
        r = self.high - self.low + 1
        t = ((self.value - self.low + 1) * total - 1) // r
        if not 0 <= t < total:
            raise BitstreamError(f"{self.what} is corrupt (arithmetic decoder out of range)")
        return t

    def consume(self, cum_low: int, freq: int, total: int) -> None:
        low, high, value, half, quarter = self.low, self.high, self.value, self.half, self.quarter
        r = high - low + 1
        high = low + r * (cum_low + freq) // total - 1
        low = low + r * cum_low // total
        while True:
            if high < half:
                self.pending = 0
            elif low >= half:
                low -= half
                high -= half
                value -= half
                self.pending = 0
            elif low >= quarter and high < half + quarter:
                self.pending += 1
                low -= quarter
                high -= quarter
                value -= quarter
            else:
                break
            low <<= 1
            high = (high << 1) | 1
            value = (value << 1) | self._bit()
            self.shifts += 1
        self.low, self.high, self.value = low, high, value
        if self.strict and self.shifts > self.nbits:
            # a complete stream ends within its data: this one has run out
            raise BitstreamError(f"{self.what} is truncated")

    def decode_binary(self, freq0: int, total: int) -> int:
        bit = 0 if self.target(total) < freq0 else 1
        if bit:
            self.consume(freq0, total - freq0, total)
        else:
            self.consume(0, freq0, total)
        return bit

    def decode_uniform(self, nbits: int) -> int:
        v = 0
        for _ in range(nbits):
            v = (v << 1) | self.decode_binary(1, 2)
        return v

    def finish(self) -> None:
        """Raise unless the data is exactly the encoder's byte-padded output for what was decoded."""
        t, v = _termination(self.low, self.high, self.pending, self.precision)
        n_bits = self.shifts + t
        if (n_bits + 7) // 8 != self.nbits // 8:
            if (n_bits + 7) // 8 > self.nbits // 8:
                raise BitstreamError(f"{self.what} is truncated")
            raise BitstreamError(f"{self.what} has trailing bytes after its end")
        if self.value != v or any(self.stream[self.pos :]):
            raise BitstreamError(f"{self.what} is corrupt (bad termination)")


def _check_p1(p1: int) -> None:
    if not 0 < p1 < PROB_ONE:
        raise ValueError(f"probability {p1} outside [1, {PROB_ONE - 1}]")


class BinaryEncoder:
    """Bits with a probability of a 1 in units of 1/65536 (in [1, 65535]); callers model.

    A bit is the symbol 0 = [0, 65536 - p1) or 1 = [65536 - p1, 65536) of 2^16, coded at
    32-bit precision: after renormalisation the range exceeds 2^30, so both halves are at
    least 2^14 wide for any allowed p1, and neither is ever empty.
    """

    def __init__(self) -> None:
        self._enc = ArithmeticEncoder(BINARY_PRECISION, pad="strip")

    def encode(self, bit: int, p1: int) -> None:
        _check_p1(p1)
        zero = PROB_ONE - p1
        if bit:
            self._enc.encode(zero, p1, PROB_ONE)
        else:
            self._enc.encode(0, zero, PROB_ONE)

    def encode_raw(self, value: int, nbits: int) -> None:
        """``nbits`` of ``value``, most significant first, each at probability 1/2."""
        if not 0 <= value < (1 << nbits):
            raise ValueError(f"{value} does not fit in {nbits} bits")
        for i in range(nbits - 1, -1, -1):
            self.encode((value >> i) & 1, PROB_ONE // 2)

    def finish(self) -> bytes:
        return self._enc.finish()


class BinaryDecoder:
    """Mirror of :class:`BinaryEncoder`. Any bytes decode to some bits without error, so
    callers that must refuse damaged input re-encode what they decoded and compare."""

    def __init__(self, data: bytes) -> None:
        self._dec = ArithmeticDecoder(data, BINARY_PRECISION, strict=False, what="binary payload")

    def decode(self, p1: int) -> int:
        _check_p1(p1)
        return self._dec.decode_binary(PROB_ONE - p1, PROB_ONE)

    def decode_raw(self, nbits: int) -> int:
        value = 0
        for _ in range(nbits):
            value = (value << 1) | self.decode(PROB_ONE // 2)
        return value
