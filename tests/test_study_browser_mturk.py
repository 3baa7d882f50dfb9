"""An MTurk worker in headless Chromium: the preview starts nothing; an accepted HIT ends with
the external-HIT form, posted to a local stand-in of MTurk's submit endpoint.

The stand-in is a plain HTTP server on loopback, allowed as ``turkSubmitTo`` only because
the test's StudyConfig sets ``mturk_loopback`` (MISC_STUDY_MTURK_LOOPBACK).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select

from db import Rater, Vote
from study.importer import StudyOptions
from tests.study_helpers import open_study
from tests.study_http import serve_study
from tests.test_study_browser import CHROMIUM, T

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]


class _MTurk(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, list[str]]]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        type(self).received.append((self.path, parse_qs(body)))
        page = b"<html><body><h1 id='mturk-ok'>HIT submitted</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


def test_mturk_worker_previews_then_finishes_and_submits_the_hit(tmp_path: Path, chromium) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    stand_in = ThreadingHTTPServer(("127.0.0.1", 0), _MTurk)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    turk = f"http://127.0.0.1:{stand_in.server_address[1]}"
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0,
                                                             description="Compare two photos, twice."))
    config.mturk_loopback = True
    try:
        with serve_study(config, service) as url:
            service.set_link(sid, "hit", "MT-7Q", url + "?returned=1")  # a return URL that MTurk workers must not get
            page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(T)
            page.goto(url + "?study=hit&assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=3HIT")
            expect(page.locator("#study-message")).to_contain_text("accept the HIT to start", timeout=T)
            expect(page.locator("#study-message")).to_contain_text("Compare two photos, twice.")
            expect(page.locator("#study-start")).to_be_hidden()

            page.goto(url + f"?study=hit&assignmentId=3ASSIGN9&hitId=3HIT&workerId=A2W&turkSubmitTo={turk}")
            expect(page.locator("#study-title")).not_to_contain_text("Image study", timeout=T)
            page.locator("#study-consent-box input[type=checkbox]").check()
            page.locator("#study-start").click()
            for n in (1, 2):
                expect(page.locator("#study-progress")).to_contain_text(f"Pair {n} of 2", timeout=T)
                page.locator("#study-btn-a").click()
            expect(page.locator("#study-code")).to_have_text("MT-7Q", timeout=T)
            page.locator("#study-mturk-submit").click()
            expect(page.locator("#mturk-ok")).to_be_visible(timeout=T)
            assert page.url.startswith(turk)  # the form's post, not the study's return URL
    finally:
        stand_in.shutdown()
    assert _MTurk.received == [("/mturk/externalSubmit", {"assignmentId": ["3ASSIGN9"], "completionCode": ["MT-7Q"]})]
    with service.db.read() as s:
        rater = s.scalars(select(Rater).where(Rater.study_id == sid)).one()  # the preview started nothing
        assert rater.platform_id == "A2W" and rater.platform["turkSubmitTo"] == turk
        assert s.scalar(select(func.count(Vote.id)).where(Vote.rater_id == rater.id)) == 2
