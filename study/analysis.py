"""From stored votes to scores, rater flags and metric correlations.

    votes (db) ─► golden answers ─┐
               └► test votes ─────┴► screening (golden failures, leave-one-out agreement)
                                      │ drop flagged / admin-excluded raters (optional)
                                      ▼
                  comparison counts per stimulus and per condition (codec@bpp)
                                      ▼
                  BT–Davidson and Thurstone V fits  ─► scores (+ bootstrap CIs over raters)
                                      ▼
         per-stimulus scores vs per-image metrics   per-condition scores vs set metrics
                  └──► 5-parameter logistic fit ─► SRCC / KRCC / PLCC (+ bootstrap CIs)

Per-stimulus scores are only comparable within one source image (only stimuli of the
same source are ever compared), so the per-image correlation uses scores and metric
values both centred per source ("within-source"). Per-condition scores pool all sources
(each vote compares two conditions) and are correlated with set-level metrics (FID,
FD-VGG16, CLIP ...) and with the per-condition mean of each per-image metric.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.correlation import Correlation, correlate
from study.scaling import aggregate, bootstrap, fit
from study.screening import RaterScreen, ScreeningConfig, screen
from study.service import StudyService, VoteRecord

MODELS = ("bt-davidson", "thurstone-v")
TARGET_JOD = 0.5  # the leaderboard says how many more votes bring a condition's 95% CI to ±this
OUTCOME = {"left": 1.0, "right": 0.0, "tie": 0.5}


@dataclass
class ScoreRow:
    item: str  # stimulus key "source|codec@bpp" or condition label "codec@bpp"
    level: str  # "stimulus" | "condition"
    model: str
    score: float
    ci_low: float
    ci_high: float
    comparisons: int
    source_id: str = ""
    condition: str = ""


@dataclass
class Analysis:
    study_id: int
    votes_used: int
    raters_used: int
    excluded_raters: list[int]
    screening: list[RaterScreen]
    scores: list[ScoreRow]
    correlations: list[Correlation]
    tie_param: float | None
    notes: list[str] = field(default_factory=list)
    # for plots: metric → (x, y, labels) per level
    points: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, list[str]]] = field(default_factory=dict)

    def leaderboard(self, model: str = "bt-davidson") -> list[ScoreRow]:
        rows = [r for r in self.scores if r.level == "condition" and r.model == model]
        return sorted(rows, key=lambda r: -r.score)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {
            "study_id": self.study_id, "votes_used": self.votes_used, "raters_used": self.raters_used,
            "excluded_raters": self.excluded_raters, "tie_param": self.tie_param, "notes": self.notes,
            "screening": [{k: clean(v) for k, v in s.row().items()} for s in self.screening],
            "scores": [{k: clean(v) for k, v in vars(r).items()} for r in self.scores],
            "correlations": [{k: clean(v) for k, v in c.row().items()} for c in self.correlations],
        }


def _scale(records: list[VoteRecord], key_of: dict[int, str], model: str, samples: int, seed: int,
           level: str, source_of: dict[str, str], cond_of: dict[str, str]) -> tuple[list[ScoreRow], float | None]:
    keys = sorted({key_of[r.left] for r in records} | {key_of[r.right] for r in records})
    index = {k: i for i, k in enumerate(keys)}
    pairs = [(index[key_of[r.left]], index[key_of[r.right]], OUTCOME[r.choice], r.rater) for r in records
             if key_of[r.left] != key_of[r.right]]
    if not pairs:
        return [], None
    a, b, y, g = (np.array(v) for v in zip(*pairs, strict=True))
    counts = aggregate(a, b, y, len(keys))
    fitted = fit(model, counts)
    lo, hi = (bootstrap(model, a, b, y, g, len(keys), samples=samples, seed=seed) if samples > 0
              else (np.full(len(keys), np.nan), np.full(len(keys), np.nan)))
    n_cmp = np.bincount(np.concatenate([a, b]), minlength=len(keys))
    rows = [ScoreRow(k, level, model, float(fitted.scores[i]), float(lo[i]), float(hi[i]), int(n_cmp[i]),
                     source_of.get(k, ""), cond_of.get(k, k)) for k, i in index.items()]
    return rows, fitted.tie_param


def analyze(service: StudyService, study_id: int, exclude_flagged: bool = True, bootstrap_samples: int = 200,
            correlation_samples: int = 300, seed: int = 0, screening: ScreeningConfig | None = None,
            progress: Callable[[float, str], None] | None = None) -> Analysis:
    """The whole analysis of a study's stored votes; ``progress(fraction, stage)`` is told as it goes."""
    step = progress or (lambda _f, _m: None)
    step(0.0, "reading votes")
    notes: list[str] = []
    stimuli = service.stimuli(study_id)
    stim_key = {st.id: st.key for st, _ in stimuli}
    source_of = {st.key: st.source_id for st, _ in stimuli}
    cond_label = {st.id: c.label for st, c in stimuli if c is not None}
    cond_of = {st.key: cond_label[st.id] for st, _ in stimuli if st.id in cond_label}
    all_votes = service.votes(study_id, include_golden=True, include_excluded=True)
    excluded_by_admin = {r.rater for r in service.votes(study_id)} - {
        r.rater for r in service.votes(study_id, include_excluded=False)}

    # Screening on everything.
    golden: dict[int, tuple[int, int]] = {}
    for r in all_votes:
        if r.is_golden:
            ans, fail = golden.get(r.rater, (0, 0))
            golden[r.rater] = (ans + 1, fail + (r.winner != r.golden_better))
    test = [r for r in all_votes if not r.is_golden]
    ids = sorted({r.left for r in test} | {r.right for r in test})
    idx = {s: i for i, s in enumerate(ids)}
    screens = screen(np.array([r.rater for r in test], dtype=np.int64),
                     np.array([idx[r.left] for r in test], dtype=np.int64),
                     np.array([idx[r.right] for r in test], dtype=np.int64),
                     np.array([OUTCOME[r.choice] for r in test]), len(ids), golden, screening)
    excluded = set(excluded_by_admin)
    if exclude_flagged:
        excluded |= {s.rater for s in screens if s.flagged}
    used = [r for r in test if r.rater not in excluded]
    if not used:
        notes.append("no test votes to analyse yet")

    scores: list[ScoreRow] = []
    tie_param = None
    for k, model in enumerate(MODELS):
        step(0.15 + 0.35 * k, f"scores and bootstrap ({model})")
        rows, nu = _scale(used, stim_key, model, bootstrap_samples, seed, "stimulus", source_of, cond_of)
        scores += rows
        crows, cnu = _scale(used, cond_label, model, bootstrap_samples, seed, "condition", {}, {})
        scores += crows
        if model == "bt-davidson":
            tie_param = cnu

    step(0.85, "correlations")
    correlations: list[Correlation] = []
    points: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, list[str]]] = {}
    metrics_of = {st.key: st.metrics for st, _ in stimuli if st.role == "test"}
    set_metrics = {c.label: c.set_metrics for _, c in stimuli if c is not None}
    stim_scores = {r.item: r.score for r in scores if r.level == "stimulus" and r.model == "bt-davidson"}
    cond_scores = {r.item: r.score for r in scores if r.level == "condition" and r.model == "bt-davidson"}

    # Per-image metrics, within source; over all sources, then (when a study mixes them)
    # over the photographs and over the AI-generated images alone: MISC's study found that
    # metrics agree with people less on AIGIs, and the levels "stimulus/natural" and
    # "stimulus/aigi" let a study check it.
    kind_of = {st.key: st.source_kind for st, _ in stimuli}
    kinds = sorted({kind_of[k] for k in stim_scores})
    subsets = [("stimulus", None)] + ([(f"stimulus/{kind}", kind) for kind in kinds] if len(kinds) > 1 else [])
    names = sorted({m for k in stim_scores for m in metrics_of.get(k, {})})
    for m in names:
        for level, kind in subsets:
            keys = [k for k in stim_scores if m in metrics_of.get(k, {}) and kind in (None, kind_of[k])]
            by_src: dict[str, list[str]] = {}
            for k in keys:
                by_src.setdefault(source_of[k], []).append(k)
            xs, ys, labels = [], [], []
            for grp in by_src.values():
                if len(grp) < 2:
                    continue
                mx = np.mean([metrics_of[k][m] for k in grp])
                my = np.mean([stim_scores[k] for k in grp])
                for k in grp:
                    xs.append(metrics_of[k][m] - mx)
                    ys.append(stim_scores[k] - my)
                    labels.append(k)
            if len(xs) >= 3 and np.ptp(xs) > 0:
                c = correlate(m, np.array(xs), np.array(ys), samples=correlation_samples, seed=seed, level=level)
                c.notes.append("within-source: score and metric centred per source image")
                correlations.append(c)
                points[(m, level)] = (np.array(xs), np.array(ys), labels)

    # Per-condition: set metrics and means of per-image metrics.
    cond_metric: dict[str, dict[str, float]] = {}
    for label, sm in set_metrics.items():
        cond_metric.setdefault(label, {}).update({f"set:{k}": v for k, v in sm.items()})
    for m in names:
        for label in cond_scores:
            vals = [metrics_of[k][m] for k in metrics_of if cond_of.get(k) == label and m in metrics_of[k]]
            if vals:
                cond_metric.setdefault(label, {})[f"mean:{m}"] = float(np.mean(vals))
    cnames = sorted({m for label in cond_scores for m in cond_metric.get(label, {})})
    for m in cnames:
        labels = [lab for lab in cond_scores if m in cond_metric.get(lab, {})]
        x = np.array([cond_metric[lab][m] for lab in labels])
        y = np.array([cond_scores[lab] for lab in labels])
        if len(labels) >= 3 and np.ptp(x) > 0:
            correlations.append(correlate(m, x, y, samples=correlation_samples, seed=seed, level="condition"))
            points[(m, "condition")] = (x, y, labels)
    if len(cond_scores) < 3:
        notes.append("fewer than 3 scored conditions: no per-condition correlation")

    step(1.0, "done")
    return Analysis(study_id, len(used), len({r.rater for r in used}), sorted(excluded), screens, scores,
                    correlations, tie_param, notes, points)


