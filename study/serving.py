"""Serving the prepared stimuli to raters' browsers: one immutable, cached response per file.

    importer ─► <stimuli>/<ab>/<sha256>.png (written once, content-addressed, no metadata)
    page ─► GET /study-stimuli/<sha256>.png ─► bytes from memory (LRU, bounded) or disk, in one
            response: ETag = the hash, Cache-Control immutable, 304 on If-None-Match

The name is the hash of the bytes, so a file can never change under its URL: the response can
be cached for a year by the browser and kept in memory here. Gradio's own file route streams
a file in 64 KiB chunks, each read handed to a worker thread; under 100 raters that cost more
CPU than the votes themselves (bench.study_load). The URL names nothing but the hash: no
path, codec, rate or size. Each request finds the folder of the app that serves it (``attach``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path

from study.perapp import PerApp

STIMULI_PATH = "/study-stimuli"
NAME = re.compile(r"^[0-9a-f]{64}\.png$")
CACHE_BYTES = 256 * 1024 * 1024  # per app; a study's stimuli usually fit whole
HEADERS = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}


def stimulus_url(path: str | Path) -> str:
    """The page's URL of a stored stimulus (relative to the app's root)."""
    return f"{STIMULI_PATH.lstrip('/')}/{Path(path).name}"


class StimulusStore:
    """The stimuli of one app: files under ``folder`` named by their hash, kept in an LRU."""

    def __init__(self, folder: Path, max_bytes: int = CACHE_BYTES) -> None:
        self.folder = Path(folder).resolve()
        self.max_bytes = max_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def path(self, name: str) -> Path | None:
        """Where a stimulus named ``name`` lives, or None for any other name."""
        return self.folder / name[:2] / name if NAME.fullmatch(name) else None

    def cached(self, name: str) -> bytes | None:
        with self._lock:
            data = self._cache.get(name)
            if data is not None:
                self._cache.move_to_end(name)
            return data

    def keep(self, name: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if name in self._cache:
                return
            self._cache[name] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                _, old = self._cache.popitem(last=False)
                self._size -= len(old)


_BY_APP: PerApp[StimulusStore] = PerApp()


def attach(blocks: object, store: StimulusStore) -> None:
    """Tie the stimuli folder to the Blocks being built, so the route of its server finds it."""
    _BY_APP.attach(blocks, store)


def _store_of(request: object) -> StimulusStore | None:
    return _BY_APP.of(request)


def routes() -> list:
    """The stimulus route, for ``launch(app_kwargs={"routes": [...]})`` (study.ui.launch_options)."""
    import anyio
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def stimulus(request: Request) -> Response:
        name = str(request.path_params.get("name", ""))
        store = _store_of(request)
        path = store.path(name) if store is not None else None
        if store is None or path is None:
            return Response("not found", 404)
        etag = f'"{name[:-4]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={**HEADERS, "ETag": etag})
        data = store.cached(name)
        if data is None:
            try:
                data = await anyio.to_thread.run_sync(path.read_bytes)
            except OSError:
                return Response("not found", 404)
            store.keep(name, data)
        body = b"" if request.method == "HEAD" else data
        return Response(body, media_type="image/png",
                        headers={**HEADERS, "ETag": etag, "Content-Length": str(len(data))})

    return [Route(STIMULI_PATH + "/{name}", stimulus, methods=["GET", "HEAD"])]
