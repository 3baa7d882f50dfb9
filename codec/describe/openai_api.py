"""Describer over an OpenAI-compatible chat-completions endpoint (GPT-4o/GPT-4V, or a local
vLLM / Ollama / LM Studio / llama.cpp server).

    image ─▶ RGB, longest side ≤ image_max_side ─▶ JPEG ─▶ base64 data URL
          ─▶ POST {base_url}/chat/completions  (system + question + image, JSON mode)
          ─▶ choices[0].message.content ─▶ parse_description ─▶ Description

MISC used GPT-4V through this same protocol. Many servers speak it with small
differences, so the client adapts instead of failing: a server that rejects
``response_format`` (JSON mode) with a 400 is asked again without it, and so is one that
wants ``max_completion_tokens`` instead of ``max_tokens`` or refuses ``temperature``;
such adaptations are remembered for the next images. Transient failures (timeouts,
refused connections, 429, 5xx) are retried with exponential back-off, honouring a 429's
``Retry-After``; after ``max_retries`` retries a ``DescriberError`` says what happened.

Configuration, arguments first, then environment:
``MISC_VLM_BASE_URL`` (default https://api.openai.com/v1), ``MISC_VLM_MODEL`` (default
gpt-4o), ``MISC_VLM_API_KEY`` falling back to ``OPENAI_API_KEY``. A key is required for
the default (OpenAI) URL; a local server usually needs none.
"""

from __future__ import annotations

import base64
import email.utils
import io
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests
from PIL import Image

from codec.describe.base import fit_image
from codec.describe.config import SYSTEM_PROMPT, DescribeConfig, build_prompt
from codec.describe.parse import parse_description
from codec.errors import DescriberError, ModelUnavailableError
from codec.records import Description

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o"
ENV_BASE_URL = "MISC_VLM_BASE_URL"
ENV_MODEL = "MISC_VLM_MODEL"
ENV_API_KEY = "MISC_VLM_API_KEY"
ENV_OPENAI_KEY = "OPENAI_API_KEY"

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


def resolve_settings(
    model: str | None = None, base_url: str | None = None, api_key: str | None = None
) -> tuple[str, str, str | None]:
    """(model, base_url, api_key) from the arguments, else the environment, else defaults."""
    model = model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
    base_url = (base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
    api_key = api_key or os.environ.get(ENV_API_KEY) or os.environ.get(ENV_OPENAI_KEY) or None
    return model, base_url, api_key


def image_data_url(image: Image.Image, max_side: int = 1024, fmt: str = "jpeg", quality: int = 90) -> str:
    """The image as a ``data:`` URL, shrunk so its longest side is at most ``max_side``."""
    img = fit_image(image, max_side)
    buf = io.BytesIO()
    if fmt.lower() in ("jpeg", "jpg"):
        img.save(buf, format="JPEG", quality=quality)
        mime = "image/jpeg"
    else:
        img.save(buf, format="PNG")
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason or ""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)
    if err:
        return str(err)
    return json.dumps(data)[:300]


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