def more_votes_for(row: ScoreRow, target: float = TARGET_JOD) -> int | None:
    """Votes beyond ``row.comparisons`` that would shrink its 95% CI to ±``target``.

    A CI's half width falls as 1/√n with n comparisons, so n·(half / target)² are needed;
    an estimate from the current width (None while there is no interval).
    """
    half = (row.ci_high - row.ci_low) / 2
    if not (math.isfinite(half) and half > 0 and row.comparisons > 0):
        return None
    return max(0, math.ceil(row.comparisons * (half / target) ** 2 - row.comparisons))


LEADERBOARD_HEADERS = ["rank", "condition", "BT score", "CI low", "CI high", "comparisons", "Thurstone (JOD)",
                       "JOD 95% CI ±", f"more votes for ±{TARGET_JOD:g} JOD"]


def leaderboard_rows(a: Analysis) -> list[list[Any]]:
    """The Admin tab's leaderboard: BT–Davidson ranks, Thurstone JOD, CI width, votes still needed."""
    th = {r.item: r for r in a.leaderboard("thurstone-v")}
    rows = []
    for i, r in enumerate(a.leaderboard()):
        t = th.get(r.item)
        half = (t.ci_high - t.ci_low) / 2 if t else float("nan")
        rows.append([i + 1, r.item, round(r.score, 3), round(r.ci_low, 3), round(r.ci_high, 3), r.comparisons,
                     round(t.score, 3) if t else None, round(half, 3) if math.isfinite(half) else None,
                     more_votes_for(t) if t else None])
    return rows


