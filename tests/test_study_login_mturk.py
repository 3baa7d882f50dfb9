"""Rater identity: the Hugging Face sign-in per study, and MTurk's external-HIT hand-back.

The hub cannot be reached here: the sign-in is tested with constructed ``gr.OAuthProfile``
objects handed to the Study tab's handlers, and over HTTP with Gradio's own mocked OAuth
routes (a fake account instead of ``whoami``), which set the same session cookie the
Space's real routes set. (tests/test_study_browser_mturk.py drives the MTurk form in Chromium.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from sqlalchemy import select

from db import Rater
from study.config import StudyConfig, hf_login_enabled
from study.errors import LoginRequiredError, ManifestError, StudyError
from study.exports import votes_pwcmp_csv
from study.importer import StudyOptions, import_manifest
from study.mturk import PREVIEW_ASSIGNMENT, submit_form, submit_url
from study.service import StudyInfo
from study.ui import build_study_tabs, done_html
from tests.study_helpers import open_study, write_images_manifest

MTURK = {"assignmentId": "3AB1CD2EF", "hitId": "3HIT", "workerId": "A1WORKER", "turkSubmitTo": "https://www.mturk.com"}


def _profile(username: str) -> gr.OAuthProfile:
    return gr.OAuthProfile({"name": username.title(), "preferred_username": username,
                            "profile": f"https://huggingface.co/{username}", "picture": ""})


def _info(code: str | None = "CODE-1", redirect: str | None = "https://example.org/back") -> StudyInfo:
    return StudyInfo(1, "s", "s", "open", "quality", 2, code, redirect)


# ---- MTurk ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value, loopback, expected", [
    ("https://www.mturk.com", False, "https://www.mturk.com/mturk/externalSubmit"),
    ("https://workersandbox.mturk.com/", False, "https://workersandbox.mturk.com/mturk/externalSubmit"),
    ("http://www.mturk.com", False, None),  # not https
    ("https://www.mturk.com.evil.example", False, None),
    ("https://evil.example", False, None),
    ("https://www.mturk.com@evil.example", False, None),
    ("https://www.mturk.com:8443", False, None),
    ("https://www.mturk.com/mturk/externalSubmit", False, None),  # a path: MTurk sends the bare origin
    ("https://www.mturk.com/?x=1", False, None),
    ("https://www.mturk.com#x", False, None),
    ("//www.mturk.com", False, None),
    ("javascript:alert(1)", False, None),
    ("https://www.mturk.com\\@evil.example", False, None),
    ("", False, None),
    (None, False, None),
    ("http://127.0.0.1:8123", False, None),  # loopback only with the dev setting
    ("http://127.0.0.1:8123", True, "http://127.0.0.1:8123/mturk/externalSubmit"),
    ("http://localhost:9", True, "http://localhost:9/mturk/externalSubmit"),
    ("http://127.0.0.1.evil.example", True, None),
    ("http://localhost.evil.example:80", True, None),
    ("https://evil.example", True, None),  # the dev setting opens loopback only
])  # fmt: skip
def test_turk_submit_to_is_only_mturk_or_allowed_loopback(value: str | None, loopback: bool,
                                                          expected: str | None) -> None:
    assert submit_url(value, loopback) == expected


def test_the_form_posts_the_assignment_and_code_only_for_an_accepted_assignment() -> None:
    form = submit_form(MTURK, "C<de>&1")
    assert form is not None
    assert 'action="https://www.mturk.com/mturk/externalSubmit"' in form and 'method="POST"' in form
    assert 'name="assignmentId" value="3AB1CD2EF"' in form
    assert 'name="completionCode" value="C&lt;de&gt;&amp;1"' in form  # escaped, never raw markup
    assert 'name="completionCode" value="completed"' in submit_form(MTURK, None)  # MTurk wants a second field
    assert submit_form({**MTURK, "assignmentId": PREVIEW_ASSIGNMENT}, "C") is None
    assert submit_form({**MTURK, "assignmentId": '3AB" onclick="x'}, "C") is None
    assert submit_form({**MTURK, "turkSubmitTo": "https://evil.example"}, "C") is None
    assert submit_form({k: v for k, v in MTURK.items() if k != "turkSubmitTo"}, "C") is None
    assert submit_form({"PROLIFIC_PID": "p1"}, "C") is None and submit_form(None, "C") is None


def test_done_page_offers_the_mturk_form_instead_of_the_return_url() -> None:
    page = done_html(_info(), MTURK)
    assert 'id="study-mturk"' in page and "CODE-1" in page
    assert "study-return" not in page  # no automatic redirect away from the HIT
    plain = done_html(_info())
    assert "study-mturk" not in plain and 'id="study-return"' in plain
    evil = done_html(_info(), {**MTURK, "turkSubmitTo": "https://evil.example"})
    assert "evil.example" not in evil and "study-mturk" not in evil and "study-return" in evil


def test_mturk_preview_starts_nothing_and_a_worker_keeps_one_session(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0))
    with pytest.raises(StudyError, match="accept the HIT"):
        service.start_session(sid, platform={"assignmentId": PREVIEW_ASSIGNMENT, "hitId": "3HIT"})
    with service.db.read() as s:
        assert s.scalars(select(Rater)).all() == []
    tok = service.start_session(sid, platform=MTURK)
    assert service.platform_params(tok) == MTURK  # turkSubmitTo is stored with the link's parameters
    again = service.start_session(sid, platform={**MTURK, "assignmentId": "3NEWASSIGN"})
    assert again == tok  # one worker, one session; the assignment to hand back is the new one
    assert service.platform_params(tok)["assignmentId"] == "3NEWASSIGN"
    service.note_assignment(tok, {"assignmentId": PREVIEW_ASSIGNMENT})  # a preview changes nothing
    service.note_assignment(tok, {"assignmentId": "3THIRD", "workerId": "other"})  # the id is not rewritten
    assert service.platform_params(tok) == {**MTURK, "assignmentId": "3THIRD"}


# ---- Hugging Face sign-in: the service -------------------------------------------------------
def test_rater_login_option_is_checked_and_stored(tmp_path: Path) -> None:
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0, rater_login="hf",
                                                             description="Rate pairs of photos."))
    info = service.find_study(sid)
    assert info.rater_login == "hf" and info.login_required and info.description == "Rate pairs of photos."
    assert service.find_study(
        import_manifest(service.db, write_images_manifest(tmp_path / "b2"), config, "plain")).rater_login == "none"
    with pytest.raises(ManifestError, match="rater_login"):
        import_manifest(service.db, write_images_manifest(tmp_path / "b3"), config, "bad",
                        StudyOptions(rater_login="github"))


def test_a_signed_in_user_holds_one_session_and_never_reaches_exports(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0, rater_login="hf"))
    with pytest.raises(LoginRequiredError):
        service.start_session(sid, platform={"PROLIFIC_PID": "p1"})
    with pytest.raises(StudyError, match="username"):
        service.start_session(sid, hf_user="bad name<")
    alice = service.start_session(sid, {"age_range": "18–29"}, {"PROLIFIC_PID": "p1"}, hf_user="alice-hf")
    assert service.start_session(sid, hf_user="alice-hf") == alice  # another browser: the same session
    assert service.start_session(sid, platform={"PROLIFIC_PID": "p1"}, hf_user="bob") != alice  # the sign-in decides
    assert service.platform_params(alice) == {"PROLIFIC_PID": "p1", "hf_user": "alice-hf"}
    with service.db.read() as s:
        assert s.scalar(select(Rater.platform_id).where(Rater.token == alice)) == "hf:alice-hf"
    while (v := service.next_pair(alice)) is not None:
        service.submit_vote(alice, v.assignment_id, "left", 800)
    exported = votes_pwcmp_csv(service, sid)
    assert exported.count("\n") == 3 and "alice" not in exported  # like platform ids: not exported


def test_optional_and_off_modes_keep_sign_in_ids_apart_from_link_ids(tmp_path: Path) -> None:
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0,
                                                             rater_login="hf-optional"))
    anon = service.start_session(sid)
    alice = service.start_session(sid, hf_user="alice")
    assert anon != alice
    # A link cannot claim a signed-in user's session by writing her id into a platform parameter.
    assert service.start_session(sid, platform={"participant": "hf:alice"}) not in (alice, anon)
    off = import_manifest(service.db, write_images_manifest(tmp_path / "b2"), config, "off")
    service.set_status(off, "open")
    tok = service.start_session(off, hf_user="alice")  # rater_login none: the sign-in is not used
    assert service.platform_params(tok) == {}
    assert service.start_session(off, hf_user="alice") != tok


def test_hf_login_setting() -> None:
    assert hf_login_enabled("1") and not hf_login_enabled("off")
    env = {"SYSTEM": "spaces", "OAUTH_CLIENT_ID": "abc"}
    with pytest.MonkeyPatch.context() as mp:
        for k in env:
            mp.delenv(k, raising=False)
        assert not hf_login_enabled("auto")  # off a Space: no button (Gradio would need a local login)
        for k, v in env.items():
            mp.setenv(k, v)
        assert hf_login_enabled("auto") and not hf_login_enabled("0")
        assert StudyConfig.from_env().hf_login


# ---- Hugging Face sign-in: the Study tab's handlers -------------------------------------------
def _tabs(config: StudyConfig, service: Any) -> gr.Blocks:
    with gr.Blocks() as demo, gr.Tabs():
        build_study_tabs(config, service)
    return demo


def _handler(demo: gr.Blocks, name: str) -> tuple[Any, list[Any]]:
    fn = next(f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)
    return fn.fn, fn.outputs


def _screen(outputs: list[Any], values: tuple) -> dict[str, Any]:
    """A handler's outputs by elem_id (the token State has none: it is the first output)."""
    out = {(c.elem_id or f"#{i}"): v for i, (c, v) in enumerate(zip(outputs, values, strict=True))}
    out["token"] = values[0] if isinstance(values[0], str) else ""  # "" also when left unchanged
    return out


