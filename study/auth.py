"""Admin login: the password is posted once to a plain HTTP route, never to a Gradio event.

    browser ──POST /study-admin/login (form: password)──► AdminAuth.login ─► Set-Cookie (HttpOnly)
    Admin tab events ──(cookie rides along; no secret in the payload)──► AdminAuth.require(request)

Why not a password textbox as an event input: Gradio keeps every event's inputs in the
browser's run history (localStorage), shows the endpoints on its API page and lets any
client replay them, so a password passed that way leaks. Here the session id lives in an
HttpOnly cookie (JavaScript cannot read it); the server keeps only its SHA-256.

Failed logins back off, per client and globally, and are logged (without the password):

    failures of one client in a row: n  ─► that client waits  min(base · 2^(n−1), max_delay)
    failures of all clients within `global_window` > `global_limit`  ─► every login waits `global_lockout`

A refused attempt during a wait is not even compared with the password (HTTP 429).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from study.errors import AuthError
from study.perapp import PerApp

LOG = logging.getLogger("misc.study.auth")
COOKIE = "misc_study_admin"
LOGIN_PATH = "/study-admin/login"
LOGOUT_PATH = "/study-admin/logout"


class LoginThrottled(AuthError):
    """Too many failed logins: wait ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class BackoffConfig:
    base_delay: float = 1.0  # after the first failure of a client
    max_delay: float = 300.0
    global_limit: int = 30  # failures of all clients together ...
    global_window: float = 600.0  # ... within this many seconds ...
    global_lockout: float = 60.0  # ... lock every login for this long
    session_ttl: float = 8 * 3600.0
    max_clients: int = 10_000  # remembered failing clients (oldest forgotten first)


@dataclass
class _Client:
    failures: int = 0
    until: float = 0.0


@dataclass
class AdminAuth:
    """Password check with back-off, and the server-side admin sessions."""

    password: str | None
    config: BackoffConfig = field(default_factory=BackoffConfig)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._recent: deque[float] = deque()  # times of recent failures, all clients
        self._global_until = 0.0
        self._sessions: dict[str, float] = {}  # sha256(session id) -> expiry

    @property
    def enabled(self) -> bool:
        return bool(self.password)

    def login(self, password: str, client: str) -> str:
        """A new session id for a right password; raises LoginThrottled or AuthError."""
        if not self.enabled:
            raise AuthError("admin is disabled: set MISC_ADMIN_PASSWORD and restart the app")
        now = self.clock()
        with self._lock:
            wait = max(self._global_until - now, self._clients.get(client, _Client()).until - now)
            if wait > 0:
                LOG.warning("admin login from %s refused: back-off, %.0f s left", client, wait)
                raise LoginThrottled(f"too many failed logins: try again in {wait:.0f} s", wait)
            ok = hmac.compare_digest(str(password or "").encode(), str(self.password).encode())
            if not ok:
                self._fail(client, now)
                raise AuthError("wrong admin password")
            self._clients.pop(client, None)
            token = secrets.token_urlsafe(32)
            self._sessions[_digest(token)] = now + self.config.session_ttl
            self._sessions = {k: v for k, v in self._sessions.items() if v > now}
        LOG.info("admin login from %s", client)
        return token

    def _fail(self, client: str, now: float) -> None:
        c = self._clients.pop(client, None) or _Client()
        c.failures += 1
        c.until = now + min(self.config.base_delay * 2 ** (c.failures - 1), self.config.max_delay)
        self._clients[client] = c  # re-inserted: the dict stays ordered by last failure
        while len(self._clients) > self.config.max_clients:
            self._clients.pop(next(iter(self._clients)))
        self._recent.append(now)
        while self._recent and self._recent[0] < now - self.config.global_window:
            self._recent.popleft()
        if len(self._recent) > self.config.global_limit:
            self._global_until = now + self.config.global_lockout
            self._recent.clear()
            LOG.warning("admin login locked for everyone for %.0f s: %d failures within %.0f s",
                        self.config.global_lockout, self.config.global_limit + 1, self.config.global_window)
        LOG.warning("failed admin login from %s (%d in a row; next attempt in %.0f s)", client, c.failures,
                    c.until - now)

    def is_session(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._sessions.get(_digest(token))
            return expiry is not None and expiry > self.clock()

    def logout(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def require(self, request: object) -> None:
        """Raise AuthError unless the request (a gr.Request or a Starlette request) carries a session."""
        if not self.is_session(session_cookie(request)):
            raise AuthError("not logged in as admin (log in on the Admin tab; sessions end after "
                            f"{self.config.session_ttl / 3600:.0f} h or when the app restarts)")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_cookie(request: object) -> str | None:
    """The admin cookie of a gr.Request / Starlette request, if any."""
    if request is None:
        return None
    try:
        cookies = request.cookies  # type: ignore[attr-defined]
    except (AttributeError, KeyError):
        cookies = None
    if not cookies:
        inner = getattr(request, "request", None)
        cookies = getattr(inner, "cookies", None) or {}
    value = cookies.get(COOKIE) if hasattr(cookies, "get") else None
    return value if isinstance(value, str) else None


def client_key(request: object) -> str:
    """Who is logging in, for the per-client back-off: the first forwarded address, else the peer."""
    headers = getattr(request, "headers", {}) or {}
    forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
    if forwarded:
        return forwarded.split(",")[0].strip()[:64]
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


def routes() -> list:
    """The login / logout routes, for ``launch(app_kwargs={"routes": routes()})``.

    Each request finds the AdminAuth of the app that serves it (``attach``)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def login(request: Request) -> JSONResponse:
        auth = _auth_of(request)
        if auth is None or not auth.enabled:
            return JSONResponse({"ok": False, "error": "admin is disabled: set MISC_ADMIN_PASSWORD and restart"}, 403)
        try:
            if request.headers.get("content-type", "").startswith("application/json"):
                password = (await request.json()).get("password", "")
            else:
                password = (await request.form()).get("password", "")
        except (ValueError, AttributeError):
            return JSONResponse({"ok": False, "error": "send the password as a form field or JSON"}, 400)
        try:
            token = auth.login(str(password or ""), client_key(request))
        except LoginThrottled as e:
            return JSONResponse({"ok": False, "error": str(e)}, 429,
                                headers={"Retry-After": str(int(e.retry_after) + 1)})
        except AuthError as e:
            return JSONResponse({"ok": False, "error": str(e)}, 401)
        response = JSONResponse({"ok": True})
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        # On a Space the app runs in huggingface.co's iframe: a cross-site cookie must be
        # SameSite=None; Secure (Partitioned keeps it to that embedding in Chromium).
        response.set_cookie(COOKIE, token, max_age=int(auth.config.session_ttl), httponly=True, path="/",
                            secure=secure, samesite="none" if secure else "strict",
                            partitioned=secure)
        return response

    async def logout(request: Request) -> JSONResponse:
        auth = _auth_of(request)
        if auth is not None:
            auth.logout(request.cookies.get(COOKIE))
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    return [Route(LOGIN_PATH, login, methods=["POST"]), Route(LOGOUT_PATH, logout, methods=["POST"])]


_BY_APP: PerApp[AdminAuth] = PerApp()


def attach(blocks: object, auth: AdminAuth) -> None:
    """Tie the admin sessions to the Blocks being built, so the routes of its server find them."""
    _BY_APP.attach(blocks, auth)


def _auth_of(request: object) -> AdminAuth | None:
    return _BY_APP.of(request)
