"""Lossless text coder for MISC descriptions (the semantic layer's text section).

    from codec.textcoder import compress, decompress, MODEL_NAME
    data = compress(description)        # bytes, no length prefix
    description == decompress(data)     # exact, any Unicode

A character model mixed with a word model (see model.py), driving an exact integer
arithmetic coder (codec.entropy); tables built by ``python -m codec.textcoder.build``.
"""

from codec.textcoder.coder import MAX_CHARS, MAX_ITEMS, compress, decompress

MODEL_NAME = "text/misc-text-en-1"

__all__ = ["compress", "decompress", "MODEL_NAME", "MAX_CHARS", "MAX_ITEMS"]
