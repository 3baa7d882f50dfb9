"""Lossless text coder for MISC descriptions (the semantic layer's text section).

    from codec.textcoder import compress, decompress, MODEL_NAME, PROMPT_MODEL
    data = compress(description)        # bytes, no length prefix
    description == decompress(data)     # exact, any Unicode text (lone surrogates refused)
    compress(description, model=PROMPT_MODEL)   # tables trained for text-to-image prompts

A character model mixed with a word model (see model.py), driving an exact integer
arithmetic coder (codec.entropy); tables built by ``python -m codec.textcoder.build``.
"""

from codec.textcoder.coder import DEFAULT_MODEL, MAX_CHARS, MAX_ITEMS, compress, decompress
from codec.textcoder.tables import MODELS

MODEL_NAME = DEFAULT_MODEL  # descriptions written by a VLM or a person
PROMPT_MODEL = "text/misc-prompt-en-1"  # text-to-image prompts (comma lists, weights, LoRA tags)
TEXT_MODELS = tuple(MODELS)

__all__ = ["compress", "decompress", "MODEL_NAME", "PROMPT_MODEL", "TEXT_MODELS", "MAX_CHARS", "MAX_ITEMS"]
