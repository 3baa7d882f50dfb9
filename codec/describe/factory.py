"""Choosing a describer from a short spec string (CLI flag, demo dropdown, bench config).

"openai"        OpenAIDescriber (settings from MISC_VLM_* / OPENAI_API_KEY)
"openai:MODEL"  the same with another model name
"hf:MODEL"      HFDescriber for a transformers model name or local directory
"hf"            HFDescriber for MISC_VLM_HF_MODEL
"manual"        ManualDescriber(text=...)
"none"          no semantic layer
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from codec.describe.base import Describer, NoDescriber
from codec.describe.config import DescribeConfig
from codec.describe.hf import ENV_HF_MODEL, HFDescriber
from codec.describe.manual import ManualDescriber
from codec.describe.openai_api import (
    DEFAULT_BASE_URL,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_OPENAI_KEY,
    OpenAIDescriber,
    resolve_settings,
)
from codec.errors import DescriberError

SPECS = ("openai", "openai:MODEL", "hf:MODEL", "manual", "none")


def get_describer(spec: str, **kw: Any) -> Describer:
    """A describer for ``spec``; keyword arguments go to its constructor.

    ``config=DescribeConfig(...)`` is accepted by every backend; ``text=`` is required by
    "manual". Construction does no network or model I/O, except ``manual`` (parses the
    text). Raises ``DescriberError`` for an unknown spec and ``ModelUnavailableError``
    when the backend is not configured (no key, no model name).
    """
    spec = (spec or "none").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "openai":
        if arg:
            kw.setdefault("model", arg)
        return OpenAIDescriber(**kw)
    if kind == "hf":
        if arg:
            kw.setdefault("model", arg)
        return HFDescriber(**kw)
    if kind == "manual":
        text = kw.pop("text", None)
        return ManualDescriber(text if text is not None else arg, **kw)
    if kind == "none":
        return NoDescriber(config=kw.get("config"))
    raise DescriberError(f"unknown describer {spec!r}; use one of: {', '.join(SPECS)}")


def available_describers() -> dict[str, tuple[bool, str]]:
    """For the demo's status panel: which backends can run here, and why (not)."""
    out: dict[str, tuple[bool, str]] = {}
    model, base_url, api_key = resolve_settings()
    if api_key:
        out["openai"] = (True, f"{model} at {base_url} (API key set)")
    elif base_url != DEFAULT_BASE_URL:
        out["openai"] = (True, f"{model} at {base_url} (local server, no key)")
    else:
        out["openai"] = (
            False,
            f"no API key: set {ENV_API_KEY} or {ENV_OPENAI_KEY}, or {ENV_BASE_URL} to a local server",
        )
    hf_model = os.environ.get(ENV_HF_MODEL)
    if importlib.util.find_spec("transformers") is None:
        out["hf"] = (False, "transformers is not installed")
    elif not hf_model:
        out["hf"] = (
            False,
            f"no model named: set {ENV_HF_MODEL} (its weights must be local, cached or downloadable)",
        )
    else:
        out["hf"] = (
            True,
            f"{hf_model} (weights needed: local directory, HF cache or hub access; loaded on first use)",
        )
    out["manual"] = (True, "a description typed by the user")
    out["none"] = (True, "no semantic layer")
    return out


__all__ = ["get_describer", "available_describers", "DescribeConfig", "SPECS"]
