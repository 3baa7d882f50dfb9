"""OpenAIDescriber against a real HTTP server on loopback that speaks chat-completions.

``ChatServer`` is a small scripted server (http.server in a thread, port 0): each request
takes the next scripted reply (status, JSON or raw body, headers, delay), the last one
repeating; every request is recorded (path, headers, decoded JSON body) so the tests can
check what the client really sent. Other tests (e.g. a full encode) may import it.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from codec.describe import DescribeConfig, OpenAIDescriber, get_describer
from codec.errors import DescriberError, ModelUnavailableError

GOOD_JSON = json.dumps(
    {
        "items": [
            {"name": "red square", "detail": "centred on a blue field"},
            {"name": "blue background", "detail": "flat, even colour"},
        ],
        "overall": "A flat red square sits in the middle of a plain blue background.",
    }
)


@dataclass
class Reply:
    status: int = 200
    content: str | None = GOOD_JSON  # the assistant's text (wrapped in a completion)
    body: Any = None  # a raw body instead (dict → JSON, str → sent as is)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def completion(content: str, model: str = "test-vlm") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class ChatServer:
    """A scripted OpenAI-compatible endpoint on 127.0.0.1 (``url`` ends in /v1)."""

    def __init__(self, script: list[Reply] | None = None) -> None:
        self.script: list[Reply] = list(script or [Reply()])
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with server._lock:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = None
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "json": body})
                    reply = server.script[min(len(server.requests) - 1, len(server.script) - 1)]
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is not None:
                    payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                else:
                    model = body.get("model", "") if isinstance(body, dict) else ""
                    payload = json.dumps(completion(reply.content or "", model))
                data = payload.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as s:
        yield s


@pytest.fixture
def image() -> Image.Image:
    img = Image.new("RGB", (96, 64), (20, 40, 200))
    img.paste((220, 20, 20), (32, 16, 64, 48))
    return img


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MISC_VLM_API_KEY", "OPENAI_API_KEY", "MISC_VLM_BASE_URL", "MISC_VLM_MODEL"):
        monkeypatch.delenv(var, raising=False)


def make(server: ChatServer, sleeps: list[float] | None = None, **kw: Any) -> OpenAIDescriber:
    kw.setdefault("api_key", "test-key")
    kw.setdefault("model", "test-vlm")
    kw.setdefault("timeout", 5.0)
    return OpenAIDescriber(
        base_url=server.url, sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **kw
    )


# ── the good path ──────────────────────────────────────────────────────────────────────


def test_good_answer_and_what_the_request_carried(server: ChatServer, image: Image.Image) -> None:
    d = make(server, config=DescribeConfig(max_items=4)).describe(image)
    assert [(i.name, i.detail) for i in d.items] == [
        ("red square", "centred on a blue field"),
        ("blue background", "flat, even colour"),
    ]
    assert d.overall.startswith("A flat red square")

    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer test-key"
    body = req["json"]
    assert body["model"] == "test-vlm"
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_tokens"] >= 300
    system, user = body["messages"]
    assert system["role"] == "system"
    text_part, image_part = user["content"]
    assert text_part["type"] == "text" and "4 most important items" in text_part["text"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.format == "JPEG" and sent.size == (96, 64)
    r, g, b = sent.convert("RGB").getpixel((48, 32))
    assert r > 150 and b < 100  # it is our picture: the red square in the middle


def test_large_images_are_shrunk_before_upload(server: ChatServer) -> None:
    make(server, image_max_side=128).describe(Image.new("RGB", (1000, 500), "white"))
    url = server.requests[0]["json"]["messages"][1]["content"][1]["image_url"]["url"]
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (128, 64)


def test_settings_from_environment(
    server: ChatServer, image: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISC_VLM_BASE_URL", server.url + "/")
    monkeypatch.setenv("MISC_VLM_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    describer = get_describer("openai", sleep=lambda s: None)
    assert describer.name == "openai:env-model"
    describer.describe(image)
    req = server.requests[-1]
    assert req["json"]["model"] == "env-model"
    assert req["headers"]["Authorization"] == "Bearer sk-fallback"
    monkeypatch.setenv("MISC_VLM_API_KEY", "misc-key")  # takes precedence over OPENAI_API_KEY
    get_describer("openai").describe(image)
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer misc-key"


def test_local_server_without_key_sends_no_auth(server: ChatServer, image: Image.Image) -> None:
    describer = OpenAIDescriber(base_url=server.url, model="llava")
    describer.describe(image)
    assert "Authorization" not in server.requests[0]["headers"]


def test_no_key_for_the_default_url_is_a_clear_error() -> None:
    with pytest.raises(ModelUnavailableError) as err:
        OpenAIDescriber()
    msg = str(err.value)
    assert (
        "gpt-4o" in msg
        and "MISC_VLM_API_KEY" in msg
        and "OPENAI_API_KEY" in msg
        and "MISC_VLM_BASE_URL" in msg
    )


# ── imperfect answers ──────────────────────────────────────────────────────────────────

MALFORMED = {
    "code fence": f"```json\n{GOOD_JSON}\n```",
    "prose around": f"Here is the JSON you asked for:\n{GOOD_JSON}\nI hope this helps!",
    "trailing comma": GOOD_JSON[:-1] + ",}",
    "numbered list": (
        "1. **Red square**: centred on a blue field\n2. Blue background - flat, even colour\n\n"
        "A flat red square sits in the middle of a plain blue background."
    ),
    "headings": (
        "Items:\n- red square: centred on a blue field\n- blue background: flat, even colour\n"
        "Overall: A flat red square sits in the middle of a plain blue background."
    ),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_answers_are_read(kind: str, image: Image.Image) -> None:
    with ChatServer([Reply(content=MALFORMED[kind])]) as s:
        d = make(s).describe(image)
    assert [i.name.lower() for i in d.items] == ["red square", "blue background"]
    assert d.items[0].detail == "centred on a blue field"
    assert d.overall == "A flat red square sits in the middle of a plain blue background."


def test_overlong_answer_is_held_to_the_limits(image: Image.Image) -> None:
    answer = {
        "items": [
            {"name": f"item{k} with a long name", "detail": " ".join(["detail"] * 25)} for k in range(8)
        ],
        "overall": " ".join(["word"] * 150),
    }
    cfg = DescribeConfig(max_items=3, name_words=3, detail_words=10, overall_words=50)
    with ChatServer([Reply(content=json.dumps(answer))]) as s:
        d = make(s, config=cfg).describe(image)
    assert len(d.items) == 3
    assert all(len(i.name.split()) <= 3 and len(i.detail.split()) <= 10 for i in d.items)
    assert len(d.overall.split()) <= cfg.overall_cap


def test_content_parts_list_is_accepted(image: Image.Image) -> None:
    body = completion("")
    body["choices"][0]["message"]["content"] = [{"type": "text", "text": GOOD_JSON}]
    with ChatServer([Reply(body=body)]) as s:
        assert len(make(s).describe(image).items) == 2


def test_empty_answer_and_refusal_are_errors(image: Image.Image) -> None:
    with ChatServer([Reply(content="   ")]) as s, pytest.raises(DescriberError, match="held no description"):
        make(s).describe(image)
    body = completion("")
    body["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    with ChatServer([Reply(body=body)]) as s, pytest.raises(DescriberError, match="refused"):
        make(s).describe(image)


# ── slow answers, errors, retries ──────────────────────────────────────────────────────


def test_slow_answer_times_out_then_retry_succeeds(image: Image.Image) -> None:
    sleeps: list[float] = []
    with ChatServer([Reply(delay=1.5), Reply()]) as s:
        d = make(s, sleeps, timeout=0.3, backoff=0.5).describe(image)
        assert len(s.requests) == 2
    assert d.items and sleeps == [0.5]


def test_always_slow_gives_up_with_a_clear_error(image: Image.Image) -> None:
    sleeps: list[float] = []
    with ChatServer([Reply(delay=1.0)]) as s:
        with pytest.raises(DescriberError) as err:
            make(s, sleeps, timeout=0.2, max_retries=1).describe(image)
        assert len(s.requests) == 2
    assert "gave up after 2 attempts" in str(err.value) and "no answer within 0.2 s" in str(err.value)


def test_429_honours_retry_after(image: Image.Image) -> None:
    sleeps: list[float] = []
    rate_limited = Reply(
        status=429, body=error_body("Rate limit reached", "rate_limit"), headers={"Retry-After": "7"}
    )
    with ChatServer([rate_limited, Reply()]) as s:
        d = make(s, sleeps).describe(image)
        assert len(s.requests) == 2
    assert d.items and sleeps == [7.0]


def test_429_retry_after_as_http_date_and_capped(image: Image.Image) -> None:
    sleeps: list[float] = []
    far = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    with ChatServer(
        [Reply(status=429, body=error_body("slow down"), headers={"Retry-After": far}), Reply()]
    ) as s:
        make(s, sleeps, max_retry_after=20.0).describe(image)
    assert sleeps == [20.0]


def test_500s_back_off_exponentially_then_succeed(image: Image.Image) -> None:
    sleeps: list[float] = []
    err = Reply(status=500, body=error_body("internal error", "server_error"))
    with ChatServer([err, Reply(status=503, body="<html>busy</html>"), err, Reply()]) as s:
        d = make(s, sleeps, backoff=0.25, max_retries=3).describe(image)
        assert len(s.requests) == 4
    assert d.items and sleeps == [0.25, 0.5, 1.0]


def test_gives_up_after_max_retries(image: Image.Image) -> None:
    sleeps: list[float] = []
    with ChatServer([Reply(status=502, body=error_body("bad gateway"))]) as s:
        with pytest.raises(DescriberError) as err:
            make(s, sleeps, backoff=1.0, max_backoff=1.5, max_retries=3).describe(image)
        assert len(s.requests) == 4
    assert sleeps == [1.0, 1.5, 1.5]
    msg = str(err.value)
    assert "openai:test-vlm" in msg and "gave up after 4 attempts" in msg and "HTTP 502: bad gateway" in msg


def test_connection_refused_is_retried_then_reported(image: Image.Image) -> None:
    with ChatServer() as s:
        url = s.url
    sleeps: list[float] = []
    describer = OpenAIDescriber(base_url=url, api_key="k", max_retries=2, sleep=sleeps.append, timeout=2.0)
    with pytest.raises(DescriberError, match="could not connect"):
        describer.describe(image)
    assert len(sleeps) == 2


def test_json_mode_rejected_with_400_is_dropped_and_remembered(image: Image.Image) -> None:
    rejected = Reply(status=400, body=error_body("'response_format' of type 'json_object' is not supported"))
    fenced = "```json\n" + GOOD_JSON + "\n```"
    with ChatServer([rejected, Reply(content=fenced)]) as s:
        describer = make(s)
        assert len(describer.describe(image).items) == 2
        describer.describe(image)
        first, second, third = (r["json"] for r in s.requests)
    assert first["response_format"] == {"type": "json_object"}
    assert "response_format" not in second and "response_format" not in third


def test_other_400_is_not_retried_forever(image: Image.Image) -> None:
    bad = Reply(status=400, body=error_body("Invalid image data"))
    with ChatServer([bad]) as s:
        with pytest.raises(DescriberError, match="HTTP 400.*Invalid image data"):
            make(s).describe(image)
        assert len(s.requests) == 1  # about the image, not JSON mode: a clear error at once
    vague = Reply(status=400, body=error_body("Bad request"))
    with ChatServer([vague]) as s:
        with pytest.raises(DescriberError, match="HTTP 400.*Bad request"):
            make(s).describe(image)
        assert len(s.requests) == 2  # once with JSON mode, once without, then a clear error


def test_422_rejecting_json_mode_is_adapted_too(image: Image.Image) -> None:
    with ChatServer(
        [Reply(status=422, body={"detail": "response_format: extra fields not permitted"}), Reply()]
    ) as s:
        assert make(s).describe(image).items
        assert "response_format" not in s.requests[1]["json"]


def test_retry_after_ms_header(image: Image.Image) -> None:
    sleeps: list[float] = []
    limited = Reply(
        status=429, body=error_body("rate"), headers={"Retry-After": "1", "retry-after-ms": "250"}
    )
    with ChatServer([limited, Reply()]) as s:
        make(s, sleeps).describe(image)
    assert sleeps == [0.25]


def test_max_completion_tokens_and_temperature_adaptations(image: Image.Image) -> None:
    script = [
        Reply(
            status=400,
            body=error_body("Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."),
        ),
        Reply(status=400, body=error_body("Unsupported value: 'temperature' does not support 0.2")),
        Reply(),
    ]
    with ChatServer(script) as s:
        make(s).describe(image)
        last = s.requests[-1]["json"]
    assert "max_tokens" not in last and last["max_completion_tokens"] >= 300
    assert "temperature" not in last and last["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("status,match", [(401, "refused the credentials"), (404, "404")])
def test_auth_and_not_found_fail_at_once(status: int, match: str, image: Image.Image) -> None:
    with ChatServer([Reply(status=status, body=error_body("nope"))]) as s:
        with pytest.raises(DescriberError, match=match):
            make(s).describe(image)
        assert len(s.requests) == 1


def test_unreadable_200_body_is_retried(image: Image.Image) -> None:
    sleeps: list[float] = []
    with ChatServer([Reply(body="not json at all"), Reply()]) as s:
        assert make(s, sleeps).describe(image).items
    assert len(sleeps) == 1