@dataclass
class AnalysisRun:
    """The state of one study's analysis: the last result, and the run in progress if any."""

    result: Analysis | None = None
    votes: int = -1  # votes in the database when ``result`` was started
    seconds: float = float("nan")
    running: bool = False
    fraction: float = 0.0
    stage: str = ""
    error: str = ""


class AnalysisRunner:
    """Analyses in a background thread, one at a time per study and setting.

    ``ensure`` starts a run when votes arrived since the last result (or none exists) and
    returns at once; ``state`` gives the last result immediately, with the progress of a
    run under way, so the Admin tab never waits for the bootstrap.
    """

    def __init__(self, service: StudyService, bootstrap_samples: int = 200, seed: int = 0) -> None:
        self.service = service
        self.bootstrap_samples = bootstrap_samples
        self.seed = seed
        self._runs: dict[tuple[int, bool], AnalysisRun] = {}
        self._lock = threading.Lock()

    def state(self, study_id: int, exclude_flagged: bool = True) -> AnalysisRun:
        with self._lock:
            return self._runs.setdefault((study_id, exclude_flagged), AnalysisRun())

    def ensure(self, study_id: int, exclude_flagged: bool = True, force: bool = False) -> AnalysisRun:
        votes = self.service.progress(study_id).votes
        with self._lock:
            run = self._runs.setdefault((study_id, exclude_flagged), AnalysisRun())
            if run.running or (not force and run.result is not None and run.votes == votes):
                return run
            run.running, run.fraction, run.stage, run.error = True, 0.0, "starting", ""
        threading.Thread(target=self._work, args=(run, study_id, exclude_flagged, votes), daemon=True).start()
        return run

    def wait(self, study_id: int, exclude_flagged: bool = True, timeout: float = 600) -> AnalysisRun:
        end = time.monotonic() + timeout
        while (run := self.state(study_id, exclude_flagged)).running and time.monotonic() < end:
            time.sleep(0.05)
        return run

    def _work(self, run: AnalysisRun, study_id: int, exclude_flagged: bool, votes: int) -> None:
        def progress(fraction: float, stage: str) -> None:
            run.fraction, run.stage = fraction, stage

        t0 = time.perf_counter()
        try:
            result = analyze(self.service, study_id, exclude_flagged=exclude_flagged,
                             bootstrap_samples=self.bootstrap_samples, seed=self.seed, progress=progress)
            with self._lock:
                run.result, run.votes, run.seconds = result, votes, time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - shown to the admin; the last result stays
            run.error = f"{type(e).__name__}: {e}"
        finally:
            run.running = False