class OpenAIDescriber:
    """Describes an image with a vision model behind an OpenAI-compatible API.

    ``sleep`` is injectable so that tests can check the back-off schedule without
    waiting it out.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        config: DescribeConfig | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        json_mode: bool = True,
        max_tokens: int | None = None,
        temperature: float | None = 0.2,
        image_max_side: int = 1024,
        image_detail: str | None = "auto",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model, self.base_url, self.api_key = resolve_settings(model, base_url, api_key)
        if not self.api_key and self.base_url == DEFAULT_BASE_URL:
            raise ModelUnavailableError(
                f"openai describer: no API key for model {self.model!r} at {self.base_url}. "
                f"Set {ENV_API_KEY} (or {ENV_OPENAI_KEY}), or set {ENV_BASE_URL} to a local "
                "OpenAI-compatible server (vLLM, Ollama, LM Studio), e.g. http://localhost:11434/v1."
            )
        self.config = config or DescribeConfig()
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.json_mode = json_mode
        self.max_tokens = max_tokens or max(300, self.config.token_budget())
        self.temperature = temperature
        self.image_max_side = image_max_side
        self.image_detail = image_detail
        self.session = session or requests.Session()
        self._sleep = sleep
        self._token_param = "max_tokens"
        self.last_raw_text: str | None = None  # the model's last answer, before parsing
        self.name = f"openai:{self.model}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def __repr__(self) -> str:
        return f"OpenAIDescriber(model={self.model!r}, base_url={self.base_url!r})"

    # ── request ────────────────────────────────────────────────────────────────────────

    def build_request(self, image: Image.Image) -> dict[str, Any]:
        image_url: dict[str, Any] = {"url": image_data_url(image, self.image_max_side)}
        if self.image_detail:
            image_url["detail"] = self.image_detail
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": build_prompt(self.config)},
                        {"type": "image_url", "image_url": image_url},
                    ],
                },
            ],
            self._token_param: self.max_tokens,
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "misc-codec",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _adapt_to_400(self, body: dict[str, Any], message: str) -> bool:
        """Drop or rename what a server refused; True if the request is worth sending again."""
        msg = message.lower()
        if "max_tokens" in body and "max_tokens" in msg and "max_completion_tokens" in msg:
            body["max_completion_tokens"] = body.pop("max_tokens")
            self._token_param = "max_completion_tokens"
            return True
        if "temperature" in body and "temperature" in msg:
            body.pop("temperature")
            self.temperature = None
            return True
        if "response_format" in body:
            # JSON mode is the one optional feature we ask for: a 400 that names it, or
            # that names nothing else we sent, is most likely about it.
            names_it = "response_format" in msg or "json" in msg
            names_other = any(w in msg for w in ("image", "model", "messages", "content", "token"))
            if names_it or not names_other:
                body.pop("response_format")
                self.json_mode = False
                return True
        return False

    def complete(self, body: dict[str, Any]) -> str:
        """POST the request, with retries and adaptations; the answer's text."""
        failures = 0
        last = ""
        while True:
            retry_after: float | None = None
            try:
                response = self.session.post(
                    self.url, json=body, headers=self._headers(), timeout=self.timeout
                )
            except requests.Timeout:
                last = f"no answer within {self.timeout:g} s"
            except requests.ConnectionError as exc:
                last = f"could not connect to {self.base_url} ({type(exc).__name__})"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        data = response.json()
                        message = data["choices"][0]["message"]
                    except (ValueError, KeyError, IndexError, TypeError):
                        last = f"unreadable 200 answer: {response.text[:200]!r}"
                    else:
                        text = _content_text(message)
                        if not text.strip() and message.get("refusal"):
                            raise DescriberError(f"{self.name}: the model refused: {message['refusal']}")
                        return text
                elif status in (400, 422) and self._adapt_to_400(body, _error_message(response)):
                    continue  # an adaptation, not a failure
                elif status in (401, 403):
                    raise DescriberError(
                        f"{self.name}: {self.base_url} refused the credentials ({status}: "
                        f"{_error_message(response)}). Check {ENV_API_KEY} / {ENV_OPENAI_KEY}."
                    )
                elif status == 404:
                    raise DescriberError(
                        f"{self.name}: {self.url} answered 404 ({_error_message(response)}). "
                        f"Check {ENV_BASE_URL} (it should end in /v1) and the model name {ENV_MODEL}."
                    )
                elif status in _RETRY_STATUS:
                    last = f"HTTP {status}: {_error_message(response)}"
                    if status in (429, 503):
                        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                        ms = _retry_after_seconds(response.headers.get("retry-after-ms"))
                        if ms is not None:  # OpenAI's finer-grained variant
                            retry_after = ms / 1000.0
                else:
                    raise DescriberError(
                        f"{self.name}: HTTP {status} from {self.url}: {_error_message(response)}"
                    )
            failures += 1
            if failures > self.max_retries:
                raise DescriberError(
                    f"{self.name}: gave up after {failures} attempts at {self.url}; last error: {last}"
                )
            if retry_after is not None:
                delay = min(retry_after, self.max_retry_after)
            else:
                delay = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
            self._sleep(delay)

    # ── describe ───────────────────────────────────────────────────────────────────────

    def describe(self, image: Image.Image) -> Description:
        text = self.complete(self.build_request(image))
        self.last_raw_text = text
        description = parse_description(text, self.config)
        if description.is_empty():
            raise DescriberError(f"{self.name}: the answer held no description: {text[:200]!r}")
        return description
