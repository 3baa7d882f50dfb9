"""Entropy coding, in one place (as CompressAI keeps its entropy models together).

    from codec.entropy import ArithmeticEncoder, ArithmeticDecoder   # frequency tables (TEXT)
    from codec.entropy import BinaryEncoder, BinaryDecoder, PROB_ONE  # adaptive bits (MAPS)

The modelling stays with each section (codec.textcoder.model, codec.maps.grid_coder); this
package only turns probabilities into the shortest exact byte strings and back. Why our own
coder rather than ``constriction``: docs/AIGI.md has the measurement.
"""

from codec.entropy.arith import (
    BINARY_PRECISION,
    PROB_BITS,
    PROB_ONE,
    TEXT_PRECISION,
    ArithmeticDecoder,
    ArithmeticEncoder,
    BinaryDecoder,
    BinaryEncoder,
)

__all__ = [
    "ArithmeticDecoder",
    "ArithmeticEncoder",
    "BinaryDecoder",
    "BinaryEncoder",
    "BINARY_PRECISION",
    "PROB_BITS",
    "PROB_ONE",
    "TEXT_PRECISION",
]
