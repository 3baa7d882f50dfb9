"""The Study (rater) and Admin tabs.

    Study tab:  link (?study=slug&PROLIFIC_PID=…) + the page's stored sessions ─► arrive
                    ├─ MTurk preview (assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE) ─► "accept the HIT" only
                    ├─ stored token for this study ─► resume: the unanswered pair again (no new rater)
                    └─ consent (+ Sign in with Hugging Face, per study) ─► start_session ─► token kept
                       in the browser (localStorage)
                ─► [A | (original) | B] at 1:1 device pixels + the task's question ─► A / same / B
                ─► submit_vote(the pair the page shows) ─► next_pair ─► … ─► completion code
                   (+ MTurk's external-HIT form, or the return URL)
    Admin tab:  log in once (POST /study-admin/login ─► HttpOnly cookie; study/auth.py)
                ─► create study (task, trap pairs, rater sign-in) ─► link, completion code, return URL
                ─► open / close
                ─► progress ─► analyse (leaderboard, correlations, screening, scatter) ─► exports

``build_study_tabs(config)`` adds both tabs inside an open ``gr.Blocks()`` / ``gr.Tabs()``;
launch with ``**launch_options()`` (the page script, the login routes, no run history, no
API link in the footer). No event of either tab takes the admin password as an input.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import importlib.util
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from scipy.stats import spearmanr

from db import Database
from study import serving
from study.analysis import LEADERBOARD_HEADERS, Analysis, AnalysisRun, AnalysisRunner, leaderboard_rows
from study.auth import AdminAuth, attach, routes, session_cookie
from study.backup import restore_at_start, sqlite_file, start_backup
from study.config import StudyConfig
from study.errors import DuplicateVoteError, StudyClosedError, StudyError
from study.exports import analysis_json, correlations_csv, scores_csv, votes_pwcmp_csv
from study.importer import StudyOptions, import_manifest, import_upload, reprepare_stimuli
from study.mturk import is_preview, submit_form
from study.plots import leaderboard, scatter
from study.service import HF_USER_KEY, PLATFORM_KEYS, PairView, StudyInfo, StudyService, Viewing

log = logging.getLogger("misc.study")

ASSETS = Path(__file__).resolve().parent.parent / "assets"
HEAD_JS = "<style>\n" + (ASSETS / "study.css").read_text(encoding="utf-8") + "\n</style>\n<script>\n" + \
    (ASSETS / "study.js").read_text(encoding="utf-8") + "\n</script>\n"


def launch_options() -> dict[str, Any]:
    """What ``launch`` needs for these tabs: page script/style, login routes, no run history."""
    return {"head": HEAD_JS, "app_kwargs": {"routes": routes() + serving.routes()}, "run_history": False,
            "footer_links": ["gradio", "settings"]}


CONSENT_TEXT = """\
You will see pairs of images of the same scene, side by side at their real size, and
answer one question about each pair: **{question}** — or **Same** if you cannot tell.
Take the time you need; there are no right answers, except a few easy check pairs.
Keys: **A** / ← left, **B** / → right, **T** / ↓ same.

