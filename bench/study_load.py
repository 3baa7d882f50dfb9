"""Load on the study as raters make it: many simulated raters voting over loopback HTTP.

    one study (bench-sized PNG stimuli, imported by the real importer)
        ─► the study app in its own process (``python -m study``, SQLite)
        ─► R raters, one asyncio task each, through the app's own HTTP API
           (Gradio's ``/gradio_api/run/<api_name>``: the study's events do not queue; one session each):
              study_start ─► [fetch A and B ─► think ~T s ─► study_vote_*]* ─► done
        ─► per vote: the round trip (POST until the "complete" event), errors, truncated
           image bodies (shorter than Content-Length, or a PNG without its IEND chunk)
        ─► afterwards, from the database: votes acknowledged vs stored per rater
           (lost: acknowledged but absent; doubled: stored more often than cast)

``python -m bench.study_load --raters 100 --votes 10 --think 2`` prints a JSON summary.
Everything is bounded: R raters, V votes each, and ``--max-seconds`` for the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PROGRESS = re.compile(r"Pair (\d+) of (\d+)")


class CallError(RuntimeError):
    """The app answered an API call with an error event (or not at all)."""


def png_chunks(data: bytes) -> list[str]:
    """Chunk types of a PNG file, in order; ValueError if it is not a whole PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    out, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated chunk header")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        pos += 12 + length
        if pos > len(data):
            raise ValueError("truncated chunk")
        out.append(kind.decode("latin-1"))
    if not out or out[-1] != "IEND":
        raise ValueError("no IEND chunk: the file is cut short")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StudyClient:
    """One rater's browser, reduced to the HTTP calls the page makes (one Gradio session)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.session = uuid.uuid4().hex
        self.cache: dict[str, tuple[str, bytes]] = {}  # url → (ETag, bytes), as a browser keeps
        self.trial = ""  # the assignment the page shows (a vote names it)

    async def call(self, api_name: str, data: list[Any]) -> list[Any]:
        r = await self.http.post(f"/gradio_api/call/{api_name}", json={"data": data, "session_hash": self.session})
        r.raise_for_status()
        event_id = r.json()["event_id"]
        r = await self.http.get(f"/gradio_api/call/{api_name}/{event_id}")
        r.raise_for_status()
        event, payload = None, None
        for line in r.text.splitlines():
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event in ("complete", "error"):
                payload = json.loads(line[6:])
                break
        if event != "complete":
            raise CallError(f"{api_name}: {event or 'no event'}: {payload}")
        return payload  # type: ignore[return-value]

    # The rater page's two calls. The wire format of the Study tab's events lives here alone.
    async def start(self, study_id: int) -> list[Any]:
        """Consent and Start on the study ``study_id`` (no link parameters): the first pair."""
        return self._shown(await self.run("study_start", [str(study_id), True, "", "", "", "", None]))  # not queued; the state: null

    async def vote(self, choice: str, client_time: object) -> list[Any]:
        """A / same / B (``left`` / ``tie`` / ``right``) on the pair shown, with the page's clock.

        A vote names the pair the page shows (its ``data-trial``), as the page does. The vote
        events do not queue: one POST to ``/gradio_api/run/<api_name>``, as the page sends it,
        answered with the next pair.
        """
        return self._shown(await self.run(f"study_vote_{choice}",
                                          [None, None, self.trial, str(client_time)]))  # states: null

    def _shown(self, outputs: list[Any]) -> list[Any]:
        for o in outputs:
            if isinstance(o, str) and (m := TRIAL.search(o)):
                self.trial = m.group(1)
        return outputs

    async def run(self, api_name: str, data: list[Any]) -> list[Any]:
        """An event that does not queue (``queue=False``): one POST, the outputs in its answer."""
        r = await self.http.post(f"/gradio_api/run/{api_name}", json={"data": data, "session_hash": self.session})
        if r.status_code != 200:
            raise CallError(f"{api_name}: HTTP {r.status_code}: {r.text[:200]}")
        return r.json()["data"]

    async def fetch(self, url: str) -> tuple[bytes, bool]:
        """An image's bytes and whether they came over the wire (False: revalidated, 304).

        Like a browser, a stimulus fetched before is revalidated with its ETag. ValueError
        if a body is shorter than declared or is not a whole PNG.
        """
        cached = self.cache.get(url)
        headers = {"If-None-Match": cached[0]} if cached else {}
        r = await self.http.get(url, headers=headers)
        if r.status_code == 304 and cached:
            return cached[1], False
        r.raise_for_status()
        declared = r.headers.get("content-length")
        if declared is not None and int(declared) != len(r.content):
            raise ValueError(f"{len(r.content)} bytes received, {declared} declared")
        png_chunks(r.content)
        if etag := r.headers.get("etag"):
            self.cache[url] = (etag, r.content)
        return r.content, True


IMG_SRC = re.compile(r'<img[^>]*\ssrc="([^"]+)"')
TRIAL = re.compile(r'data-trial="(\d+)"')


def images_of(outputs: list[Any]) -> list[str]:
    """The image URLs of a page update: image components' files, or <img> tags in HTML."""
    urls = []
    for o in outputs:
        if isinstance(o, dict) and o.get("url"):
            urls.append(o["url"])
        elif isinstance(o, str):
            urls += [html.unescape(u) for u in IMG_SRC.findall(o)]
    return urls


