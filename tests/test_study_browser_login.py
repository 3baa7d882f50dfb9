"""The Hugging Face sign-in in headless Chromium, with Gradio's mocked OAuth routes.

Off a Space Gradio's LoginButton logs in the machine's own hub account (``whoami``); here
a fake account stands in for it, so the page goes through the same redirects and gets the
same signed session cookie as on a Space. Needs gradio[oauth]'s packages (requirements.txt).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from db import Rater
from study.importer import StudyOptions
from tests.study_helpers import open_study
from tests.study_http import serve_study
from tests.test_study_browser import CHROMIUM, T
from tests.test_study_login_mturk import _mocked_oauth

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]


def test_sign_in_study_needs_the_button_then_starts_as_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                chromium) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    _mocked_oauth(monkeypatch, "dora")
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0, rater_login="hf"))
    service.set_link(sid, "needs-hf")
    config.hf_login = True
    with serve_study(config, service) as url:
        page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(T)
        page.goto(url + "?study=needs-hf")
        expect(page.locator("#study-login-note")).to_contain_text("Sign in with Hugging Face", timeout=T)
        expect(page.locator("#study-login")).to_be_visible()
        page.locator("#study-consent-box input[type=checkbox]").check()
        page.locator("#study-start").click()
        expect(page.locator("#study-message")).to_contain_text("sign in with Hugging Face first", timeout=T)
        page.locator("#study-login").click()  # → /login/huggingface → (mocked) callback → back to the link
        expect(page.locator("#study-login-note")).to_contain_text("dora", timeout=T)
        assert "study=needs-hf" in page.url
        page.locator("#study-consent-box input[type=checkbox]").check()
        page.locator("#study-start").click()
        expect(page.locator("#study-progress")).to_contain_text("Pair 1 of 2", timeout=T)
    with service.db.read() as s:
        rater = s.scalars(select(Rater).where(Rater.study_id == sid)).one()
    assert rater.platform_id == "hf:dora"
