"""Simulated raters with known true scores, run through the real platform.

    true quality q (condition effect + per-image deviation) ─► manifest + tiny images
        ─► create_study ─► raters: start_session / next_pair / submit_vote (the real code)
             good rater:   prefers left if q_L − q_R + N(0, σ√2) > 0; tie if |·| < τ
             random rater: left / right / tie uniformly, golden pairs included
        ─► analyze ─► estimated vs true scores, SRCC, flagged raters

``python -m study.simulate`` prints the table quoted in docs/STUDY.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
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


def write_manifest(folder: Path, spec: SimulationSpec) -> tuple[Path, dict[str, float], dict[str, float]]:
    rng = np.random.default_rng(spec.seed)
    folder.mkdir(parents=True, exist_ok=True)
    cond_effect = np.linspace(-2.0, 2.0, spec.conditions) + rng.normal(0, 0.1, spec.conditions)
    conds = [(f"codec{k}", 0.01 * (k + 1)) for k in range(spec.conditions)]
    true_c = {f"{c}@{b:g}": float(e) for (c, b), e in zip(conds, cond_effect, strict=True)}
    true_s: dict[str, float] = {}
    rows, crow = [], []
    for s in range(spec.sources):
        src = f"img{s:02d}"
        ref = folder / f"{src}_ref.png"
        _tiny_png(ref, rng)
        for (codec, bpp), e in zip(conds, cond_effect, strict=True):
            q = float(e + rng.normal(0, 0.3))
            key = f"{src}|{codec}@{bpp:g}"
            true_s[key] = q
            p = folder / f"{src}_{codec}.png"
            _tiny_png(p, rng)
            rows.append({"source_id": src, "codec": codec, "target_bpp": bpp, "real_bpp": bpp * 0.95,
                         "path": p.name, "reference_path": ref.name,
                         "metrics": {"good_metric": q + float(rng.normal(0, 0.3)),
                                     "noise_metric": float(rng.normal())}})
    for (codec, bpp), e in zip(conds, cond_effect, strict=True):
        crow.append({"codec": codec, "target_bpp": bpp,
                     "metrics": {"FD-sim": float(50 - 10 * e + rng.normal(0, 2))}})
    path = folder / "manifest.json"
    path.write_text(json.dumps({"format": "misc-study-manifest/1", "name": "simulation",
                                "stimuli": rows, "conditions": crow}, indent=1))
    return path, true_c, true_s


def run(spec: SimulationSpec, workdir: Path, bootstrap_samples: int = 100, db_url: str | None = None,
        correlation_samples: int = 100) -> SimulationResult:
    """Simulated raters vote through StudyService; ``db_url``: any SQLAlchemy URL (default:
    a SQLite file in ``workdir``)."""
    rng = np.random.default_rng(spec.seed + 1)
    manifest, true_c, true_s = write_manifest(workdir / "bench", spec)
    config = StudyConfig(db_url=db_url or str(workdir / "study.db"), stimuli_dir=workdir / "stimuli")
    db = Database(config.db_url)
    service = StudyService(db, seed=spec.seed)
    study_id = import_manifest(db, manifest, config, options=StudyOptions(
        scheduler=spec.scheduler, pairs_per_session=spec.pairs_per_session, golden_every=spec.golden_every))
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
    return SimulationResult(spec, result, true_c, true_s, random_ids, srcc_c, srcc_s, votes, analysis_seconds)


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
    args = ap.parse_args()
    spec = SimulationSpec(good_raters=args.good, random_raters=args.random, pairs_per_session=args.pairs,
                          scheduler=args.scheduler, seed=args.seed)
    with tempfile.TemporaryDirectory() as d:
        res = run(spec, Path(d), bootstrap_samples=args.bootstrap, db_url=args.db,
                  correlation_samples=args.correlation_samples)
    print(res.table())
    print(f"analysis of {res.votes} votes: {res.analysis_seconds:.2f} s (bootstrap {args.bootstrap}, "
          f"correlation bootstrap {args.correlation_samples})")
    print()
    print("| metric | level | n | SRCC [95% CI] | KRCC | PLCC after fit [95% CI] | fit |")
    print("|---|---|---|---|---|---|---|")
    for c in res.analysis.correlations:
        print(f"| {c.metric} | {c.level} | {c.n} | {c.srcc:.3f} [{c.srcc_ci[0]:.2f}, {c.srcc_ci[1]:.2f}] | "
              f"{c.krcc:.3f} | {c.plcc:.3f} [{c.plcc_ci[0]:.2f}, {c.plcc_ci[1]:.2f}] | {c.fit.kind} |")


if __name__ == "__main__":
    main()