def progress_of(outputs: list[Any]) -> tuple[int, int] | None:
    for o in outputs:
        if isinstance(o, str) and (m := PROGRESS.search(o)):
            return int(m.group(1)), int(m.group(2))
    return None


@dataclass
class RaterLog:
    attempted: int = 0  # votes sent (a vote whose answer never came may still be stored)
    acknowledged: int = 0
    vote_ms: list[float] = field(default_factory=list)
    image_ms: list[float] = field(default_factory=list)
    revalidated: int = 0  # images answered 304 (already in the rater's cache)
    errors: list[str] = field(default_factory=list)
    truncated: int = 0
    out_of_order: int = 0  # the next pair's number was not one more than the last


async def rater(client: StudyClient, study_id: int, votes: int, think: float, deadline: float,
                rng: random.Random, images: bool = True) -> RaterLog:
    log = RaterLog()
    await asyncio.sleep(rng.uniform(0, think))  # raters arrive spread out, not all at once
    try:
        out = await client.start(study_id)
    except (CallError, httpx.HTTPError) as e:
        log.errors.append(f"start: {e}")
        return log
    for _ in range(votes):
        urls, shown = images_of(out), progress_of(out)
        if len(urls) != 2 or time.monotonic() > deadline:
            break
        for url in urls if images else []:
            t0 = time.perf_counter()
            try:
                _, transferred = await client.fetch(url)
                log.revalidated += not transferred
            except (ValueError, httpx.RemoteProtocolError) as e:
                log.truncated += 1
                log.errors.append(f"image: {e}")
            except httpx.HTTPError as e:
                log.errors.append(f"image: {e!r}")
            log.image_ms.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
        choice = rng.choice(["left", "right", "tie"])
        t0 = time.perf_counter()
        log.attempted += 1
        try:
            out = await client.vote(choice, int(time.time() * 1000))
        except (CallError, httpx.HTTPError) as e:
            log.errors.append(f"vote: {e!r}")
            break
        log.vote_ms.append((time.perf_counter() - t0) * 1000)
        log.acknowledged += 1
        nxt = progress_of(out)
        if shown and nxt and nxt[0] != shown[0] + 1:
            log.out_of_order += 1
    return log


