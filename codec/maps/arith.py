"""A small exact binary arithmetic coder, integers only.

Why our own: a MAPS payload is a few dozen bits, so a general-purpose range coder that
flushes 32-bit words would spend more on its own termination than on the maps. This
coder works bit by bit (Witten–Neal–Cleary style, 32-bit registers, "bits to follow"
for the straddling case) and ends with at most two significant bits plus the pending
ones; the decoder reads zeros past the end, so trailing zero bytes are dropped.

Everything is Python integers: no floating point touches a probability or an interval,
so a payload decodes identically on every machine and every Python version.

Probabilities are 16-bit: ``p1`` is the chance of a 1 bit in units of 1/65536, and must
lie in [1, 65535]; callers own the modelling (see ``grid_coder``).
"""

from __future__ import annotations

PROB_BITS = 16
PROB_ONE = 1 << PROB_BITS

_PRECISION = 32
_TOP = (1 << _PRECISION) - 1
_HALF = 1 << (_PRECISION - 1)
_QUARTER = 1 << (_PRECISION - 2)
_THREE_QUARTERS = _HALF + _QUARTER


def _split(low: int, high: int, p1: int) -> int:
    """Size of the 0-subinterval of [low, high] when a 1 has probability p1/65536.

    The interval always spans more than a quarter of 2**32 after renormalisation, so
    both subintervals are at least 2**14 wide for any p1 in [1, 65535]: neither is empty.
    """
    if not 0 < p1 < PROB_ONE:
        raise ValueError(f"probability {p1} outside [1, {PROB_ONE - 1}]")
    return ((high - low + 1) * (PROB_ONE - p1)) >> PROB_BITS


class BinaryEncoder:
    """Encode bits with given probabilities; ``finish()`` returns the shortest payload."""

    def __init__(self) -> None:
        self._low = 0
        self._high = _TOP
        self._pending = 0
        self._bits: list[int] = []
        self._done = False

    def _emit(self, bit: int) -> None:
        self._bits.append(bit)
        if self._pending:
            self._bits.extend([bit ^ 1] * self._pending)
            self._pending = 0

    def encode(self, bit: int, p1: int) -> None:
        if self._done:
            raise RuntimeError("encoder already finished")
        r0 = _split(self._low, self._high, p1)
        if bit:
            self._low += r0
        else:
            self._high = self._low + r0 - 1
        while True:
            if self._high < _HALF:
                self._emit(0)
            elif self._low >= _HALF:
                self._emit(1)
                self._low -= _HALF
                self._high -= _HALF
            elif self._low >= _QUARTER and self._high < _THREE_QUARTERS:
                self._pending += 1
                self._low -= _QUARTER
                self._high -= _QUARTER
            else:
                break
            self._low <<= 1
            self._high = (self._high << 1) | 1

    def encode_raw(self, value: int, nbits: int) -> None:
        """``nbits`` of ``value``, most significant first, each at probability 1/2."""
        if not 0 <= value < (1 << nbits):
            raise ValueError(f"{value} does not fit in {nbits} bits")
        for i in range(nbits - 1, -1, -1):
            self.encode((value >> i) & 1, PROB_ONE // 2)

    def finish(self) -> bytes:
        """Pick the value in [low, high] with the fewest significant bits, then pack.

        After renormalisation the interval contains a multiple of 2**30, so at most two
        bits (plus pending ones) identify it; zeros after them are implicit.
        """
        if self._done:
            raise RuntimeError("encoder already finished")
        self._done = True
        for k in range(1, _PRECISION + 1):
            step = 1 << (_PRECISION - k)
            v = -(-self._low // step) * step  # smallest multiple of step >= low
            if v <= self._high:
                break
        bits = [(v >> (_PRECISION - 1 - i)) & 1 for i in range(k)]
        self._emit(bits[0])
        self._bits.extend(bits[1:])
        while self._bits and self._bits[-1] == 0:
            self._bits.pop()
        out = bytearray((len(self._bits) + 7) // 8)
        for i, b in enumerate(self._bits):
            if b:
                out[i >> 3] |= 0x80 >> (i & 7)
        return bytes(out)


class BinaryDecoder:
    """Mirror of ``BinaryEncoder``; reads zero bits past the end of ``data``.

    Any byte string decodes to *some* bit sequence without error, so callers that need
    to reject damaged input re-encode what they decoded and compare (see grid_coder).
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._nbits = len(data) * 8
        self._pos = 0
        self._low = 0
        self._high = _TOP
        self._value = 0
        for _ in range(_PRECISION):
            self._value = (self._value << 1) | self._next_bit()

    def _next_bit(self) -> int:
        pos = self._pos
        self._pos += 1
        if pos >= self._nbits:
            return 0
        return (self._data[pos >> 3] >> (7 - (pos & 7))) & 1

    def decode(self, p1: int) -> int:
        r0 = _split(self._low, self._high, p1)
        if self._value - self._low >= r0:
            bit = 1
            self._low += r0
        else:
            bit = 0
            self._high = self._low + r0 - 1
        while True:
            if self._high < _HALF:
                pass
            elif self._low >= _HALF:
                self._low -= _HALF
                self._high -= _HALF
                self._value -= _HALF
            elif self._low >= _QUARTER and self._high < _THREE_QUARTERS:
                self._low -= _QUARTER
                self._high -= _QUARTER
                self._value -= _QUARTER
            else:
                break
            self._low <<= 1
            self._high = (self._high << 1) | 1
            self._value = (self._value << 1) | self._next_bit()
        return bit

    def decode_raw(self, nbits: int) -> int:
        value = 0
        for _ in range(nbits):
            value = (value << 1) | self.decode(PROB_ONE // 2)
        return value
