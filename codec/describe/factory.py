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
MAX_HEADER_NAME = 64  # bytes of a model name written in full into a file (ids 16-31 cost one byte)


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


def header_name(describer: Any) -> str | None:
    """What the file's header says made the text: ``describe/<backend>:<model>``.

    The common ones have compact ids in codec.bitstream.KNOWN_MODELS (one byte); others
    are written in full, so a local directory is named by its last component only (no
    paths leak into files) and long names are cut to MAX_HEADER_NAME bytes.
    """
    name = str(getattr(describer, "name", "") or "")
    if not name or name == "none":
        return None
    kind, _, model = name.partition(":")
    if kind == "manual" or not model:
        return f"describe/{kind}"
    if kind == "hf" and (os.path.isdir(model) or model.startswith(("/", ".", "~"))):
        model = "local/" + os.path.basename(model.rstrip("/"))
    return f"describe/{kind}:{model}".encode()[:MAX_HEADER_NAME].decode("utf-8", "ignore")


def load_full_describer(config: DescribeConfig | None = None, progress: Any = None) -> Describer:
    """The full profile's describer, ready to run (codec.profile).

    The OpenAI-compatible API when a key or a local server is configured; else the
    transformers VLM (MISC_VLM_HF_MODEL, default Qwen/Qwen2.5-VL-3B-Instruct), its files
    downloaded from the hub first when missing (progress to ``progress`` and the log),
    then loaded.
    """
    from codec.profile import FULL_MODELS, full_models

    _, base_url, api_key = resolve_settings()
    if api_key or base_url != DEFAULT_BASE_URL:
        return OpenAIDescriber(config=config)
    files = full_models()["vlm"]
    if files.repo_id == FULL_MODELS["vlm"].repo_id:  # a user's model: from_pretrained fetches it
        files.fetch(None if progress is None else lambda f, m: progress(0.9 * f, m))
    if progress is not None:
        progress(0.9, f"loading {files.repo_id}")
    describer = HFDescriber(files.repo_id, config).load()
    describer.random_weights = files.random_weights()
    return describer


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
            f"no model named: set {ENV_HF_MODEL} (its weights must be local, cached or downloadable), "
            "or MISC_PROFILE=full for the default VLM",
        )
    else:
        out["hf"] = (
            True,
            f"{hf_model} (weights needed: local directory, HF cache or hub access; loaded on first use)",
        )
    out["manual"] = (True, "a description typed by the user")
    out["none"] = (True, "no semantic layer")
    return out


__all__ = [
    "get_describer",
    "available_describers",
    "header_name",
    "load_full_describer",
    "DescribeConfig",
    "SPECS",
]