def _visible(update: Any) -> bool | None:
    return update.get("visible") if isinstance(update, dict) else None


def _link(study: str, sessions: dict[str, str] | None = None) -> str:
    import json
    return json.dumps({"params": {"study": study}, "sessions": sessions or {}})


def _mocked_oauth(monkeypatch: pytest.MonkeyPatch, username: str = "alice") -> None:
    """Gradio's local OAuth mock logs in the machine's hub account (whoami): a fake one here."""
    pytest.importorskip("itsdangerous")
    pytest.importorskip("authlib")
    import gradio.oauth

    info = {"access_token": "mock", "token_type": "bearer", "expires_in": 3600, "id_token": "x",
            "scope": "openid profile", "expires_at": 0,
            "userinfo": {"sub": "1", "name": username.title(), "preferred_username": username,
                         "profile": f"https://huggingface.co/{username}", "picture": ""}}
    monkeypatch.setattr(gradio.oauth, "_get_mocked_oauth_info", lambda: info)


def test_study_tab_without_sign_in_works_and_says_a_sign_in_study_cannot_start(tmp_path: Path) -> None:
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0, rater_login="hf"))
    service.set_link(sid, "needs-hf")
    plain = import_manifest(service.db, write_images_manifest(tmp_path / "b2"), config, "plain",
                            StudyOptions(pairs_per_session=2, golden_every=0))
    service.set_link(plain, "plain")
    service.set_status(plain, "open")
    demo = _tabs(config, service)  # hf_login off: no LoginButton, no OAuth routes
    assert not demo.expects_oauth
    arrive, outputs = _handler(demo, "arrive")
    begin, _ = _handler(demo, "begin")
    screen = _screen(outputs, arrive(_link("needs-hf"), None))
    assert "offers no sign-in" in screen["study-login-note"] and "study-login" not in screen
    screen = _screen(outputs, begin(str(sid), True, "", "", "", _link("needs-hf"), {}, None))
    assert "no sign-in" in screen["study-message"] and not screen["token"]
    # A study without the option: as before.
    screen = _screen(outputs, arrive(_link("plain"), None))
    assert screen["study-login-note"] == ""
    screen = _screen(outputs, begin(str(plain), True, "", "", "", _link("plain"), {}, None))
    assert screen["token"] and "Pair 1 of 2" in screen["study-progress"]