We store your answers, response times, your screen's size and the optional information
below under a random id{platform}. You can stop at any time and come back to this page
later: it continues where you left off.
"""

AGE = ["", "under 18", "18–29", "30–49", "50–69", "70+"]
VISION = ["", "normal", "corrected to normal", "other"]
DISPLAY = ["", "phone", "tablet", "laptop", "desktop monitor"]


def check_storage(service: StudyService) -> str | None:
    """At start: can the database take a vote? One clear log line either way."""
    problem = service.db.check_writable()
    where = service.db.engine.url.render_as_string(hide_password=True)
    if problem:
        log.error("study database %s is NOT writable: %s", where, problem)
    else:
        log.info("study database %s is writable", where)
    return problem


def storage_banner(service: StudyService) -> None:
    """A warning at the top of a tab while the database cannot be written."""
    problem = service.db.check_writable()
    gr.Markdown(f"⚠️ **Votes cannot be saved at the moment.** {problem}" if problem else "",
                visible=bool(problem), elem_id="study-storage-warning")


def serve_stimuli(config: StudyConfig) -> serving.StimulusStore:
    """The prepared stimulus files, served as they are (study/serving.py's route).

    The importer wrote them once under opaque content-addressed names, so each pair hands
    the page a URL: nothing is decoded or re-encoded per vote. Every file under the folder
    becomes fetchable (Gradio's static paths too, for the admin's views), so the database
    must not live there.
    """
    folder = Path(config.stimuli_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if (db_file := sqlite_file(config.db_url)) is not None and db_file.is_relative_to(folder):
        raise StudyError(f"the study database {config.db_url} must not be inside the stimuli folder {folder}")
    gr.set_static_paths([folder])
    return serving.StimulusStore(folder)


AUTO_REFRESH_S = 10  # the Admin tab's progress and leaderboard refresh by themselves this often


def analysis_status(run: AnalysisRun) -> str:
    """One line on the analysis: running (with its stage) or when the shown one was made."""
    if run.running:
        return f"Analysing… {run.fraction:.0%} ({run.stage}); the leaderboard below is the last result."
    if run.error:
        return f"The last analysis failed: {run.error}"
    if run.result is None:
        return "No analysis yet."
    return f"Leaderboard from {run.votes} votes (analysed in {run.seconds:.1f} s); it refreshes by itself."


def _url(path: str) -> str:
    """A stimulus's URL: by its hash (study/serving.py), or for a file stored before stimuli were
    content-addressed, Gradio's static file route (the stimulus folder is a static path)."""
    p = Path(path)
    if serving.NAME.fullmatch(p.name) and p.parent.name == p.name[:2]:
        return html.escape(serving.stimulus_url(p), quote=True)
    return "gradio_api/file=" + html.escape(str(p.resolve()), quote=True)


def stage_html(view: PairView, info: StudyInfo) -> str:
    """The pair at native size: A left, (the original), B right. study.js sizes and fits it."""
    figs = [("A", "A (left)", view.left_path)]
    if view.original_path:
        figs.append(("O", "Original", view.original_path))
    figs.append(("B", "B (right)", view.right_path))
    parts = "".join(f'<figure class="misc-fig" data-side="{k}"><figcaption>{label}</figcaption>'
                    f'<img src="{_url(p)}" alt="{label}" draggable="false"></figure>' for k, label, p in figs)
    toggles = "".join(f'<button type="button" class="misc-show" data-show="{k}">{label}</button>'
                      for k, label, _ in figs)
    return (f'<div class="misc-stage" data-trial="{view.assignment_id}" data-shown="{time.time_ns()}" '
            f'data-task="{info.task}">'
            f'<p class="misc-fit-note" hidden></p><div class="misc-toggle-bar">{toggles}</div>'
            f'<div class="misc-row">{parts}</div></div>')


def progress_html(view: PairView) -> str:
    return (f'<div class="misc-progress"><span>Pair {view.position + 1} of {view.total}</span>'
            f'<progress value="{view.position}" max="{view.total}"></progress></div>')


def done_html(info: StudyInfo, platform: dict[str, str] | None = None, mturk_loopback: bool = False) -> str:
    """Thanks, the completion code, and the way back: MTurk's form post, or the return URL."""
    out = "<h3>Thank you!</h3><p>Your answers are saved.</p>"
    if info.completion_code:
        out += (f'<p>Your completion code: <code id="study-code">{html.escape(info.completion_code)}</code></p>')
    if (form := submit_form(platform, info.completion_code, mturk_loopback)) is not None:
        out += form  # an MTurk worker hands the assignment back here (no automatic redirect)
    elif info.redirect_url:
        url = html.escape(info.redirect_url, quote=True)
        out += (f'<p><a id="study-return" href="{url}">Return to the study platform</a> '
                f"(you are taken there in a few seconds).</p>")
    elif not info.completion_code:
        out += "<p>You can close this page.</p>"
    return out


def _parse_link(text: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """(URL parameters, stored sessions {study id: token}) from the page's JSON."""
    try:
        d = json.loads(text or "{}")
    except (TypeError, ValueError):
        d = {}
    d = d if isinstance(d, dict) else {}
    params = {str(k): str(v)[:200] for k, v in (d.get("params") or {}).items() if isinstance(k, str)} \
        if isinstance(d.get("params"), dict) else {}
    sessions = {str(k): str(v)[:64] for k, v in (d.get("sessions") or {}).items()} \
        if isinstance(d.get("sessions"), dict) else {}
    return params, sessions


def hf_login_problem() -> str | None:
    """Why Gradio's OAuth cannot be attached here (its packages are missing), or None."""
    missing = [m for m in ("authlib", "itsdangerous") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} (gradio[oauth]) not installed: install requirements.txt"
    return None


def build_study_tabs(config: StudyConfig | None = None, service: StudyService | None = None) -> StudyService:
    """Add the Study and Admin tabs to the Blocks being built; returns the service they use."""
    config = config or StudyConfig.from_env()
    if config.hf_login and (problem := hf_login_problem()):
        log.error("the Hugging Face sign-in is off: %s", problem)
        config = dataclasses.replace(config, hf_login=False)
    if service is None:
        restore_at_start(config)  # an empty database on a fresh Space: the last snapshot, if any
        service = StudyService(Database(config.db_url), refit_in_background=True)
        start_backup(config, service.db)
    store = serve_stimuli(config)
    if check_storage(service) is None:
        reprepare_stimuli(service.db, config)  # studies imported before blinding: served form
    auth = AdminAuth(config.admin_password)
    root = gr.context.Context.root_block
    if root is not None:
        attach(root, auth)
        serving.attach(root, store)
    _study_tab(service, config)
    _admin_tab(service, config, auth)
    return service


# ---- rater tab ---------------------------------------------------------------------------
def preview_md(info: StudyInfo) -> str:
    """An MTurk preview: what the HIT is, and that it starts once accepted (no session yet)."""
    about = info.description.strip() or CONSENT_TEXT.split("\n\n")[0].format(question=info.question, platform="")
    return f"### {info.name}\n\n{about}\n\n**This is a preview: accept the HIT to start.**"


def login_md(info: StudyInfo, available: bool, profile: gr.OAuthProfile | None) -> str:
    """What the consent screen says about signing in with Hugging Face (to this rater only)."""
    if not info.login_offered:
        return ""
    if not available:
        return ("⚠️ This study asks raters to sign in with Hugging Face, but this app offers no sign-in: "
                "please tell the study's organiser." if info.login_required else "")
    if profile is not None:
        return f"Signed in with Hugging Face as **{html.escape(profile.username)}**."
    if info.login_required:
        return ("**Sign in with Hugging Face** (the button below) to take part: your username becomes your "
                "participant id, so you keep one session in this study wherever you sign in.")
    return "You may sign in with Hugging Face (optional): then you keep one session in this study wherever you sign in."


def _study_tab(service: StudyService, config: StudyConfig) -> None:
    with gr.Tab("Study", id="study"):
        storage_banner(service)
        token = gr.State("")
        shown = gr.State((0, 0.0))  # (assignment id, server time it was sent)
        platform = gr.State({})
        link = gr.Textbox(visible=False, elem_id="study-link")  # the page's URL parameters + stored sessions
        store = gr.Textbox(visible=False)  # what the page should remember (study id, token, return URL)
        trial = gr.Textbox(visible=False, elem_id="study-trial")  # the assignment the page shows
        client = gr.Textbox(visible=False, elem_id="study-client")  # client clock + viewing conditions
        # What the page is at: "rating", "done" or "closed". A vote answers with the few outputs
        # that change (every gr.update costs Gradio a component rebuild); when it ends the session
        # or finds the study closed, this changes and the page redraws itself from the token.
        phase = gr.Textbox(visible=False, elem_id="study-phase")
        with gr.Column(visible=True, elem_id="study-consent") as consent_col:
            title = gr.Markdown("### Image study", elem_id="study-title")
            consent_md = gr.Markdown(CONSENT_TEXT.format(question="Which image looks better?", platform=""),
                                     elem_id="study-consent-text")
            login_note = gr.Markdown(elem_id="study-login-note")
            # Only where a sign-in can work (study/config.py): a LoginButton makes Gradio attach OAuth routes.
            login_btn = gr.LoginButton(visible=False, elem_id="study-login") if config.hf_login else None
            study_dd = gr.Dropdown(label="Study", choices=[], interactive=True, elem_id="study-select",
                                   allow_custom_value=True)  # ids are checked by the service
            with gr.Row():
                age = gr.Dropdown(AGE, value="", label="Age (optional)")
                vision = gr.Dropdown(VISION, value="", label="Vision (optional)")
                display = gr.Dropdown(DISPLAY, value="", label="Display (optional)")
            agree = gr.Checkbox(label="I agree to take part and to the storage of my anonymous answers",
                                elem_id="study-consent-box")
            start = gr.Button("Start", variant="primary", elem_id="study-start")
        with gr.Column(visible=False, elem_id="study-rating") as rating_col:
            progress = gr.HTML(elem_id="study-progress")
            question = gr.Markdown(elem_id="study-question")
            stage = gr.HTML(elem_id="study-stage")
            with gr.Row(elem_id="study-buttons"):
                btn_a = gr.Button("◀ A  [A]", variant="primary", elem_id="study-btn-a")
                btn_t = gr.Button("Same  [T]", elem_id="study-btn-tie")
                btn_b = gr.Button("B ▶  [B]", variant="primary", elem_id="study-btn-b")
        with gr.Column(visible=False, elem_id="study-done") as done_col:
            done = gr.HTML(elem_id="study-done-text")
        message = gr.Markdown(elem_id="study-message")

        # The message stays last (API clients read it there); the sign-in button only where it exists.
        outputs = [token, shown, platform, store, trial, study_dd, title, consent_md, consent_col, rating_col,
                   done_col, progress, question, stage, done, login_note, *([login_btn] if login_btn else []), phase,
                   message]
        names = ["token", "shown", "platform", "store", "trial", "study_dd", "title", "consent_md",
                 "consent_col", "rating_col", "done_col", "progress", "question", "stage", "done", "login_note",
                 *(["login_btn"] if login_btn else []), "phase", "message"]
        vote_outputs = [shown, trial, store, progress, stage, phase, message]

        def screen(**kw: Any) -> tuple[Any, ...]:
            return tuple(kw.get(n, gr.update()) for n in names)

        def remember(info: StudyInfo, tok: str, redirect: bool = False) -> str:
            return json.dumps({"key": str(info.id), "token": tok,
                               "redirect": info.redirect_url if redirect else None})

        def show(tok: str, info: StudyInfo, view: PairView | None, note: str = "", **kw: Any) -> tuple[Any, ...]:
            hidden = {"consent_col": gr.update(visible=False), "message": note, "token": tok,
                      "store": remember(info, tok), "study_dd": gr.update(value=str(info.id))}
            if view is None:
                params = service.platform_params(tok)
                mturk = submit_form(params, info.completion_code, config.mturk_loopback) is not None
                hidden["store"] = remember(info, tok, redirect=not mturk)  # MTurk: the form post is the way back
                return screen(**hidden, **kw, rating_col=gr.update(visible=False), done_col=gr.update(visible=True),
                              done=done_html(info, params, config.mturk_loopback), trial="", shown=(0, 0.0),
                              phase="done")
            return screen(**hidden, **kw, rating_col=gr.update(visible=True), done_col=gr.update(visible=False),
                          progress=progress_html(view), question=f"### {info.question}", stage=stage_html(view, info),
                          trial=str(view.assignment_id), shown=(view.assignment_id, time.time()), phase="rating")

        def closed(note: str) -> tuple[Any, ...]:
            """A study that is closed (or unknown): plain words, nothing else on the page."""
            return screen(consent_col=gr.update(visible=False), rating_col=gr.update(visible=False),
                          done_col=gr.update(visible=False), message=f"**{note}**", trial="", phase="closed")

        def login_screen(info: StudyInfo | None, profile: gr.OAuthProfile | None) -> dict[str, Any]:
            """The sign-in note and button for the study on the consent screen."""
            out: dict[str, Any] = {"login_note": login_md(info, config.hf_login, profile) if info else ""}
            if login_btn is not None:
                out["login_btn"] = gr.update(visible=bool(info and info.login_offered))
            return out

        def consent_for(info: StudyInfo, params: dict[str, str], profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
            on_platform = " (and the participant id of the platform that sent you)" if any(
                k in params for k in PLATFORM_KEYS) else ""
            if info.login_offered and config.hf_login:
                on_platform += (" (and, if you sign in, your Hugging Face username: it is never shown to other "
                                "raters nor written to the study's exports)")
            return screen(platform={k: v for k, v in params.items() if k in PLATFORM_KEYS},
                          study_dd=gr.update(choices=[(info.name, str(info.id))], value=str(info.id), visible=False),
                          title=f"### {info.name}", consent_md=CONSENT_TEXT.format(question=info.question,
                                                                                    platform=on_platform),
                          **login_screen(info, profile))

        def preview(info: StudyInfo) -> tuple[Any, ...]:
            """MTurk's preview of the HIT: the study in words; no consent form, no session."""
            return screen(consent_col=gr.update(visible=False), rating_col=gr.update(visible=False),
                          done_col=gr.update(visible=False), message=preview_md(info), trial="")

        def owner_ok(tok: str, info: StudyInfo, profile: gr.OAuthProfile | None) -> bool:
            """A stored session of a sign-in study resumes only for the account that started it."""
            if not info.login_offered:
                return True
            owner = service.platform_params(tok).get(HF_USER_KEY)
            if profile is None:
                return owner is None and not info.login_required
            return owner is None or owner == profile.username

        def resume(tok: str, info: StudyInfo, profile: gr.OAuthProfile | None = None,
                   params: dict[str, str] | None = None) -> tuple[Any, ...] | None:
            try:
                service.resume(tok, info.id)
                if not owner_ok(tok, info, profile):
                    return None  # another account (or signed out) on this browser: its own session
                service.note_assignment(tok, params)  # an MTurk link: the assignment to hand back now
                return show(tok, info, service.next_pair(tok))
            except StudyClosedError as e:
                return closed(str(e))
            except StudyError:
                return None  # a stale or foreign token: start afresh

        def arrive(text: str, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
            params, sessions = _parse_link(text)
            ref = params.get("study", "").strip()
            if ref:
                try:
                    info = service.find_study(ref)
                except StudyError as e:
                    return closed(str(e))
                if info.status != "open":
                    return closed(info.closed_message)
                if is_preview(params):
                    return preview(info)
                tok = sessions.get(str(info.id))
                return (resume(tok, info, profile, params) if tok else None) or consent_for(info, params, profile)
            for sid, tok in sessions.items():  # no link: a session this browser already has
                try:
                    info = service.find_study(sid)
                except StudyError:
                    continue
                if info.status == "open" and (out := resume(tok, info, profile)) is not None:
                    return out
            choices = [(n, str(i)) for i, n in service.open_studies()]
            first = service.find_study(choices[0][1]) if choices else None
            return screen(study_dd=gr.update(choices=choices, value=choices[0][1] if choices else None, visible=True),
                          platform={k: v for k, v in params.items() if k in PLATFORM_KEYS},
                          **login_screen(first, profile))

        gr.on(triggers=None, fn=arrive, inputs=[link], outputs=outputs, js="() => [window.__miscStudy.link()]",
              api_visibility="private", queue=False).then(
            None, [store], None, js="(s) => { window.__miscStudy.remember(s); }")

        def pick(study_id: str | None, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
            """A study chosen in the dropdown (no link): its sign-in note and button."""
            try:
                info = service.find_study(str(study_id)) if study_id else None
            except StudyError:
                info = None
            return screen(**login_screen(info, profile))

        study_dd.input(pick, [study_dd], outputs, api_visibility="private", queue=False)

        def begin(study_id: str | None, agreed: bool, a: str, v: str, d: str, text: str | None,
                  plat: dict | None, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
            if not agreed:
                return screen(message="⚠️ Please tick the consent box to take part.")
            if not study_id:
                return screen(message="No study is open at the moment.")
            try:
                info = service.find_study(str(study_id))
                if is_preview(plat):
                    return preview(info)
                if info.login_required and profile is None:
                    return screen(message="⚠️ Please sign in with Hugging Face first (the button above Start)."
                                  if config.hf_login else login_md(info, False, None))
                _, sessions = _parse_link(text)
                if (tok := sessions.get(str(info.id))) and (out := resume(tok, info, profile)) is not None:
                    return out  # another tab of this browser started meanwhile
                tok = service.start_session(info.id, {"age_range": a, "vision": v, "display": d}, plat or {},
                                            hf_user=profile.username if profile is not None else None)
                return show(tok, info, service.next_pair(tok))
            except StudyClosedError as e:
                return closed(str(e))
            except (StudyError, ValueError) as e:
                return screen(message=f"⚠️ {e}")

        start.click(begin, [study_dd, agree, age, vision, display, link, platform], outputs, api_name="study_start",
                    js="(s, a, g, v, d, l, p) => [s, a, g, v, d, window.__miscStudy.link(), p]",
                    show_progress="minimal", queue=False, api_visibility="undocumented").then(
            None, [store], None, js="(s) => { window.__miscStudy.remember(s); }")  # queue=False: as the votes

        def next_screen(tok: str, info: StudyInfo, view: PairView | None, note: str) -> tuple[Any, ...]:
            """A vote's answer: the next pair in place, or the phase that makes the page redraw."""
            if view is None:  # the redraw decides on the way back (return URL, or MTurk's form)
                return (0, 0.0), "", remember(info, tok), gr.skip(), gr.skip(), "done", note
            return ((view.assignment_id, time.time()), str(view.assignment_id), remember(info, tok),
                    progress_html(view), stage_html(view, info), "rating", note)

        def still(note: str, phase_now: str = "rating") -> tuple[Any, ...]:
            """A vote that changes nothing but the message (and, when closed, the phase)."""
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), phase_now, note

        def vote(choice: str) -> Callable[..., tuple[Any, ...]]:
            def handler(tok: str, sent: tuple, aid: str, ctext: str) -> tuple[Any, ...]:
                if not tok:
                    return still("⚠️ Your session has not started: tick the consent box and press Start.")
                try:
                    info = service.resume(tok)
                    assignment = int(str(aid).strip())
                except (StudyError, ValueError):
                    return still("⚠️ This page lost track of its pair: reload the page to continue.")
                try:  # the page sends JSON (clock + viewing); an API client may send the clock alone
                    d = json.loads(ctext) if ctext else {}
                except ValueError:
                    d = None
                d = d if isinstance(d, dict) else {"t": ctext}
                t0 = sent[1] if isinstance(sent, tuple | list) and len(sent) == 2 and sent[0] == assignment else 0
                rt = max(0, int(round((time.time() - t0) * 1000))) if t0 else 0
                try:
                    try:
                        _, view = service.vote_and_next(tok, assignment, choice, min(rt, 3_600_000), d.get("t"),
                                                        Viewing.parse(d))
                        return next_screen(tok, info, view, "")
                    except DuplicateVoteError:
                        note = "That pair was already answered (a double press, or another tab); the first answer stands."
                    except StudyClosedError:
                        raise
                    except StudyError as e:
                        note = f"⚠️ {e}"
                    return next_screen(tok, info, service.next_pair(tok), note)
                except StudyClosedError as e:
                    return still(f"**{e}**", "closed")
                except StudyError as e:  # e.g. the database cannot be written: say so, keep the page
                    return still(f"⚠️ {e}")
            return handler

        def redraw(tok: str, now: str) -> tuple[Any, ...]:
            """The whole page for the token, when a vote moved it to "done" or "closed"."""
            if now not in ("done", "closed") or not tok:
                return screen()
            try:
                info = service.resume(tok)
            except StudyError as e:
                return closed(str(e))
            if now == "closed":
                return closed(info.closed_message)
            try:
                return show(tok, info, service.next_pair(tok))
            except StudyClosedError as e:
                return closed(str(e))
            except StudyError as e:
                return screen(message=f"⚠️ {e}")

        phase.change(redraw, [token, phase], outputs, api_visibility="private", queue=False).then(
            None, [store], None, js="(s) => { window.__miscStudy.remember(s); }")

        stamp = "(tok, sent, aid, c) => [tok, sent, window.__miscStudy.trial(aid), window.__miscStudy.client()]"
        for btn, choice in ((btn_a, "left"), (btn_t, "tie"), (btn_b, "right")):
            # queue=False: a vote is one short POST answered at once (no queue, no event stream),
            # with only the outputs that change, all plain text: no pre/postprocessing (Gradio
            # would hand each value to a worker thread). Measured with bench.study_load (docs/STUDY.md).
            btn.click(vote(choice), [token, shown, trial, client], vote_outputs, js=stamp,
                      api_name=f"study_vote_{choice}", queue=False, show_progress="minimal",
                      preprocess=False, postprocess=False, api_visibility="undocumented").then(
                None, [store], None, js="(s) => { window.__miscStudy.remember(s); }")


# ---- admin tab ---------------------------------------------------------------------------
LOGIN_JS = """async () => {
  const el = document.querySelector('#admin-password input, #admin-password textarea');
  const msg = await window.__miscStudy.login(el ? el.value : '');
  return ['', msg];
}"""
LOGOUT_JS = "async () => { await window.__miscStudy.logout(); return ''; }"


def _admin_tab(service: StudyService, config: StudyConfig, auth: AdminAuth) -> None:
    with gr.Tab("Admin", id="admin"):
        storage_banner(service)
        if not auth.enabled:
            gr.Markdown("### Admin is disabled\nSet the environment variable `MISC_ADMIN_PASSWORD` and restart "
                        "the app to create and watch studies.", elem_id="admin-disabled")
            return
        with gr.Column(elem_id="admin-login-box") as login_col:
            # Read by the page script only and posted to /study-admin/login: never an event input.
            password = gr.Textbox(label="Admin password", type="password", elem_id="admin-password",
                                  interactive=True)
            login_b = gr.Button("Log in", variant="primary", elem_id="admin-login")
        login_msg = gr.Markdown(elem_id="admin-login-msg")
        with gr.Column(visible=False, elem_id="admin-panel") as panel:
            _admin_panel(service, config, auth, login_col, panel, login_b, password, login_msg)


def _compare_headers(first: str, second: str) -> list[str]:
    """Columns of the admin's task comparison (one JOD and rank column per study)."""
    return ["condition", f"JOD ({first})", "rank", f"JOD ({second})", "rank", "rank change"]


def _admin_panel(service: StudyService, config: StudyConfig, auth: AdminAuth, login_col: Any, panel: Any,
                 login_b: Any, password: Any, login_msg: Any) -> None:
    status = gr.Markdown(elem_id="admin-status")
    analysis_state = gr.State(None)
    runner = AnalysisRunner(service, config.bootstrap_samples, config.seed)
    timer = gr.Timer(AUTO_REFRESH_S, active=False)  # ticks only while an admin is logged in on this page
    logout_b = gr.Button("Log out", size="sm", elem_id="admin-logout")

    def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
        """Refuse without an admin session (the cookie); StudyError → a message for the admin."""
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            try:
                auth.require(args[-1])  # every guarded handler takes ``request: gr.Request`` last
                return fn(*args)
            except StudyError as e:
                raise gr.Error(f"{type(e).__name__}: {e}") from None
            except ValueError as e:  # e.g. a study id that is not a number
                raise gr.Error(f"bad input: {e}") from None
        return wrapper

    def study_choices() -> list[tuple[str, str]]:
        return [(f"{s.id}: {s.name} [{s.status}, {s.task}]", str(s.id)) for s in service.studies()]

    with gr.Accordion("Create a study", open=False):
        with gr.Row():
            name = gr.Textbox(label="Study name", elem_id="admin-name")
            task = gr.Radio([("quality: which looks better? (no original)", "quality"),
                             ("fidelity: which is closer to the original? (original shown)", "fidelity")],
                            value="quality", label="Task", elem_id="admin-task")
        with gr.Row():
            scheduler = gr.Radio(["active", "balanced"], value="active", label="Pair scheduling")
            per_session = gr.Number(value=30, precision=0, label="Pairs per session")
            golden_every = gr.Number(value=8, precision=0, label="Check pair every N pairs (0: none)")
            traps = gr.Checkbox(value=True, label="Trap pairs (identical images, 'same' expected) among the checks")
        with gr.Row():
            rater_login = gr.Radio([("none: anonymous (or the platform id from the link)", "none"),
                                    ("Hugging Face sign-in required (the username is the participant id)", "hf"),
                                    ("Hugging Face sign-in offered, not required", "hf-optional")],
                                   value="none", label="Rater sign-in", elem_id="admin-rater-login")
            description = gr.Textbox(label="Description (shown on an MTurk preview)", lines=2,
                                     elem_id="admin-description")
        manifest_path = gr.Textbox(label="bench/ manifest path on the server (JSON or CSV)", elem_id="admin-manifest")
        create_path = gr.Button("Create from manifest path", elem_id="admin-create-path")
        with gr.Row():
            up_csv = gr.File(label="Manifest CSV/JSON", file_types=[".csv", ".json"], type="filepath")
            up_imgs = gr.File(label="Images", file_count="multiple", type="filepath")
        create_up = gr.Button("Create from upload", elem_id="admin-create-upload")

    with gr.Row():
        study_dd = gr.Dropdown(label="Study", choices=[], elem_id="admin-study", allow_custom_value=True)
        refresh = gr.Button("Refresh", size="sm", elem_id="admin-refresh")
        open_b = gr.Button("Open", size="sm", elem_id="admin-open")
        close_b = gr.Button("Close", size="sm", elem_id="admin-close")
    with gr.Accordion("Study link, completion code, return URL", open=False):
        with gr.Row():
            slug = gr.Textbox(label="Link name (?study=…)", elem_id="admin-slug")
            code = gr.Textbox(label="Completion code shown at the end", elem_id="admin-code")
            redirect = gr.Textbox(label="Return URL (e.g. https://app.prolific.com/submissions/complete?cc=CODE)",
                                  elem_id="admin-redirect")
        save_link = gr.Button("Save link settings", size="sm", elem_id="admin-save-link")
    with gr.Row():
        exclude_flagged = gr.Checkbox(value=True, label="Exclude flagged raters")
        analyse_b = gr.Button("Analyse", variant="primary", elem_id="admin-analyse")
    with gr.Row():
        board_plot = gr.Plot(label="Leaderboard (per condition)", elem_id="admin-leaderboard-plot")
        with gr.Column():
            metric_dd = gr.Dropdown(label="Metric for the scatter plot", choices=[])
            scatter_plot = gr.Plot(label="Scores vs metric", elem_id="admin-scatter")
    board = gr.Dataframe(label="Leaderboard", interactive=False, elem_id="admin-leaderboard")
    corr = gr.Dataframe(label="Correlations (SRCC / KRCC / PLCC after logistic fit, 95% CI)",
                        interactive=False, elem_id="admin-correlations")
    screening = gr.Dataframe(label="Rater screening", interactive=False, elem_id="admin-screening")
    with gr.Row():
        other = gr.Number(precision=0, label="Compare with study id (e.g. the other task on the same stimuli)",
                          elem_id="admin-compare-with")
        compare_b = gr.Button("Compare tasks", size="sm", elem_id="admin-compare")
    compare = gr.Dataframe(label="Per condition in both studies (Thurstone JOD, rank)", interactive=False,
                           headers=_compare_headers("this study", "the other study"), elem_id="admin-compare-table")
    with gr.Row():
        rater_id = gr.Number(precision=0, label="Rater id")
        excl = gr.Checkbox(value=True, label="Exclude")
        excl_b = gr.Button("Set", size="sm")
    exports = gr.File(label="Exports", file_count="multiple", elem_id="admin-exports")

    def enter(request: gr.Request) -> tuple[Any, ...]:
        """After the login script (or on page load with a live session): show the panel."""
        if not auth.is_session(session_cookie(request)):
            return gr.update(visible=True), gr.update(visible=False), gr.update(), gr.update(), gr.Timer(active=False)
        choices = study_choices()
        sid = choices[-1][1] if choices else None
        return (gr.update(visible=False), gr.update(visible=True), gr.update(choices=choices, value=sid),
                progress_md(sid, request), gr.Timer(active=True))

    after = [login_col, panel, study_dd, status, timer]
    for trigger in (login_b.click, password.submit):
        trigger(None, None, [password, login_msg], js=LOGIN_JS).then(enter, None, after, api_visibility="private")
    gr.on(triggers=None, fn=enter, inputs=None, outputs=after, api_visibility="private", queue=False)
    logout_b.click(None, None, [login_msg], js=LOGOUT_JS).then(enter, None, after, api_visibility="private")

    def options(sched: str, n: float, g: float, tk: str, login: str | None, desc: str | None) -> StudyOptions:
        return StudyOptions(scheduler=sched, pairs_per_session=int(n or 30), golden_every=int(g or 0),
                            task=tk or "quality", rater_login=login or "none", description=(desc or "").strip())

    def after_create(sid: int, with_traps: bool) -> tuple[Any, str]:
        n = service.add_trap_pairs(sid) if with_traps else 0
        return (gr.update(choices=study_choices(), value=str(sid)),
                f"Created study {sid} (draft: open it to start)." + (f" {n} trap pairs added." if n else "")
                + login_warning(service.find_study(sid)))

    @guarded
    def from_path(nm: str, sched: str, n: float, g: float, path: str, tk: str, with_traps: bool,
                  login: str | None, desc: str | None, request: gr.Request) -> tuple[Any, str]:
        if not path:
            raise StudyError("give the path of a manifest file")
        sid = import_manifest(service.db, path, config, nm or None, options(sched, n, g, tk, login, desc))
        return after_create(sid, with_traps)

    @guarded
    def from_upload(nm: str, sched: str, n: float, g: float, csv_file: str | None, imgs: list[str] | None,
                    tk: str, with_traps: bool, login: str | None, desc: str | None,
                    request: gr.Request) -> tuple[Any, str]:
        if not nm:
            raise StudyError("give the study a name")
        if not csv_file:
            raise StudyError("upload the manifest CSV")
        sid = import_upload(service.db, csv_file, list(imgs or []), config, nm, options(sched, n, g, tk, login, desc))
        return after_create(sid, with_traps)

    # An API client sends every input (admin endpoints are undocumented: no defaults are filled in);
    # scripts/space_check_client.py is the reference call.
    hidden_api = {"api_visibility": "undocumented"}
    create_path.click(from_path, [name, scheduler, per_session, golden_every, manifest_path, task, traps,
                                  rater_login, description],
                      [study_dd, status], api_name="admin_create_from_path", **hidden_api)
    create_up.click(from_upload, [name, scheduler, per_session, golden_every, up_csv, up_imgs, task, traps,
                                  rater_login, description],
                    [study_dd, status], api_name="admin_create_from_upload", **hidden_api)

    def login_warning(info: Any) -> str:
        if info.login_offered and not config.hf_login:
            return (" ⚠️ Raters of this study are asked to sign in with Hugging Face, but this app offers no "
                    "sign-in: set `hf_oauth: true` in the Space's README (or MISC_STUDY_HF_LOGIN=1).")
        return ""

    def progress_md(sid: str | None, request: gr.Request | None = None) -> str:
        if not sid:
            return "No study selected."
        p = service.progress(int(sid))
        info = service.find_study(int(sid))
        text = (f"**{p.name}** ({info.task}) is **{p.status}** · raters {p.raters} ({p.finished_raters} finished) · "
                f"votes {p.votes} ({p.golden_votes} on check pairs) · test pairs with a vote "
                f"{p.pairs_with_votes}/{p.test_pairs} (min votes per pair {p.min_votes_per_pair})")
        base = _base_url(request)
        ref = info.slug or str(info.id)
        text += (f"\n\nStudy link: `{base}?study={ref}` · for Prolific: `{base}?study={ref}&PROLIFIC_PID="
                 "{{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}`"
                 f" · for MTurk (ExternalQuestion URL; MTurk adds its own parameters): `{base}?study={ref}`"
                 f" · completion code: {'`' + info.completion_code + '`' if info.completion_code else 'none'}"
                 f" · return URL: {info.redirect_url or 'none'}")
        if info.rater_login != "none":
            text += (f" · rater sign-in: Hugging Face ({'required' if info.login_required else 'optional'})"
                     + login_warning(info))
        return text

    @guarded
    def do_refresh(sid: str | None, request: gr.Request) -> tuple[Any, str]:
        ids = [c[1] for c in study_choices()]
        sid = sid if sid in ids else (ids[-1] if ids else None)
        return gr.update(choices=study_choices(), value=sid), progress_md(sid, request)

    def setter(state: str) -> Callable[..., tuple[Any, str]]:
        @guarded
        def fn(sid: str | None, request: gr.Request) -> tuple[Any, str]:
            if not sid:
                raise StudyError("choose a study first")
            service.set_status(int(sid), state)
            return gr.update(choices=study_choices(), value=sid), progress_md(sid, request)
        fn.__name__ = f"set_{state}"
        return fn

    refresh.click(do_refresh, [study_dd], [study_dd, status], api_name="admin_refresh", **hidden_api)
    @guarded
    def on_select(sid: str | None, request: gr.Request) -> str:
        return progress_md(sid, request)

    study_dd.select(on_select, [study_dd], [status], api_visibility="private")
    open_b.click(setter("open"), [study_dd], [study_dd, status], api_name="admin_open", **hidden_api)
    close_b.click(setter("closed"), [study_dd], [study_dd, status], api_name="admin_close", **hidden_api)

    @guarded
    def do_link(sid: str | None, sl: str, cc: str, url: str, request: gr.Request) -> str:
        if not sid:
            raise StudyError("choose a study first")
        service.set_link(int(sid), sl, cc, url)
        return progress_md(sid, request)

    save_link.click(do_link, [study_dd, slug, code, redirect], [status], api_name="admin_set_link", **hidden_api)

    @guarded
    def do_analyse(sid: str | None, excl_flagged: bool, request: gr.Request) -> tuple[Any, ...]:
        if not sid:
            raise StudyError("choose a study first")
        a = analysed(int(sid), excl_flagged)
        corr_rows = [[c.metric, c.level, c.n, round(c.srcc, 3), f"[{c.srcc_ci[0]:.2f}, {c.srcc_ci[1]:.2f}]",
                      round(c.krcc, 3), round(c.plcc, 3), f"[{c.plcc_ci[0]:.2f}, {c.plcc_ci[1]:.2f}]", c.fit.kind]
                     for c in a.correlations]
        scr_rows = [[s.rater, s.votes, f"{s.golden_failed}/{s.golden_answered}",
                     round(s.agreement, 3) if s.agreement == s.agreement else None, s.flagged,
                     "; ".join(s.reasons)] for s in a.screening]
        metrics = [f"{c.metric} ({c.level})" for c in a.correlations]
        first = a.correlations[0] if a.correlations else None
        folder = Path(tempfile.mkdtemp(prefix=f"study{sid}_"))
        files = []
        for fname, text in (("votes_pwcmp.csv", votes_pwcmp_csv(service, int(sid))), ("scores.csv", scores_csv(a)),
                            ("correlations.csv", correlations_csv(a)), ("analysis.json", analysis_json(a))):
            (folder / fname).write_text(text, encoding="utf-8")
            files.append(str(folder / fname))
        task_name = service.find_study(int(sid)).task
        note = progress_md(sid, request) + f"\n\nAnalysed ({task_name} task) {a.votes_used} votes from " \
            f"{a.raters_used} raters; excluded {a.excluded_raters or 'none'}." + "".join(f"\n- {n}" for n in a.notes)
        return (a, note, leaderboard(a),
                gr.update(value=leaderboard_rows(a), headers=LEADERBOARD_HEADERS),
                gr.update(value=corr_rows, headers=["metric", "level", "n", "SRCC", "SRCC 95% CI", "KRCC",
                                                    "PLCC", "PLCC 95% CI", "fit"]),
                gr.update(value=scr_rows, headers=["rater", "votes", "check pairs failed", "agreement", "flagged",
                                                   "reasons"]),
                gr.update(choices=metrics, value=metrics[0] if metrics else None),
                scatter(a, first.metric, first.level) if first else None, files)

    def analysed(sid: int, excl_flagged: bool) -> Analysis:
        """The analysis of the current votes (reused when no vote arrived since)."""
        runner.ensure(sid, excl_flagged)
        run = runner.wait(sid, excl_flagged)
        if run.error or run.result is None:
            raise StudyError(f"the analysis failed: {run.error or 'no result'}")
        return run.result

    def tick(sid: str | None, excl_flagged: bool, request: gr.Request) -> tuple[Any, ...]:
        """Every few seconds: progress, and the leaderboard of the last analysis (a new one
        starts in the background when votes arrived). Nothing without an admin session."""
        try:
            auth.require(request)
            if not sid:
                raise StudyError("no study")
            run = runner.ensure(int(sid), excl_flagged)
            text = progress_md(sid, request) + "\n\n" + analysis_status(run)
        except (StudyError, ValueError):
            return gr.update(), gr.update(), gr.update()
        if run.result is None:
            return text, gr.update(), gr.update()
        return (text, leaderboard(run.result),
                gr.update(value=leaderboard_rows(run.result), headers=LEADERBOARD_HEADERS))

    timer.tick(tick, [study_dd, exclude_flagged], [status, board_plot, board], api_visibility="private",
               show_progress="hidden")

    analyse_b.click(do_analyse, [study_dd, exclude_flagged],
                    [analysis_state, status, board_plot, board, corr, screening, metric_dd, scatter_plot, exports],
                    api_name="admin_analyse", **hidden_api)

    def pick_metric(a: Analysis | None, choice: str | None) -> Any:
        if a is None or not choice:
            return None
        metric, _, level = choice.rpartition(" (")
        return scatter(a, metric, level.rstrip(")"))

    metric_dd.change(pick_metric, [analysis_state, metric_dd], [scatter_plot], api_visibility="private")

    @guarded
    def do_compare(sid: str | None, oid: float | None, excl_flagged: bool, request: gr.Request) -> tuple[Any, str]:
        """Where two studies (say fidelity and quality on one manifest) rank conditions differently."""
        if not sid or oid is None:
            raise StudyError("choose a study and give the id of the study to compare with")
        infos = [service.find_study(int(sid)), service.find_study(int(oid))]
        boards = [{r.item: r.score for r in analysed(i.id, excl_flagged).leaderboard("thurstone-v")} for i in infos]
        common = [c for c in boards[0] if c in boards[1]]
        if len(common) < 2:
            raise StudyError("the two studies share fewer than two conditions: nothing to compare")
        ranks = [{c: k + 1 for k, c in enumerate(sorted(common, key=lambda c: -b[c]))} for b in boards]
        rows = [[c, round(boards[0][c], 3), ranks[0][c], round(boards[1][c], 3), ranks[1][c],
                 ranks[1][c] - ranks[0][c]] for c in sorted(common, key=lambda c: ranks[0][c])]
        rho = spearmanr([boards[0][c] for c in common], [boards[1][c] for c in common]).statistic
        heads = [f"{i.id}: {i.task}" for i in infos]
        return (gr.update(value=rows, headers=_compare_headers(*heads)),
                f"{len(common)} conditions; SRCC between the two studies' scores {rho:.3f}. "
                f"{sum(r[-1] != 0 for r in rows)} conditions change rank.")

    compare_b.click(do_compare, [study_dd, other, exclude_flagged], [compare, status], api_name="admin_compare",
                    **hidden_api)

    @guarded
    def do_exclude(sid: str | None, rid: float | None, flag: bool, request: gr.Request) -> str:
        if not sid or rid is None:
            raise StudyError("choose a study and a rater id")
        service.set_excluded(int(sid), int(rid), bool(flag))
        return f"Rater {int(rid)} {'excluded' if flag else 'included'}; press Analyse again."

    excl_b.click(do_exclude, [study_dd, rater_id, excl], [status], api_name="admin_exclude", **hidden_api)


def _base_url(request: Any) -> str:
    """The app's address as the admin's browser sees it (for the study link)."""
    headers = getattr(request, "headers", None) or {}
    host = headers.get("x-forwarded-host") or headers.get("host") if hasattr(headers, "get") else None
    if not host:
        return "/"
    proto = headers.get("x-forwarded-proto") or "http"
    return f"{proto}://{host}/"
