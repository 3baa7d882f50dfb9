"""Vision-language describers: an image in, MISC's semantic layer out.

image ─▶ describer (OpenAI-compatible API │ transformers VLM │ manual text │ none)
      ─▶ model answer (JSON, or whatever it chose to write)
      ─▶ parse_description (tolerant reader + word limits of DescribeConfig)
      ─▶ Description(items=[Item(name ≤ 3 words, detail ≤ 10 words)], overall ≈ 50 words)

from codec.describe import get_describer, DescribeConfig
d = get_describer("openai", config=DescribeConfig(max_items=3)).describe(image)
"""

from codec.describe.base import Describer, NoDescriber
from codec.describe.config import SYSTEM_PROMPT, DescribeConfig, build_prompt
from codec.describe.factory import (
    SPECS,
    available_describers,
    get_describer,
    header_name,
    load_full_describer,
)
from codec.describe.hf import HFDescriber
from codec.describe.manual import FORMAT_HELP, ManualDescriber
from codec.describe.openai_api import OpenAIDescriber
from codec.describe.parse import clean_text, enforce_limits, parse_description

__all__ = [
    "Describer",
    "DescribeConfig",
    "FORMAT_HELP",
    "HFDescriber",
    "ManualDescriber",
    "NoDescriber",
    "OpenAIDescriber",
    "SPECS",
    "SYSTEM_PROMPT",
    "available_describers",
    "build_prompt",
    "clean_text",
    "enforce_limits",
    "get_describer",
    "header_name",
    "load_full_describer",
    "parse_description",
]
