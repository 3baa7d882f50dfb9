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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.correlation import Correlation, correlate
from study.scaling import aggregate, bootstrap, fit
from study.screening import RaterScreen, ScreeningConfig, screen
from study.service import StudyService, VoteRecord

MODELS = ("bt-davidson", "thurstone-v")
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
            correlation_samples: int = 300, seed: int = 0, screening: ScreeningConfig | None = None) -> Analysis:
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
    for model in MODELS:
        rows, nu = _scale(used, stim_key, model, bootstrap_samples, seed, "stimulus", source_of, cond_of)
        scores += rows
        crows, cnu = _scale(used, cond_label, model, bootstrap_samples, seed, "condition", {}, {})
        scores += crows
        if model == "bt-davidson":
            tie_param = cnu

    correlations: list[Correlation] = []
    points: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, list[str]]] = {}
    metrics_of = {st.key: st.metrics for st, _ in stimuli if st.role == "test"}
    set_metrics = {c.label: c.set_metrics for _, c in stimuli if c is not None}
    stim_scores = {r.item: r.score for r in scores if r.level == "stimulus" and r.model == "bt-davidson"}
    cond_scores = {r.item: r.score for r in scores if r.level == "condition" and r.model == "bt-davidson"}

    # Per-image metrics, within source.
    names = sorted({m for k in stim_scores for m in metrics_of.get(k, {})})
    for m in names:
        keys = [k for k in stim_scores if m in metrics_of.get(k, {})]
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
            c = correlate(m, np.array(xs), np.array(ys), samples=correlation_samples, seed=seed, level="stimulus")
            c.notes.append("within-source: score and metric centred per source image")
            correlations.append(c)
            points[(m, "stimulus")] = (np.array(xs), np.array(ys), labels)

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

    return Analysis(study_id, len(used), len({r.rater for r in used}), sorted(excluded), screens, scores,
                    correlations, tie_param, notes, points)