def test_sign_in_study_shows_the_button_refuses_without_profile_and_resumes_per_user(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _mocked_oauth(monkeypatch)
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0, rater_login="hf"))
    service.set_link(sid, "needs-hf")
    config.hf_login = True
    demo = _tabs(config, service)
    assert demo.expects_oauth  # the LoginButton is there: Gradio attaches its OAuth routes
    arrive, outputs = _handler(demo, "arrive")
    begin, _ = _handler(demo, "begin")

    screen = _screen(outputs, arrive(_link("needs-hf"), None))
    assert _visible(screen["study-login"]) is True and "Sign in with Hugging Face" in screen["study-login-note"]
    assert "Hugging Face username" in screen["study-consent-text"]  # the consent text says what is stored
    screen = _screen(outputs, begin(str(sid), True, "", "", "", _link("needs-hf"), {}, None))
    assert "sign in with Hugging Face first" in screen["study-message"] and not screen["token"]

    alice = _profile("alice")
    screen = _screen(outputs, arrive(_link("needs-hf"), alice))
    assert "**alice**" in screen["study-login-note"]  # to herself only
    screen = _screen(outputs, begin(str(sid), True, "", "", "", _link("needs-hf"), {}, alice))
    tok = screen["token"]
    assert tok and "Pair 1 of 2" in screen["study-progress"] and "alice" not in screen["study-stage"]
    assert service.platform_params(tok)["hf_user"] == "alice"
    stored = {str(sid): tok}
    # This browser, signed in as alice: resumes. As bob, or signed out: not alice's session.
    assert _screen(outputs, arrive(_link("needs-hf", stored), alice))["token"] == tok
    for who in (_profile("bob"), None):
        screen = _screen(outputs, arrive(_link("needs-hf", stored), who))
        assert screen["token"] != tok
        assert _visible(screen["study-consent"]) is not False
    bob = _screen(outputs, begin(str(sid), True, "", "", "", _link("needs-hf", stored), {}, _profile("bob")))
    assert bob["token"] and bob["token"] != tok
    # alice in another browser (no stored session): her own session again, no new rater.
    assert _screen(outputs, begin(str(sid), True, "", "", "", _link("needs-hf"), {}, alice))["token"] == tok


