"""A rater session end to end in headless Chromium, then the admin results page.

Screenshots land in test-output/study_rater.png and test-output/study_admin.png.
"""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from db import Database, Vote
from study.config import StudyConfig
from study.importer import StudyOptions, import_manifest
from study.service import StudyService

CHROMIUM = "/usr/bin/chromium"
KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak24"
OUT = Path(__file__).resolve().parents[1] / "test-output"
T = 120_000  # ms; generous: a loaded CI machine can take long to serve the first page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _photo(i: int) -> Image.Image:
    path = KODAK / f"kodim{i + 1:02d}.png"
    if path.is_file():
        return Image.open(path).convert("RGB").resize((256, 256), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(i)  # no shared data: a smooth synthetic picture
    x = np.linspace(0, 1, 256)
    base = np.stack([np.outer(np.sin(6 * x + i), x), np.outer(x, np.cos(4 * x)), np.outer(x, x)], -1)
    return Image.fromarray((np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1) * 255).astype(np.uint8))


def _jpeg(im: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _psnr(a: Image.Image, b: Image.Image) -> float:
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255**2 / max(np.mean(d * d), 1e-9)))


def _manifest(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rows = []
    for i in range(3):
        ref = _photo(i)
        ref.save(folder / f"k{i}.png")
        for q in (3, 10, 30, 80):
            rec = _jpeg(ref, q)
            rec.save(folder / f"k{i}_q{q}.png")
            rows.append({"source_id": f"kodim{i + 1:02d}", "codec": "jpeg", "target_bpp": q / 100,
                         "path": f"k{i}_q{q}.png", "reference_path": f"k{i}.png",
                         "metrics": {"psnr": _psnr(ref, rec)}})
    conds = [{"codec": "jpeg", "target_bpp": q / 100, "metrics": {"FD-VGG16": 100.0 / q}} for q in (3, 10, 30, 80)]
    p = folder / "manifest.json"
    p.write_text(json.dumps({"name": "browser study", "stimuli": rows, "conditions": conds}))
    return p


@pytest.fixture()
def app(tmp_path: Path):  # noqa: ANN201
    import gradio as gr

    from study.ui import HEAD_JS, build_study_tabs
    config = StudyConfig(db_url=str(tmp_path / "s.db"), admin_password="letmein", stimuli_dir=tmp_path / "stim",
                         bootstrap_samples=20)
    service = StudyService(Database(config.db_url), seed=1)
    sid = import_manifest(service.db, _manifest(tmp_path / "bench"), config,
                          options=StudyOptions(pairs_per_session=5, golden_every=5))
    service.set_status(sid, "open")
    # Ten earlier raters, so the admin page has results: better JPEG quality wins, mostly.
    rng = np.random.default_rng(0)
    quality = {st.id: (c.target_bpp if c else (1.0 if st.role == "reference" else -1.0))
               for st, c in service.stimuli(sid)}
    for _ in range(10):
        tok = service.start_session(sid)
        while (v := service.next_pair(tok)) is not None:
            with service.db.read() as s:
                from db import Assignment
                a = s.get(Assignment, v.assignment_id)
                d = quality[a.left_stimulus_id] - quality[a.right_stimulus_id] + rng.normal(0, 0.15)
            service.submit_vote(tok, v.assignment_id, "left" if d > 0 else "right", int(rng.integers(500, 3000)))
    with gr.Blocks(title="MISC study") as demo, gr.Tabs():
        build_study_tabs(config, service)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, head=HEAD_JS, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", service, sid
    finally:
        demo.close()


def test_rater_session_and_admin_results(app) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    url, service, sid = app
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                                          "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(T)
        page.goto(url)
        expect(page.locator("#study-select input")).to_have_value("browser study", timeout=T)
        # Consent screen: starting without consent is refused.
        page.locator("#study-start").click()
        expect(page.get_by_text("Please tick the consent box")).to_be_visible(timeout=T)
        page.locator("#study-consent-box input[type=checkbox]").check()
        page.locator("#study-start").click()
        expect(page.locator("#study-progress")).to_contain_text("Pair 1 of 5", timeout=T)
        expect(page.locator("#study-left img")).to_be_visible(timeout=T)
        expect(page.locator("#study-right img")).to_be_visible(timeout=T)
        page.screenshot(path=str(OUT / "study_rater.png"))
        # Answer with the mouse once, then with keyboard shortcuts.
        page.locator("#study-btn-a").click()
        expect(page.locator("#study-progress")).to_contain_text("Pair 2 of 5", timeout=T)
        for key, n in (("b", 3), ("t", 4), ("ArrowLeft", 5)):
            page.locator("body").click(position={"x": 5, "y": 5})
            page.keyboard.press(key)
            expect(page.locator("#study-progress")).to_contain_text(f"Pair {n} of 5", timeout=T)
        page.locator("#study-btn-b").click()
        expect(page.get_by_text("Thank you!")).to_be_visible(timeout=T)

        # Admin: results behind the password.
        page.get_by_role("tab", name="Admin").click()
        page.locator("#admin-password input, #admin-password textarea").first.fill("letmein")
        page.get_by_role("button", name="Refresh").click()
        expect(page.locator("#admin-status")).to_contain_text("browser study", timeout=T)
        page.locator("#admin-analyse").click()
        expect(page.locator("#admin-leaderboard")).to_contain_text("jpeg@0.8", timeout=T)
        expect(page.locator("#admin-correlations")).to_contain_text("psnr", timeout=T)
        expect(page.locator("#admin-scatter")).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(OUT / "study_admin.png"), full_page=True)
        browser.close()

    with service.db.read() as s:
        mine = s.scalars(select(Vote).where(Vote.study_id == sid).order_by(Vote.id.desc()).limit(5)).all()
    assert [v.choice for v in reversed(mine)] == ["left", "right", "tie", "left", "right"]
    assert all(v.response_ms > 0 for v in mine)
    assert all(v.client_time is not None for v in mine)  # stamped by the page's js
    assert os.path.getsize(OUT / "study_rater.png") > 10_000


def test_http_api_refuses_wrong_password_and_missing_consent(app) -> None:  # noqa: ANN001
    """The same endpoints through gradio_client: nothing is stored by refused calls."""
    from gradio_client import Client

    url, service, sid = app
    before = len(service.votes(sid))
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    with pytest.raises(Exception, match="wrong admin password"):
        client.predict("not-the-password", str(sid), api_name="/admin_open")
    with pytest.raises(Exception, match="wrong admin password"):
        client.predict("", str(sid), True, api_name="/admin_analyse")
    result = client.predict(str(sid), False, "", "", "", api_name="/study_start")
    assert "consent" in str(result[-1])
    status = client.predict("letmein", str(sid), api_name="/admin_refresh")
    assert "browser study" in str(status[-1])
    assert len(service.votes(sid)) == before
