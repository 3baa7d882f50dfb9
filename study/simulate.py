"""Simulated raters with known true scores, run through the real platform.

    two true scores per stimulus, MISC's two axes (condition effect + per-image deviation):
        q (quality: does it look good?) and f (fidelity: is it faithful to the original?),
        correlated across conditions by ``axis_rho``
        ─► manifest + tiny images
        ─► create_study (task quality or fidelity) ─► raters: start_session / next_pair /
           submit_vote (the real code), judging the task's own axis:
             good rater:   prefers left if s_L − s_R + N(0, σ√2) > 0; tie if |·| < τ
             random rater: left / right / tie uniformly, golden pairs included
        ─► analyze ─► estimated vs true scores, SRCC, flagged raters

``python -m study.simulate`` prints the table quoted in docs/STUDY.md; ``--task both`` runs a
quality and a fidelity study on the same stimuli and says how far their rankings differ and
whether each study recovers its own axis rather than the other.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.stats import spearmanr
from sqlalchemy import select

from db import Assignment, Database, Rater
from study.analysis import Analysis, ScoreRow, analyze
from study.config import StudyConfig
from study.importer import StudyOptions, import_manifest
from study.service import StudyService


@dataclass
class SimulationSpec:
    sources: int = 6
    conditions: int = 6
    good_raters: int = 20
    random_raters: int = 4
    pairs_per_session: int = 36
    golden_every: int = 6
    noise: float = 1.0  # σ of each stimulus' perceived quality (Thurstone case V)
    tie_band: float = 0.25
    scheduler: str = "active"
    seed: int = 0
    task: str = "quality"  # "quality" (raters judge q) | "fidelity" (raters judge f, the original shown)
    axis_rho: float = 0.3  # correlation of the conditions' fidelity effects with their quality effects


@dataclass
class SimulationResult:
    spec: SimulationSpec
    analysis: Analysis
    true_condition: dict[str, float]
    true_stimulus: dict[str, float]
    random_raters: set[int]
    srcc_condition: dict[str, float]
    srcc_stimulus: dict[str, float]
    votes: int
    analysis_seconds: float = float("nan")  # wall time of analyze() on the stored votes
    truths: dict[str, Truth] = field(default_factory=dict)  # both axes: "quality", "fidelity"

    def condition_scores(self, model: str = "thurstone-v") -> dict[str, float]:
        return {r.item: r.score for r in self.analysis.scores if r.level == "condition" and r.model == model}

    @property
    def flagged(self) -> set[int]:
        return {s.rater for s in self.analysis.screening if s.flagged}

    def table(self) -> str:
        def cell(r: ScoreRow | None) -> str:
            return f"{r.score:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]" if r else "–"

        est = {m: {r.item: r for r in self.analysis.scores if r.level == "condition" and r.model == m}
               for m in ("bt-davidson", "thurstone-v")}
        lines = ["| condition | true | BT–Davidson [95% CI] | Thurstone V, JOD [95% CI] |", "|---|---|---|---|"]
        for c in sorted(self.true_condition, key=lambda k: -self.true_condition[k]):
            bt, th = est["bt-davidson"].get(c), est["thurstone-v"].get(c)
            lines.append(f"| {c} | {self.true_condition[c]:+.2f} | {cell(bt)} | {cell(th)} |")
        lines.append("")
        lines.append(f"votes {self.votes}; SRCC true vs estimated — per condition: "
                     + ", ".join(f"{m} {v:.3f}" for m, v in self.srcc_condition.items())
                     + "; per stimulus (within source): "
                     + ", ".join(f"{m} {v:.3f}" for m, v in self.srcc_stimulus.items()))
        hit = self.flagged & self.random_raters
        lines.append(f"random raters {sorted(self.random_raters)}; flagged {sorted(self.flagged)} "
                     f"({len(hit)}/{len(self.random_raters)} random caught, "
                     f"{len(self.flagged - self.random_raters)} good raters flagged)")
        return "\n".join(lines)


def _tiny_png(path: Path, rng: np.random.Generator) -> None:
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)


@dataclass
class Truth:
    """The true scores of one axis: per condition and per stimulus key."""

    condition: dict[str, float]
    stimulus: dict[str, float]


def write_manifest(folder: Path, spec: SimulationSpec) -> tuple[Path, Truth, Truth]:
    """The stimuli (the same for either task) and the true quality and fidelity scores.

    Fidelity is drawn from its own generator, so the quality scores (and the manifest's
    first metrics) are those of the single-axis simulation documented in docs/STUDY.md.
    """
    rng = np.random.default_rng(spec.seed)
    frng = np.random.default_rng(spec.seed + 2)
    folder.mkdir(parents=True, exist_ok=True)
    cond_effect = np.linspace(-2.0, 2.0, spec.conditions) + rng.normal(0, 0.1, spec.conditions)
    # Fidelity effects: correlation exactly ρ with the quality effects, the same spread.
    centred = cond_effect - cond_effect.mean()
    own = frng.permutation(centred)
    own = own - (own @ centred) / (centred @ centred) * centred  # the part unrelated to quality
    own *= np.linalg.norm(centred) / max(float(np.linalg.norm(own)), 1e-12)
    fid_effect = spec.axis_rho * centred + np.sqrt(1 - spec.axis_rho ** 2) * own
    conds = [(f"codec{k}", 0.01 * (k + 1)) for k in range(spec.conditions)]
    true_c = {f"{c}@{b:g}": float(e) for (c, b), e in zip(conds, cond_effect, strict=True)}
    true_fc = {f"{c}@{b:g}": float(e) for (c, b), e in zip(conds, fid_effect, strict=True)}
    true_fs: dict[str, float] = {}
    true_s: dict[str, float] = {}
    rows, crow = [], []
    for s in range(spec.sources):
        src = f"img{s:02d}"
        ref = folder / f"{src}_ref.png"
        _tiny_png(ref, rng)
        for (codec, bpp), e, ef in zip(conds, cond_effect, fid_effect, strict=True):
            q = float(e + rng.normal(0, 0.3))
            key = f"{src}|{codec}@{bpp:g}"
            true_s[key] = q
            true_fs[key] = f = float(ef + frng.normal(0, 0.3))
            p = folder / f"{src}_{codec}.png"
            _tiny_png(p, rng)
            rows.append({"source_id": src, "codec": codec, "target_bpp": bpp, "real_bpp": bpp * 0.95,
                         "path": p.name, "reference_path": ref.name,
                         "metrics": {"good_metric": q + float(rng.normal(0, 0.3)),
                                     "noise_metric": float(rng.normal()),
                                     "fidelity_metric": f + float(frng.normal(0, 0.3))}})
    for (codec, bpp), e in zip(conds, cond_effect, strict=True):
        crow.append({"codec": codec, "target_bpp": bpp,
                     "metrics": {"FD-sim": float(50 - 10 * e + rng.normal(0, 2))}})
    path = folder / "manifest.json"
    path.write_text(json.dumps({"format": "misc-study-manifest/1", "name": "simulation",
                                "stimuli": rows, "conditions": crow}, indent=1))
    return path, Truth(true_c, true_s), Truth(true_fc, true_fs)


def run(spec: SimulationSpec, workdir: Path, bootstrap_samples: int = 100, db_url: str | None = None,
        correlation_samples: int = 100) -> SimulationResult:
    """Simulated raters vote through StudyService; ``db_url``: any SQLAlchemy URL (default:
    a SQLite file in ``workdir``)."""
    if spec.task not in ("quality", "fidelity"):
        raise ValueError(f"task must be 'quality' or 'fidelity', got {spec.task!r}")
    rng = np.random.default_rng(spec.seed + 1)
    manifest, quality_truth, fidelity_truth = write_manifest(workdir / "bench", spec)
    truth = quality_truth if spec.task == "quality" else fidelity_truth
    true_c, true_s = truth.condition, truth.stimulus
    config = StudyConfig(db_url=db_url or str(workdir / "study.db"), stimuli_dir=workdir / "stimuli")
    db = Database(config.db_url)
    service = StudyService(db, seed=spec.seed)
    study_id = import_manifest(db, manifest, config, options=StudyOptions(
        scheduler=spec.scheduler, pairs_per_session=spec.pairs_per_session, golden_every=spec.golden_every,
        task=spec.task))
    service.set_status(study_id, "open")
    quality = {st.id: (true_s.get(st.key, 0.0) if st.role == "test" else (10.0 if st.role == "reference" else -10.0))
               for st, _ in service.stimuli(study_id)}
    kinds = ["good"] * spec.good_raters + ["random"] * spec.random_raters
    rng.shuffle(kinds)
    random_ids: set[int] = set()
    tokens = []
    for kind in kinds:
        tokens.append((kind, service.start_session(study_id, {"vision": "normal"})))
    votes = 0
    for kind, token in tokens:
        with db.read() as s:
            rid = s.scalar(select(Rater.id).where(Rater.token == token))
        if kind == "random":
            random_ids.add(int(rid))  # type: ignore[arg-type]
        while (view := service.next_pair(token)) is not None:
            with db.read() as s:
                a = s.get(Assignment, view.assignment_id)
                ql, qr = quality[a.left_stimulus_id], quality[a.right_stimulus_id]  # type: ignore[union-attr]
            if kind == "good":
                d = ql - qr + rng.normal(0, spec.noise * np.sqrt(2))
                choice = "tie" if abs(d) < spec.tie_band else ("left" if d > 0 else "right")
            else:
                choice = str(rng.choice(["left", "right", "tie"]))
            service.submit_vote(token, view.assignment_id, choice, int(rng.integers(500, 4000)))
            votes += 1
    t0 = time.perf_counter()
    result = analyze(service, study_id, bootstrap_samples=bootstrap_samples, correlation_samples=correlation_samples,
                     seed=spec.seed)
    analysis_seconds = time.perf_counter() - t0
    srcc_c, srcc_s = {}, {}
    for model in ("bt-davidson", "thurstone-v"):
        cond = {r.item: r.score for r in result.scores if r.level == "condition" and r.model == model}
        keys = sorted(cond)
        srcc_c[model] = float(spearmanr([cond[k] for k in keys], [true_c[k] for k in keys])[0])
        stim = {r.item: r.score for r in result.scores if r.level == "stimulus" and r.model == model}
        # within source: centre both, then rank over all stimuli
        xs, ys = [], []
        for src in {k.split("|")[0] for k in stim}:
            ks = [k for k in stim if k.startswith(src + "|")]
            ms, mt = np.mean([stim[k] for k in ks]), np.mean([true_s[k] for k in ks])
            xs += [stim[k] - ms for k in ks]
            ys += [true_s[k] - mt for k in ks]
        srcc_s[model] = float(spearmanr(xs, ys)[0])
    db.dispose()
    return SimulationResult(spec, result, true_c, true_s, random_ids, srcc_c, srcc_s, votes, analysis_seconds,
                            {"quality": quality_truth, "fidelity": fidelity_truth})


def compare_tasks(quality: SimulationResult, fidelity: SimulationResult) -> str:
    """A quality and a fidelity study of the same stimuli: where their condition rankings part.

    Each study's Thurstone scores are set against both true axes: a study that measures its
    own question recovers its own axis (SRCC near 1) and the other only as far as the two
    axes agree (ρ of the simulation).
    """
    lines = ["| study | SRCC with true quality | SRCC with true fidelity |", "|---|---|---|"]
    for res in (quality, fidelity):
        est = res.condition_scores()
        keys = sorted(est)
        cells = [float(spearmanr([est[k] for k in keys], [res.truths[a].condition[k] for k in keys])[0])
                 for a in ("quality", "fidelity")]
        lines.append(f"| {res.spec.task} | {cells[0]:.3f} | {cells[1]:.3f} |")
    a, b = quality.condition_scores(), fidelity.condition_scores()
    common = sorted(set(a) & set(b))
    rank_a = {c: k for k, c in enumerate(sorted(common, key=lambda c: -a[c]))}
    rank_b = {c: k for k, c in enumerate(sorted(common, key=lambda c: -b[c]))}
    rho = float(spearmanr([a[c] for c in common], [b[c] for c in common])[0])
    lines += ["", f"{len(common)} conditions; SRCC between the two studies' scores {rho:.3f}; "
              f"{sum(rank_a[c] != rank_b[c] for c in common)} change rank (true axes' correlation "
              f"ρ = {quality.spec.axis_rho:g})."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--good", type=int, default=20)
    ap.add_argument("--random", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=36)
    ap.add_argument("--scheduler", default="active", choices=["active", "balanced"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=200, help="bootstrap samples of the scores (admin: 200)")
    ap.add_argument("--correlation-samples", type=int, default=300,
                    help="bootstrap samples of each correlation (admin: 300)")
    ap.add_argument("--db", default=None, help="SQLAlchemy URL of an empty database (default: a fresh SQLite file)")
    ap.add_argument("--task", default="quality", choices=["quality", "fidelity", "both"],
                    help="the study's question; both: one study of each on the same stimuli, compared")
    ap.add_argument("--axis-rho", type=float, default=0.3,
                    help="correlation of the true fidelity and quality effects across conditions")
    args = ap.parse_args()
    if args.task == "both" and args.db:
        ap.error("--task both makes two studies: it needs fresh SQLite files (no --db)")
    results = {}
    for task in (("quality", "fidelity") if args.task == "both" else (args.task,)):
        spec = SimulationSpec(good_raters=args.good, random_raters=args.random, pairs_per_session=args.pairs,
                              scheduler=args.scheduler, seed=args.seed, task=task, axis_rho=args.axis_rho)
        with tempfile.TemporaryDirectory() as d:
            res = results[task] = run(spec, Path(d), bootstrap_samples=args.bootstrap, db_url=args.db,
                                      correlation_samples=args.correlation_samples)
        print(f"## task: {task}\n")
        print(res.table())
        print(f"analysis of {res.votes} votes: {res.analysis_seconds:.2f} s (bootstrap {args.bootstrap}, "
              f"correlation bootstrap {args.correlation_samples})")
        print()
        print("| metric | level | n | SRCC [95% CI] | KRCC | PLCC after fit [95% CI] | fit |")
        print("|---|---|---|---|---|---|---|")
        for c in res.analysis.correlations:
            print(f"| {c.metric} | {c.level} | {c.n} | {c.srcc:.3f} [{c.srcc_ci[0]:.2f}, {c.srcc_ci[1]:.2f}] | "
                  f"{c.krcc:.3f} | {c.plcc:.3f} [{c.plcc_ci[0]:.2f}, {c.plcc_ci[1]:.2f}] | {c.fit.kind} |")
        print()
    if len(results) == 2:
        print("## the two tasks compared\n")
        print(compare_tasks(results["quality"], results["fidelity"]))


if __name__ == "__main__":
    main()