def test_sign_in_over_http_reaches_the_handler_as_a_profile(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio's OAuth session cookie (mocked sign-in) → gr.OAuthProfile in study_start."""
    import httpx
    from gradio_client import Client

    from tests.study_http import serve_study

    _mocked_oauth(monkeypatch, "carol")
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0, rater_login="hf"))
    config.hf_login = True
    with serve_study(config, service) as url:
        anon = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        out = anon.predict(str(sid), True, "", "", "", "", {}, api_name="/study_start")
        assert "sign in with Hugging Face first" in str(out[-1])
        with httpx.Client(base_url=url, follow_redirects=False, timeout=60) as http:
            r = http.get("/login/huggingface", params={"_target_url": "/?study=x"})
            assert r.status_code in (302, 307)
            r = http.get(r.headers["location"])
            cookie = re.search(r"session=([^;]+)", r.headers.get("set-cookie", ""))
        assert cookie, r.headers
        signed = Client(url, verbose=False, analytics_enabled=False, download_files=False,
                        headers={"Cookie": f"session={cookie.group(1)}"})
        out = signed.predict(str(sid), True, "", "", "", "", {}, api_name="/study_start")
        assert str(out[1]).isdigit()  # the first pair was shown
    with service.db.read() as s:
        rater = s.scalars(select(Rater).where(Rater.study_id == sid)).one()
    assert rater.platform_id == "hf:carol" and rater.platform == {"hf_user": "carol"}


def test_without_the_oauth_packages_the_app_starts_with_the_sign_in_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    import study.ui

    monkeypatch.setattr(study.ui.importlib.util, "find_spec", lambda name: None)
    service, _, config = open_study(tmp_path, StudyOptions(pairs_per_session=2, golden_every=0, rater_login="hf"))
    config.hf_login = True
    with caplog.at_level("ERROR", logger="misc.study"):
        demo = _tabs(config, service)
    assert not demo.expects_oauth  # no LoginButton: Gradio would refuse to start without the packages
    assert "sign-in is off" in caplog.text and "itsdangerous" in caplog.text
