"""The Study (rater) and Admin tabs.

    Study tab:  consent ─► start_session ─► [left | right] + A / tie / B ─► submit_vote ─► next_pair ─► … ─► thanks
    Admin tab:  password ─► create study (bench manifest path, or CSV + images upload) ─► open / close
                ─► progress ─► analyse (leaderboard, correlations, screening, scatter) ─► exports

``build_study_tabs(config)`` adds both tabs inside an open ``gr.Blocks()`` / ``gr.Tabs()``.
Keyboard shortcuts need ``HEAD_JS`` passed to ``launch(head=HEAD_JS)`` (Gradio 6 takes
``head`` in ``launch``). Admin actions re-check the password on every call.
"""

from __future__ import annotations

import hmac
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr

from db import Database
from study.analysis import LEADERBOARD_HEADERS, Analysis, AnalysisRun, AnalysisRunner, leaderboard_rows
from study.backup import restore_at_start, sqlite_file, start_backup
from study.config import StudyConfig
from study.errors import AuthError, StudyError
from study.exports import analysis_json, correlations_csv, scores_csv, votes_pwcmp_csv
from study.importer import StudyOptions, import_manifest, import_upload
from study.plots import leaderboard, scatter
from study.service import PairView, StudyService

log = logging.getLogger("misc.study")

HEAD_JS = """
<script>
(() => {
  if (window.__miscStudyKeys) return;
  window.__miscStudyKeys = true;
  const map = {a: 'study-btn-a', arrowleft: 'study-btn-a', '1': 'study-btn-a',
               b: 'study-btn-b', arrowright: 'study-btn-b', '2': 'study-btn-b',
               t: 'study-btn-tie', arrowdown: 'study-btn-tie', '0': 'study-btn-tie', '=': 'study-btn-tie'};
  document.addEventListener('keydown', (e) => {
    const tag = (e.target && e.target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || e.ctrlKey || e.metaKey || e.altKey) return;
    const id = map[(e.key || '').toLowerCase()];
    if (!id) return;
    const btn = document.getElementById(id);
    if (btn && btn.offsetParent !== null && !btn.disabled) { e.preventDefault(); btn.click(); }
  });
})();
</script>
"""