def make_stimuli(folder: Path, sources: int, codecs: int, size: int, seed: int = 0) -> Path:
    """A manifest of photo-sized PNGs: a smooth random scene per source, blurred more per codec."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in range(sources):
        small = rng.integers(0, 255, (size // 16, size // 16, 3), dtype=np.uint8)
        base = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
        noise = rng.normal(0, 12, (size, size, 3))
        base = Image.fromarray(np.clip(np.asarray(base, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
        ref = folder / f"src{s}.png"
        base.save(ref)
        for c in range(codecs):
            p = folder / f"src{s}_c{c}.png"
            base.filter(ImageFilter.GaussianBlur(radius=0.5 * (codecs - c))).save(p)
            rows.append({"source_id": f"src{s}", "codec": f"codec{c}", "target_bpp": 0.01 * (c + 1),
                         "path": p.name, "reference_path": ref.name})
    path = folder / "manifest.json"
    path.write_text(json.dumps({"format": "misc-study-manifest/1", "name": "load", "stimuli": rows}))
    return path


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}")
        try:
            if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the app did not start")


async def drive(url: str, study_id: int, raters: int, votes: int, think: float, max_seconds: float,
                seed: int, images: bool = True) -> list[RaterLog]:
    deadline = time.monotonic() + max_seconds
    # Idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s), as
    # browsers do; otherwise a request sent on a connection the server is closing fails with
    # a ReadError that says nothing about the app.
    limits = httpx.Limits(max_connections=4 * raters, max_keepalive_connections=2 * raters, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        tasks = [rater(StudyClient(http), study_id, votes, think, deadline, random.Random(seed * 100_003 + i), images)
                 for i in range(raters)]
        return await asyncio.wait_for(asyncio.gather(*tasks), timeout=max_seconds + 120)


def stored_votes_per_rater(db_url: str, study_id: int) -> list[int]:
    from sqlalchemy import func, select

    from db import Database, Vote

    db = Database(db_url, create=False)
    try:
        with db.read() as s:
            counts = [n for _, n in s.execute(select(Vote.rater_id, func.count(Vote.id))
                                               .where(Vote.study_id == study_id).group_by(Vote.rater_id))]
    finally:
        db.dispose()
    return counts


def run(workdir: Path, raters: int = 100, votes: int = 10, think: float = 2.0, max_seconds: float = 180,
        sources: int = 6, codecs: int = 6, size: int = 512, seed: int = 0, images: bool = True) -> dict[str, Any]:
    from db import Database
    from study.config import StudyConfig
    from study.importer import StudyOptions, import_manifest
    from study.service import StudyService

    config = StudyConfig(db_url=str(workdir / "study.db"), stimuli_dir=workdir / "stimuli")
    db = Database(config.db_url)
    study_id = import_manifest(db, make_stimuli(workdir / "bench", sources, codecs, size, seed), config,
                               options=StudyOptions(pairs_per_session=votes, golden_every=5))
    StudyService(db).set_status(study_id, "open")
    db.dispose()

    port = free_port()
    env = dict(os.environ, MISC_STUDY_DB=config.db_url, MISC_STUDY_STIMULI_DIR=str(config.stimuli_dir),
               GRADIO_ANALYTICS_ENABLED="False")
    env.pop("MISC_ADMIN_PASSWORD", None)
    server_log = workdir / "server.log"
    with open(server_log, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "study", "--port", str(port)], env=env,
                                cwd=Path(__file__).resolve().parent.parent, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_ready(url, proc)
            startup_cpu = process_cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            logs = asyncio.run(drive(url, study_id, raters, votes, think, max_seconds, seed, images))
            wall = time.perf_counter() - t0
            server_cpu = process_cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    # Raters are anonymous to the client, so per-rater counts are matched as sorted lists:
    # a rater's votes are lost if fewer are stored than were acknowledged, doubled if more
    # are stored than were sent (a vote sent whose answer never arrived may be stored).
    sent = sorted((lg.acknowledged, lg.attempted) for lg in logs if lg.attempted)
    stored = sorted(stored_votes_per_rater(config.db_url, study_id))
    stored = [0] * (len(sent) - len(stored)) + stored
    lost = sum(max(0, a - s) for (a, _), s in zip(sent, stored, strict=False))
    doubled = sum(max(0, s - t) for (_, t), s in zip(sent, stored, strict=False)) + sum(stored[len(sent):])
    vote_ms = [v for lg in logs for v in lg.vote_ms]
    image_ms = [v for lg in logs for v in lg.image_ms]
    errors = [e for lg in logs for e in lg.errors]
    return {
        "raters": raters, "votes_per_rater": votes, "think_s": think, "image_px": size if images else None,
        "wall_s": round(wall, 1),
        # CPU the app spent per acknowledged vote (its start-up not counted; the images, the
        # sessions' starts and the scheduler's refits counted): what the load costs the server
        # whatever else the machine runs; latency below depends on the CPU it was given.
        "server_cpu_ms_per_vote": round(1000 * (server_cpu - startup_cpu) / max(1, sum(a for a, _ in sent)), 1),
        "server_startup_cpu_s": round(startup_cpu, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "votes_sent": sum(t for _, t in sent), "votes_acknowledged": sum(a for a, _ in sent),
        "votes_stored": sum(stored),
        "votes_lost": lost, "votes_doubled": doubled,
        "vote_ms_p50": percentile(vote_ms, 50), "vote_ms_p95": percentile(vote_ms, 95),
        "vote_ms_max": round(max(vote_ms), 1) if vote_ms else None,
        "image_ms_p50": percentile(image_ms, 50), "image_ms_p95": percentile(image_ms, 95),
        "images_fetched": len(image_ms), "images_revalidated_304": sum(lg.revalidated for lg in logs),
        "errors": len(errors), "truncated": sum(lg.truncated for lg in logs),
        "out_of_order": sum(lg.out_of_order for lg in logs),
        "error_samples": errors[:5],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raters", type=int, default=100)
    ap.add_argument("--votes", type=int, default=10, help="votes per rater (the session length)")
    ap.add_argument("--think", type=float, default=2.0, help="mean think time in seconds (uniform ±50%%)")
    ap.add_argument("--max-seconds", type=float, default=180, help="stop issuing votes after this long")
    ap.add_argument("--size", type=int, default=512, help="stimulus width and height in pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-images", action="store_true",
                    help="do not fetch the images (the vote path alone, as with images cached or on a CDN)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="study_load_") as d:
        result = run(Path(d), args.raters, args.votes, args.think, args.max_seconds, size=args.size, seed=args.seed,
                     images=not args.no_images)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
