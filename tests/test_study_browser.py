"""The study in headless Chromium: sessions that survive, study links, tasks, native size, the admin.

Screenshots land in test-output/: study_rater.png (1400 px), study_fidelity.png,
study_phone.png (390 px) and study_admin.png.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from db import Assignment, Database, Rater, Stimulus, Vote
from study.config import StudyConfig
from study.importer import StudyOptions, import_manifest
from study.service import StudyService

CHROMIUM = "/usr/bin/chromium"
KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak24"
OUT = Path(__file__).resolve().parents[1] / "test-output"
T = 120_000  # ms; generous: a loaded CI machine can take long to serve the first page
PASSWORD = "letmein-7Qz"  # distinctive, so a scan for it cannot match by chance
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update"]

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

    from study.ui import build_study_tabs, launch_options
    config = StudyConfig(db_url=str(tmp_path / "s.db"), admin_password=PASSWORD, stimuli_dir=tmp_path / "stim",
                         bootstrap_samples=20)
    service = StudyService(Database(config.db_url), seed=1)
    manifest = _manifest(tmp_path / "bench")
    sid = import_manifest(service.db, manifest, config, options=StudyOptions(pairs_per_session=5, golden_every=5))
    fid = import_manifest(service.db, manifest, config, name="fidelity study",
                          options=StudyOptions(pairs_per_session=4, golden_every=0, task="fidelity"))
    service.add_trap_pairs(sid)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    service.set_link(sid, "jpeg-q", "C0DE-42", url + "?returned=1")
    service.set_link(fid, "jpeg-fid", "FID-7", None)
    for s in (sid, fid):
        service.set_status(s, "open")
    # Ten earlier raters, so the admin page has results: better JPEG quality wins, mostly.
    rng = np.random.default_rng(0)
    quality = {st.id: (c.target_bpp if c else (1.0 if st.role == "reference" else -1.0))
               for st, c in service.stimuli(sid)}
    for _ in range(10):
        tok = service.start_session(sid)
        while (v := service.next_pair(tok)) is not None:
            with service.db.read() as s:
                a = s.get(Assignment, v.assignment_id)
                d = quality[a.left_stimulus_id] - quality[a.right_stimulus_id] + rng.normal(0, 0.15)
            service.submit_vote(tok, v.assignment_id, "left" if d > 0 else "right", int(rng.integers(500, 3000)))
    with gr.Blocks(title="MISC study") as demo, gr.Tabs():
        build_study_tabs(config, service)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        yield url, service, sid, fid
    finally:
        demo.close()


def _raters(service: StudyService, sid: int) -> int:
    with service.db.read() as s:
        return s.scalar(select(func.count(Rater.id)).where(Rater.study_id == sid)) or 0


def _trial(page) -> str:  # noqa: ANN001
    return page.locator("#study-stage .misc-stage").get_attribute("data-trial", timeout=T)


def _start(page, url: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect
    page.goto(url)
    expect(page.locator("#study-start")).to_be_visible(timeout=T)
    if "study=" in url:  # wait until the page has read its link (the load event re-renders the form)
        expect(page.locator("#study-title")).not_to_contain_text("Image study", timeout=T)
    page.locator("#study-consent-box input[type=checkbox]").check()
    page.locator("#study-start").click()
    expect(page.locator("#study-progress")).to_contain_text("Pair 1 of", timeout=T)


def test_reload_reopen_and_two_tabs_resume_the_same_pair_and_rater(app, chromium) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    url, service, sid, _ = app
    link = url + "?study=jpeg-q"
    before = _raters(service, sid)
    ctx = chromium.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(T)
    page = ctx.new_page()
    _start(page, link)
    page.locator("#study-btn-a").click()
    expect(page.locator("#study-progress")).to_contain_text("Pair 2 of 5", timeout=T)
    second = _trial(page)

    page.reload()  # reload mid-session: the same pair, no consent screen
    expect(page.locator("#study-progress")).to_contain_text("Pair 2 of 5", timeout=T)
    assert _trial(page) == second
    expect(page.locator("#study-start")).to_be_hidden()
    page.close()

    page = ctx.new_page()  # close the tab, open the link again
    page.goto(link)
    expect(page.locator("#study-progress")).to_contain_text("Pair 2 of 5", timeout=T)
    assert _trial(page) == second

    other = ctx.new_page()  # a second tab: the same session
    other.goto(url)  # even without the study in the link
    expect(other.locator("#study-progress")).to_contain_text("Pair 2 of 5", timeout=T)
    assert _trial(other) == second
    other.locator("#study-btn-b").click()
    expect(other.locator("#study-progress")).to_contain_text("Pair 3 of 5", timeout=T)
    third = _trial(other)
    page.locator("#study-btn-a").click()  # the stale tab answers the pair already answered
    expect(page.locator("#study-message")).to_contain_text("already answered", timeout=T)
    expect(page.locator("#study-progress")).to_contain_text("Pair 3 of 5", timeout=T)
    assert _trial(page) == third

    page.locator("#study-btn-tie").dblclick()  # a double press reaches the server once
    expect(page.locator("#study-progress")).to_contain_text("Pair 4 of 5", timeout=T)
    page.wait_for_timeout(1000)
    expect(page.locator("#study-progress")).to_contain_text("Pair 4 of 5")
    ctx.close()

    assert _raters(service, sid) == before + 1
    with service.db.read() as s:
        rater = s.scalars(select(Rater).where(Rater.study_id == sid).order_by(Rater.id.desc())).first()
        votes = s.scalars(select(Vote).where(Vote.rater_id == rater.id).order_by(Vote.id)).all()
        shown = s.scalar(select(Assignment.shown_count).where(Assignment.id == int(second)))
    assert [v.choice for v in votes] == ["left", "right", "tie"]
    assert votes[1].assignment_id == int(second) and votes[2].assignment_id == int(third)
    assert shown >= 4  # first show, reload, reopen, second tab
    assert votes[0].viewport_w == 1400 and votes[0].device_pixel_ratio == 1.0 and votes[0].view_mode == "side"
    assert votes[0].view_ms is not None and votes[0].client_time is not None


def test_prolific_link_lands_on_the_study_and_ends_with_the_code(app, chromium) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    url, service, sid, _ = app
    link = url + "?study=jpeg-q&PROLIFIC_PID=pp-5f3a&STUDY_ID=st-1&SESSION_ID=se-9"
    ctx = chromium.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(T)
    page = ctx.new_page()
    page.goto(link)
    expect(page.locator("#study-title")).to_contain_text("browser study", timeout=T)
    expect(page.locator("#study-select")).to_be_hidden()  # the link chose the study
    expect(page.get_by_text("Which image looks better?").first).to_be_visible()
    _start(page, link)
    img = page.locator("#study-stage img").first
    expect(img).to_be_visible(timeout=T)
    page.wait_for_function("() => document.querySelector('#study-stage .misc-stage').dataset.fit", timeout=T)
    natural, css = page.evaluate("() => { const i = document.querySelector('#study-stage img'); "
                                 "return [i.naturalWidth, i.getBoundingClientRect().width]; }")
    assert natural == 256 and css == 256  # 1 image pixel = 1 device pixel (devicePixelRatio 1)
    assert page.locator("#study-stage figure").count() == 2  # quality task: no original
    page.screenshot(path=str(OUT / "study_rater.png"))
    for n in range(2, 6):
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("b")
        expect(page.locator("#study-progress")).to_contain_text(f"Pair {n} of 5", timeout=T)
        expect(page.locator("#study-progress progress")).to_have_attribute("value", str(n - 1))  # pairs answered
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("a")
    expect(page.locator("#study-code")).to_have_text("C0DE-42", timeout=T)
    page.wait_for_url("**returned=1**", timeout=T)  # the admin's return URL, after a few seconds
    ctx.close()

    with service.db.read() as s:
        rater = s.scalars(select(Rater).where(Rater.platform_id == "pp-5f3a")).one()
        assert rater.study_id == sid
        assert rater.platform == {"PROLIFIC_PID": "pp-5f3a", "STUDY_ID": "st-1", "SESSION_ID": "se-9"}
        assert s.scalar(select(func.count(Vote.id)).where(Vote.rater_id == rater.id)) == 5
    # The same participant in another browser (no stored session): the same session, finished.
    before = _raters(service, sid)
    ctx = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.goto(link)
    expect(page.locator("#study-title")).to_contain_text("browser study", timeout=T)  # the link was read
    page.locator("#study-consent-box input[type=checkbox]").check(timeout=T)
    page.locator("#study-start").click()
    expect(page.locator("#study-code")).to_have_text("C0DE-42", timeout=T)
    ctx.close()
    assert _raters(service, sid) == before


def test_fidelity_shows_the_original_and_phones_get_the_toggle_view(app, chromium) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    url, service, _, fid = app
    ctx = chromium.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(T)
    page = ctx.new_page()
    _start(page, url + "?study=jpeg-fid")
    expect(page.locator("#study-question")).to_contain_text("closer to the original", timeout=T)
    figs = page.locator("#study-stage figure")
    expect(figs).to_have_count(3)
    assert [figs.nth(i).get_attribute("data-side") for i in range(3)] == ["A", "O", "B"]
    expect(figs.nth(1)).to_contain_text("Original")
    page.wait_for_function("() => document.querySelector('#study-stage .misc-stage').dataset.fit === 'side'",
                           timeout=T)
    page.screenshot(path=str(OUT / "study_fidelity.png"))
    src = figs.nth(1).locator("img").get_attribute("src")
    with service.db.read() as s:  # the middle image is the source's reference
        refs = s.scalars(select(Stimulus.path).where(Stimulus.study_id == fid, Stimulus.role == "reference")).all()
    assert any(Path(r).name in src for r in refs)
    ctx.close()

    phone = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                                 has_touch=True)
    phone.set_default_timeout(T)
    page = phone.new_page()
    _start(page, url + "?study=jpeg-q")
    page.wait_for_function("() => document.querySelector('#study-stage .misc-stage').dataset.fit", timeout=T)
    stage = page.locator("#study-stage .misc-stage")
    if stage.get_attribute("data-fit") == "toggle":  # 2 × 256 px + gaps do not fit in 390 px
        expect(page.locator(".misc-fit-note")).to_contain_text("too narrow", timeout=T)
        expect(page.locator(".misc-fig.misc-on")).to_have_count(1)
        page.locator(".misc-show[data-show=B]").click()
        expect(page.locator(".misc-fig.misc-on")).to_have_attribute("data-side", "B")
    a = page.locator("#study-btn-a").bounding_box()
    b = page.locator("#study-btn-b").bounding_box()
    assert a["x"] + a["width"] <= b["x"] and abs(a["y"] - b["y"]) < 5  # A left of B, one row
    page.screenshot(path=str(OUT / "study_phone.png"), full_page=True)
    phone.close()


def test_admin_password_never_reaches_storage_api_info_or_exports(app, chromium, tmp_path: Path) -> None:  # noqa: ANN001
    import httpx
    from playwright.sync_api import expect

    url, service, sid, fid = app
    ctx = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(T)
    rater = ctx.new_page()  # a rater mid-session when the admin closes the study
    _start(rater, url + "?study=jpeg-q")

    page = ctx.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Admin").click()
    field = page.locator("#admin-password input, #admin-password textarea").first
    field.fill("wrong-guess")
    page.locator("#admin-login").click()
    expect(page.locator("#admin-login-msg")).to_contain_text("wrong admin password", timeout=T)
    expect(page.locator("#admin-panel")).to_be_hidden()
    page.wait_for_timeout(1200)  # the back-off after one failure is 1 s
    field.fill(PASSWORD)
    page.locator("#admin-login").click()
    expect(page.locator("#admin-status")).to_contain_text("is open", timeout=T)  # the latest study
    expect(page.locator("#admin-login-box")).to_be_hidden()  # logged in: the password field is gone
    page.locator("#admin-study input").fill(str(sid))
    page.locator("#admin-study input").press("Enter")
    page.locator("#admin-refresh").click()
    expect(page.locator("#admin-status")).to_contain_text("?study=jpeg-q", timeout=T)
    page.locator("#admin-analyse").click()
    expect(page.locator("#admin-leaderboard")).to_contain_text("jpeg@0.8", timeout=T)
    expect(page.locator("#admin-screening")).to_contain_text("rater", timeout=T)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / "study_admin.png"), full_page=True)
    # The same stimuli in the fidelity study: where the two tasks rank the conditions differently.
    for _ in range(4):
        tok = service.start_session(fid)
        while (v := service.next_pair(tok)) is not None:
            service.submit_vote(tok, v.assignment_id, "left", 900)
    page.locator("#admin-compare-with input").fill(str(fid))
    page.locator("#admin-compare").click()
    expect(page.locator("#admin-compare-table")).to_contain_text("jpeg@0.8", timeout=T)
    expect(page.locator("#admin-status")).to_contain_text("SRCC between the two studies", timeout=T)
    exported = []
    links = page.locator("#admin-exports a")
    expect(links).to_have_count(4, timeout=T)  # count() does not wait: on a loaded machine they come later
    for i in range(links.count()):
        with page.expect_download() as dl:
            links.nth(i).click()
        exported.append(Path(dl.value.path()).read_text(encoding="utf-8", errors="replace"))
    assert len(exported) == 4
    page.reload()  # the admin session survives a reload (cookie), without typing again
    page.get_by_role("tab", name="Admin").click()
    expect(page.locator("#admin-panel")).to_be_visible(timeout=T)
    page.locator("#admin-study input").fill(str(sid))
    page.locator("#admin-study input").press("Enter")
    page.locator("#admin-close").click()
    expect(page.locator("#admin-status")).to_contain_text("browser study (quality) is closed", timeout=T)

    # The rater's next answer: the study says it is closed, in plain words, no error badge.
    rater.locator("#study-btn-a").click()
    expect(rater.locator("#study-message")).to_contain_text("is closed", timeout=T)
    expect(rater.locator("#study-rating")).to_be_hidden()
    assert rater.locator(".error, [data-testid=error]").count() == 0

    storage = page.evaluate("() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), "
                            "document.cookie])")
    cookies = ctx.cookies()
    info = httpx.get(url + "gradio_api/info", params={"all_endpoints": "true"}).text
    config = httpx.get(url + "config").text
    ctx.close()
    admin_cookie = [c for c in cookies if c["name"] == "misc_study_admin"]
    assert admin_cookie and admin_cookie[0]["httpOnly"]  # script cannot read the session id
    assert "misc_study_admin" not in storage
    for where, text in [("storage", storage), ("api info", info), ("config", config),
                        ("cookies", json.dumps(cookies))] + [(f"export {i}", t) for i, t in enumerate(exported)]:
        assert PASSWORD not in text, where
    assert "misc-study-sessions" in storage  # the rater's resumable session is there, by design
    assert "admin_open" not in httpx.get(url + "gradio_api/info").text  # not on the API page


def test_api_refuses_without_login_and_parallel_votes_count_the_shown_pair_once(app) -> None:  # noqa: ANN001
    import httpx
    from gradio_client import Client

    url, service, sid, _ = app
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    with pytest.raises(Exception, match="not logged in"):
        client.predict(str(sid), api_name="/admin_open")
    with pytest.raises(Exception, match="not logged in"):
        client.predict(str(sid), True, api_name="/admin_analyse")
    r = httpx.post(url + "study-admin/login", data={"password": "nope"})
    assert r.status_code == 401
    r = httpx.post(url + "study-admin/login", data={"password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # back-off: not even checked

    before = len(service.votes(sid))
    out = client.predict(str(sid), False, "", "", "", "", {}, api_name="/study_start")
    assert "consent" in str(out[-1])
    out = client.predict(str(sid), True, "", "", "", "", {}, api_name="/study_start")
    trial = out[1]  # outputs without the states: store, trial, ...
    assert trial
    results: list = []

    def cast() -> None:
        results.append(client.predict(trial, "", api_name="/study_vote_left"))

    threads = [threading.Thread(target=cast) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 5
    with service.db.read() as s:
        mine = s.scalars(select(Vote).where(Vote.study_id == sid, Vote.id > 0).order_by(Vote.id.desc())).all()
    assert len(mine) == before + 1  # one vote, on the pair that was shown
    assert mine[0].assignment_id == int(trial)