CONSENT_TEXT = """\
### Image quality study
You will see pairs of images of the same scene, side by side. Pick the one that looks
**better** overall (closer to a good photograph), or **Same** if you cannot tell.
Take the time you need; there are no right answers — except a few easy check pairs.
Keys: **A** / ← left, **B** / → right, **T** / ↓ same. To zoom, use the full-screen button at the top right of an image.

We store your answers, response times and the optional information below under a random
id; nothing identifies you. You can stop at any time.
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


def serve_stimuli(config: StudyConfig) -> None:
    """Let Gradio serve the prepared stimulus files as they are (static paths).

    The importer wrote them once, metadata-free, under opaque content-addressed names
    (study/importer.py), so each vote hands Gradio a path: nothing is decoded, re-encoded
    or copied into its cache per vote, and no served file is ever rewritten while read.
    Every file under the folder becomes fetchable, so the database must not live there.
    """
    folder = Path(config.stimuli_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if (db_file := sqlite_file(config.db_url)) is not None and db_file.is_relative_to(folder):
        raise StudyError(f"the study database {config.db_url} must not be inside the stimuli folder {folder}")
    gr.set_static_paths([folder])


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


def _progress_md(view: PairView) -> str:
    return f"**Pair {view.position + 1} of {view.total}**"


def build_study_tabs(config: StudyConfig | None = None, service: StudyService | None = None) -> StudyService:
    """Add the Study and Admin tabs to the Blocks being built; returns the service they use."""
    config = config or StudyConfig.from_env()
    if service is None:
        restore_at_start(config)  # an empty database on a fresh Space: the last snapshot, if any
        service = StudyService(Database(config.db_url), refit_in_background=True)
        start_backup(config, service.db)
    serve_stimuli(config)
    check_storage(service)
    _study_tab(service)
    _admin_tab(service, config)
    return service


# ---- rater tab ---------------------------------------------------------------------------
def _study_tab(service: StudyService) -> None:
    with gr.Tab("Study", id="study"):
        storage_banner(service)
        token = gr.State("")
        assignment = gr.State(0)
        shown_at = gr.State(0.0)
        with gr.Column(visible=True, elem_id="study-consent") as consent_col:
            gr.Markdown(CONSENT_TEXT)
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
            progress = gr.Markdown(elem_id="study-progress")
            with gr.Row(equal_height=True):
                left = gr.Image(label="A (left)", format="png", interactive=False, buttons=["fullscreen"],
                                elem_id="study-left")
                right = gr.Image(label="B (right)", format="png", interactive=False, buttons=["fullscreen"],
                                 elem_id="study-right")
            with gr.Row():
                btn_a = gr.Button("◀ A is better  [A]", variant="primary", elem_id="study-btn-a")
                btn_t = gr.Button("Same  [T]", elem_id="study-btn-tie")
                btn_b = gr.Button("B is better ▶  [B]", variant="primary", elem_id="study-btn-b")
            client_time = gr.Textbox(visible=False, elem_id="study-client-time")
        with gr.Column(visible=False, elem_id="study-done") as done_col:
            gr.Markdown("### Thank you!\nYour answers are saved. You can close this page.")
        message = gr.Markdown(elem_id="study-message")

        def list_open() -> Any:
            choices = [(n, str(i)) for i, n in service.open_studies()]
            return gr.update(choices=choices, value=choices[0][1] if choices else None)

        gr.on(triggers=None, fn=list_open, inputs=None, outputs=[study_dd], api_visibility="private", queue=False)

        outputs = [token, assignment, shown_at, consent_col, rating_col, done_col, left, right, progress, message]

        def show(tok: str, view: PairView | None, note: str = "") -> tuple[Any, ...]:
            if view is None:
                return (tok, 0, 0.0, gr.update(visible=False), gr.update(visible=False), gr.update(visible=True),
                        None, None, "", note)
            return (tok, view.assignment_id, time.time(), gr.update(visible=False), gr.update(visible=True),
                    gr.update(visible=False), view.left_path, view.right_path,
                    _progress_md(view), note)

        def stay(note: str) -> tuple[Any, ...]:
            return (*(gr.update() for _ in outputs[:-1]), f"⚠️ {note}")

        def begin(study_id: str | None, agreed: bool, a: str, v: str, d: str) -> tuple[Any, ...]:
            if not agreed:
                return stay("Please tick the consent box to take part.")
            if not study_id:
                return stay("No study is open at the moment.")
            try:
                tok = service.start_session(int(study_id), {"age_range": a, "vision": v, "display": d})
                return show(tok, service.next_pair(tok))
            except (StudyError, ValueError) as e:
                return stay(str(e))

        start.click(begin, [study_dd, agree, age, vision, display], outputs, api_name="study_start",
                    show_progress="minimal")

        def vote(choice: str):  # noqa: ANN202
            def handler(tok: str, aid: int, t0: float, ctime: str) -> tuple[Any, ...]:
                if not tok:
                    raise gr.Error("Your session has not started.")
                rt = max(0, int(round((time.time() - t0) * 1000))) if t0 else 0
                try:
                    service.submit_vote(tok, int(aid), choice, min(rt, 3_600_000), ctime or None)
                    return show(tok, service.next_pair(tok))
                except StudyError as e:
                    # A refused vote changes nothing; show the rater where they are.
                    try:
                        return show(tok, service.next_pair(tok), f"⚠️ {e}")
                    except StudyError as e2:  # e.g. the database cannot be written: say so, keep the page
                        return stay(str(e2))
            return handler

        stamp = "(tok, aid, t0, ct) => [tok, aid, t0, String(Date.now())]"
        inputs = [token, assignment, shown_at, client_time]
        for btn, choice in ((btn_a, "left"), (btn_t, "tie"), (btn_b, "right")):
            # queue=False: a vote is one short POST answered at once (no queue, no event stream);
            # measured with bench.study_load (docs/STUDY.md).
            btn.click(vote(choice), inputs, outputs, js=stamp, api_name=f"study_vote_{choice}",
                      queue=False, show_progress="minimal")


# ---- admin tab ---------------------------------------------------------------------------
def _admin_tab(service: StudyService, config: StudyConfig) -> None:
    with gr.Tab("Admin", id="admin"):
        storage_banner(service)
        if not config.admin_password:
            gr.Markdown("### Admin is disabled\nSet the environment variable `MISC_ADMIN_PASSWORD` and restart "
                        "the app to create and watch studies.", elem_id="admin-disabled")
            return
        runner = AnalysisRunner(service, config.bootstrap_samples, config.seed)
        password = gr.Textbox(label="Admin password", type="password", elem_id="admin-password")
        status = gr.Markdown(elem_id="admin-status")
        analysis_state = gr.State(None)

        def check(pw: str) -> None:
            if not hmac.compare_digest((pw or "").encode(), config.admin_password.encode()):  # type: ignore[union-attr]
                raise AuthError("wrong admin password")

        def guarded(fn):  # noqa: ANN001, ANN202
            def wrapper(pw: str, *args: Any) -> Any:
                try:
                    check(pw)
                    return fn(*args)
                except StudyError as e:
                    raise gr.Error(f"{type(e).__name__}: {e}") from None
                except ValueError as e:  # e.g. a study id that is not a number
                    raise gr.Error(f"bad input: {e}") from None
            wrapper.__name__ = fn.__name__
            return wrapper

        def study_choices() -> list[tuple[str, str]]:
            return [(f"{s.id}: {s.name} [{s.status}]", str(s.id)) for s in service.studies()]

        with gr.Accordion("Create a study", open=False):
            with gr.Row():
                name = gr.Textbox(label="Study name", elem_id="admin-name")
                scheduler = gr.Radio(["active", "balanced"], value="active", label="Pair scheduling")
                per_session = gr.Number(value=30, precision=0, label="Pairs per session")
                golden_every = gr.Number(value=8, precision=0, label="Golden pair every N pairs (0: none)")
            manifest_path = gr.Textbox(label="bench/ manifest path on the server (JSON or CSV)",
                                       elem_id="admin-manifest")
            create_path = gr.Button("Create from manifest path", elem_id="admin-create-path")
            with gr.Row():
                up_csv = gr.File(label="Manifest CSV/JSON", file_types=[".csv", ".json"], type="filepath")
                up_imgs = gr.File(label="Images", file_count="multiple", type="filepath")
            create_up = gr.Button("Create from upload", elem_id="admin-create-upload")

        with gr.Row():
            study_dd = gr.Dropdown(label="Study", choices=[], elem_id="admin-study", allow_custom_value=True)
            refresh = gr.Button("Refresh", size="sm")
            open_b = gr.Button("Open", size="sm", elem_id="admin-open")
            close_b = gr.Button("Close", size="sm", elem_id="admin-close")
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
        screening = gr.Dataframe(label="Rater screening", interactive=False)
        with gr.Row():
            rater_id = gr.Number(precision=0, label="Rater id")
            excl = gr.Checkbox(value=True, label="Exclude")
            excl_b = gr.Button("Set", size="sm")
        exports = gr.File(label="Exports", file_count="multiple", elem_id="admin-exports")

        def options(sched: str, n: float, g: float) -> StudyOptions:
            return StudyOptions(scheduler=sched, pairs_per_session=int(n or 30), golden_every=int(g or 0))

        def after_create(sid: int) -> tuple[Any, str]:
            return gr.update(choices=study_choices(), value=str(sid)), f"Created study {sid} (draft: open it to start)."

        @guarded
        def from_path(nm: str, sched: str, n: float, g: float, path: str) -> tuple[Any, str]:
            if not path:
                raise StudyError("give the path of a manifest file")
            return after_create(import_manifest(service.db, path, config, nm or None, options(sched, n, g)))

        @guarded
        def from_upload(nm: str, sched: str, n: float, g: float, csv_file: str | None,
                        imgs: list[str] | None) -> tuple[Any, str]:
            if not nm:
                raise StudyError("give the study a name")
            if not csv_file:
                raise StudyError("upload the manifest CSV")
            return after_create(import_upload(service.db, csv_file, list(imgs or []), config, nm,
                                              options(sched, n, g)))

        create_path.click(from_path, [password, name, scheduler, per_session, golden_every, manifest_path],
                          [study_dd, status], api_name="admin_create_from_path")
        create_up.click(from_upload, [password, name, scheduler, per_session, golden_every, up_csv, up_imgs],
                        [study_dd, status], api_name="admin_create_from_upload")

        def progress_md(sid: str | None) -> str:
            if not sid:
                return "No study selected."
            p = service.progress(int(sid))
            return (f"**{p.name}** is **{p.status}** · raters {p.raters} ({p.finished_raters} finished) · "
                    f"votes {p.votes} ({p.golden_votes} golden) · test pairs with a vote "
                    f"{p.pairs_with_votes}/{p.test_pairs} (min votes per pair {p.min_votes_per_pair})")

        @guarded
        def do_refresh(sid: str | None) -> tuple[Any, str]:
            ids = [c[1] for c in study_choices()]
            sid = sid if sid in ids else (ids[-1] if ids else None)
            return gr.update(choices=study_choices(), value=sid), progress_md(sid)

        def setter(state: str):  # noqa: ANN202
            @guarded
            def fn(sid: str | None) -> tuple[Any, str]:
                if not sid:
                    raise StudyError("choose a study first")
                service.set_status(int(sid), state)
                return gr.update(choices=study_choices(), value=sid), progress_md(sid)
            return fn

        refresh.click(do_refresh, [password, study_dd], [study_dd, status], api_name="admin_refresh")
        password.submit(do_refresh, [password, study_dd], [study_dd, status], api_visibility="private")
        study_dd.select(guarded(progress_md), [password, study_dd], [status], api_visibility="private")
        open_b.click(setter("open"), [password, study_dd], [study_dd, status], api_name="admin_open")
        close_b.click(setter("closed"), [password, study_dd], [study_dd, status], api_name="admin_close")

        @guarded
        def do_analyse(sid: str | None, excl_flagged: bool) -> tuple[Any, ...]:
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
            note = progress_md(sid) + f"\n\nAnalysed {a.votes_used} votes from {a.raters_used} raters; excluded " \
                f"{a.excluded_raters or 'none'}." + ("".join(f"\n- {n}" for n in a.notes))
            return (a, note, leaderboard(a),
                    gr.update(value=leaderboard_rows(a), headers=LEADERBOARD_HEADERS),
                    gr.update(value=corr_rows, headers=["metric", "level", "n", "SRCC", "SRCC 95% CI", "KRCC",
                                                        "PLCC", "PLCC 95% CI", "fit"]),
                    gr.update(value=scr_rows, headers=["rater", "votes", "golden failed", "agreement", "flagged",
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

        def tick(pw: str, sid: str | None, excl_flagged: bool) -> tuple[Any, ...]:
            """Every few seconds: progress, and the leaderboard of the last analysis (a new one
            starts in the background when votes arrived)."""
            try:
                check(pw)
                if not sid:
                    raise StudyError("no study")
                run = runner.ensure(int(sid), excl_flagged)
                text = progress_md(sid) + "\n\n" + analysis_status(run)
            except (StudyError, ValueError):
                return gr.update(), gr.update(), gr.update()
            if run.result is None:
                return text, gr.update(), gr.update()
            return (text, leaderboard(run.result),
                    gr.update(value=leaderboard_rows(run.result), headers=LEADERBOARD_HEADERS))

        gr.Timer(AUTO_REFRESH_S).tick(tick, [password, study_dd, exclude_flagged], [status, board_plot, board],
                                       api_visibility="private", show_progress="hidden")

        analyse_b.click(do_analyse, [password, study_dd, exclude_flagged],
                        [analysis_state, status, board_plot, board, corr, screening, metric_dd, scatter_plot, exports],
                        api_name="admin_analyse")

        def pick_metric(a: Analysis | None, choice: str | None) -> Any:
            if a is None or not choice:
                return None
            metric, _, level = choice.rpartition(" (")
            return scatter(a, metric, level.rstrip(")"))

        metric_dd.change(pick_metric, [analysis_state, metric_dd], [scatter_plot], api_visibility="private")

        @guarded
        def do_exclude(sid: str | None, rid: float | None, flag: bool) -> str:
            if not sid or rid is None:
                raise StudyError("choose a study and a rater id")
            service.set_excluded(int(sid), int(rid), bool(flag))
            return f"Rater {int(rid)} {'excluded' if flag else 'included'}; press Analyse again."

        excl_b.click(do_exclude, [password, study_dd, rater_id, excl], [status], api_name="admin_exclude")
