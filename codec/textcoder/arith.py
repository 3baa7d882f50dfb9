"""A small exact binary arithmetic coder (Witten-Neal-Cleary) on Python integers.

Every quantity is an integer, so the bits are the same on every machine. Two details keep
the per-text overhead near zero:
  * termination writes the shortest bit string whose zero-extension lies in the final
    interval (0 to a few bits, not a 32-bit flush), padded with zeros to a byte; the
    decoder reads zeros past the end of its data;
  * the decoder checks that the data is exactly what the encoder would have written for the
    symbols it decoded, length included (``finish``), so appended bytes and truncations are
    caught: a truncated stream would have to be, by chance, the complete canonical code of
    another message.
"""

from __future__ import annotations

import numpy as np

from codec.errors import BitstreamError

PRECISION = 62
TOP = (1 << PRECISION) - 1
HALF = 1 << (PRECISION - 1)
QUARTER = 1 << (PRECISION - 2)
MAX_TOTAL = 1 << 48  # frequency totals must stay far below the narrowest interval (2^60)


def _termination(low: int, high: int, pending: int) -> tuple[int, int]:
    """(t, v): the fewest top bits t of a P-bit value v, zero below, with low <= v <= high."""
    t = 1 if pending else 0
    while True:
        shift = PRECISION - t
        v = ((low + (1 << shift) - 1) >> shift) << shift
        if v <= high:
            return t, v
        t += 1


class ArithmeticEncoder:
    def __init__(self) -> None:
        self.low = 0
        self.high = TOP
        self.pending = 0
        self.bits: list[int] = []

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        if self.pending:
            self.bits.extend([1 - bit] * self.pending)
            self.pending = 0

    def encode(self, cum_low: int, freq: int, total: int) -> None:
        """Code the symbol occupying [cum_low, cum_low + freq) of [0, total)."""
        if not (0 <= cum_low and freq > 0 and cum_low + freq <= total <= MAX_TOTAL):
            raise ValueError(f"bad frequencies {cum_low}+{freq}/{total}")
        low, high = self.low, self.high
        r = high - low + 1
        high = low + r * (cum_low + freq) // total - 1
        low = low + r * cum_low // total
        while True:
            if high < HALF:
                self._emit(0)
            elif low >= HALF:
                self._emit(1)
                low -= HALF
                high -= HALF
            elif low >= QUARTER and high < HALF + QUARTER:
                self.pending += 1
                low -= QUARTER
                high -= QUARTER
            else:
                break
            low <<= 1
            high = (high << 1) | 1
        self.low, self.high = low, high

    def encode_uniform(self, value: int, nbits: int) -> None:
        for i in range(nbits - 1, -1, -1):
            self.encode((value >> i) & 1, 1, 2)

    def finish(self) -> bytes:
        t, v = _termination(self.low, self.high, self.pending)
        for i in range(t):
            self._emit((v >> (PRECISION - 1 - i)) & 1)
        bits = self.bits
        if not bits:
            return b""
        return np.packbits(np.array(bits, dtype=np.uint8)).tobytes()


class ArithmeticDecoder:
    def __init__(self, data: bytes) -> None:
        self.nbits = len(data) * 8
        self.stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist() if data else []
        self.low = 0
        self.high = TOP
        self.pending = 0
        self.shifts = 0
        self.pos = 0
        value = 0
        for _ in range(PRECISION):
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
            raise BitstreamError("text payload is corrupt (arithmetic decoder out of range)")
        return t

    def consume(self, cum_low: int, freq: int, total: int) -> None:
        low, high, value = self.low, self.high, self.value
        r = high - low + 1
        high = low + r * (cum_low + freq) // total - 1
        low = low + r * cum_low // total
        while True:
            if high < HALF:
                self.pending = 0
            elif low >= HALF:
                low -= HALF
                high -= HALF
                value -= HALF
                self.pending = 0
            elif low >= QUARTER and high < HALF + QUARTER:
                self.pending += 1
                low -= QUARTER
                high -= QUARTER
                value -= QUARTER
            else:
                break
            low <<= 1
            high = (high << 1) | 1
            value = (value << 1) | self._bit()
            self.shifts += 1
        self.low, self.high, self.value = low, high, value
        if self.shifts > self.nbits:
            # a complete stream ends within its data: this one has run out
            raise BitstreamError("text payload is truncated")

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
        """Raise unless the data is exactly the encoder's output for what was decoded."""
        t, v = _termination(self.low, self.high, self.pending)
        n_bits = self.shifts + t
        if (n_bits + 7) // 8 != self.nbits // 8:
            if (n_bits + 7) // 8 > self.nbits // 8:
                raise BitstreamError("text payload is truncated")
            raise BitstreamError("text payload has trailing bytes after its end")
        if self.value != v or any(self.stream[self.pos :]):
            raise BitstreamError("text payload is corrupt (bad termination)")
