"""Scaling, screening and correlation recover known truth; exports have pwcmp's columns."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.stats import spearmanr

from study.analysis import analyze
from study.correlation import correlate, fit_logistic5, logistic5
from study.exports import PWCMP_COLUMNS, analysis_json, scores_csv, votes_pwcmp_csv
from study.scaling import JOD_SIGMA, aggregate, components, fit_bt_davidson, fit_thurstone
from study.simulate import SimulationSpec, compare_tasks, run
from tests.study_helpers import open_study


def _simulate_outcomes(true: np.ndarray, n: int, seed: int, tie_band: float = 0.3):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, true.size, n)
    b = (a + rng.integers(1, true.size, n)) % true.size
    d = true[a] - true[b] + rng.normal(0, JOD_SIGMA, n)
    y = np.where(np.abs(d) < tie_band, 0.5, (d > 0).astype(float))
    return a, b, y


def test_aggregate_merges_both_orders_and_rejects_bad_input() -> None:
    c = aggregate([0, 1, 0], [1, 0, 1], [1.0, 1.0, 0.5], 2)
    assert (c.a.tolist(), c.b.tolist()) == ([0], [1])
    assert (c.wins_a[0], c.wins_b[0], c.ties[0]) == (1, 1, 1)
    for bad in (([0], [0], [1.0]), ([0], [5], [1.0]), ([0], [1], [0.3])):
        with pytest.raises(ValueError):
            aggregate(*bad, 2)  # type: ignore[arg-type]


def test_groups_never_compared_are_centred_separately() -> None:
    c = aggregate([0, 0, 2, 2], [1, 1, 3, 3], [1.0, 1.0, 0.0, 0.0], 4)
    assert len(set(components(4, c.a, c.b).tolist())) == 2
    s = fit_bt_davidson(c).scores
    assert abs(s[0] + s[1]) < 1e-6 and abs(s[2] + s[3]) < 1e-6
    assert s[0] > s[1] and s[3] > s[2]


@pytest.mark.parametrize("fitter", [fit_bt_davidson, fit_thurstone])
def test_scaling_recovers_true_ranking(fitter) -> None:  # noqa: ANN001
    true = np.linspace(-2, 2, 12)
    a, b, y = _simulate_outcomes(true, 3000, seed=1)
    fit = fitter(aggregate(a, b, y, true.size))
    assert fit.converged
    assert spearmanr(fit.scores, true)[0] >= 0.97
    if fitter is fit_thurstone:  # JOD units: data were made with the same σ, so the slope is ≈ 1
        assert np.polyfit(true, fit.scores, 1)[0] == pytest.approx(1.0, abs=0.2)
    else:
        assert fit.tie_param is not None and fit.tie_param > 0


def test_davidson_gradient_is_analytic_gradient() -> None:
    # The fit uses an analytic gradient; compare the optimum's log-likelihood with nearby points.
    a, b, y = _simulate_outcomes(np.array([0.0, 1.0, -1.0, 0.5]), 400, seed=2)
    c = aggregate(a, b, y, 4)
    fit = fit_bt_davidson(c, prior=0.0)
    theta = np.log(fit.tie_param)

    def nll(x: np.ndarray) -> float:
        s, th = x[:4], x[4]
        sa, sb = s[c.a], s[c.b]
        mid = th + 0.5 * (sa + sb)
        logd = np.logaddexp(np.logaddexp(sa, sb), mid)
        return -float(np.sum(c.wins_a * sa + c.wins_b * sb + c.ties * mid - c.n * logd))

    x = np.append(fit.scores, theta)
    assert np.abs(approx_fprime(x, nll, 1e-6)).max() < 1e-2


def test_logistic5_fit_and_correlations() -> None:
    rng = np.random.default_rng(3)
    x = np.linspace(0, 1, 60)
    y = logistic5(x, 3.0, 8.0, 0.5, 0.2, 0.1) + rng.normal(0, 0.05, x.size)
    fit = fit_logistic5(x, y)
    assert fit.kind == "logistic5"
    c = correlate("m", x, y, samples=50)
    assert c.plcc > 0.98 and c.srcc > 0.95 and c.krcc > 0.8
    assert c.srcc_ci[0] <= c.srcc <= c.srcc_ci[1] + 1e-9
    neg = correlate("m", x, -y, samples=20)
    assert neg.srcc < -0.95 and neg.plcc > 0.98  # PLCC is of the fitted prediction
    assert correlate("few", x[:5], y[:5], samples=10).fit.kind == "linear"
    with pytest.raises(ValueError):
        correlate("m", x[:2], y[:2])


def test_simulated_study_recovers_truth_and_flags_random_raters(tmp_path: Path) -> None:
    res = run(SimulationSpec(seed=0), tmp_path, bootstrap_samples=30)
    print("\n" + res.table())
    assert res.srcc_condition["bt-davidson"] >= 0.9
    assert res.srcc_condition["thurstone-v"] >= 0.9
    assert res.srcc_stimulus["bt-davidson"] >= 0.9
    assert res.random_raters <= res.flagged  # every random rater is caught ...
    assert len(res.flagged - res.random_raters) <= 1  # ... and (almost) no good one
    assert set(res.analysis.excluded_raters) == res.flagged
    good = next(c for c in res.analysis.correlations if c.metric == "good_metric")
    noise = next(c for c in res.analysis.correlations if c.metric == "noise_metric")
    assert good.srcc > 0.8 and good.srcc > noise.srcc
    fd = next(c for c in res.analysis.correlations if c.metric == "set:FD-sim")
    assert fd.level == "condition" and fd.srcc < -0.8


def test_exports_pwcmp_format_and_scores(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path)
    rng = np.random.default_rng(0)
    for _ in range(3):
        tok = service.start_session(sid)
        while (v := service.next_pair(tok)) is not None:
            service.submit_vote(tok, v.assignment_id, str(rng.choice(["left", "right", "tie"])), 800)
    text = votes_pwcmp_csv(service, sid)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0].keys())[:5] == PWCMP_COLUMNS
    assert len(rows) == 18
    assert {r["selected_A"] for r in rows} <= {"1", "0", "0.5"}
    assert all(r["condition_A"] != r["condition_B"] for r in rows)
    golden = [r for r in rows if r["is_golden"] == "1"]
    assert golden and {r["condition_A"] for r in golden} <= {"reference", "degraded"}
    a = analyze(service, sid, exclude_flagged=False, bootstrap_samples=5, correlation_samples=5)
    assert "bt-davidson" in scores_csv(a)
    data = json.loads(analysis_json(a))
    assert data["votes_used"] == 18 - len(golden)
    # The admin excludes one rater: their votes leave the analysis, and stay in the export.
    first = int(rows[0]["observer"])
    service.set_excluded(sid, first, True)
    b = analyze(service, sid, exclude_flagged=False, bootstrap_samples=5, correlation_samples=5)
    mine = sum(1 for r in rows if int(r["observer"]) == first and r["is_golden"] == "0")
    assert first in b.excluded_raters and b.votes_used == a.votes_used - mine
    assert len(votes_pwcmp_csv(service, sid).splitlines()) == 19


def test_each_task_recovers_its_own_axis_on_the_same_stimuli(tmp_path: Path) -> None:
    """MISC's two questions: a fidelity study ranks by fidelity, a quality study by quality."""
    spec = {"good_raters": 12, "random_raters": 2, "seed": 3, "axis_rho": 0.0}
    res = {t: run(SimulationSpec(task=t, **spec), tmp_path / t, bootstrap_samples=10, correlation_samples=10)
           for t in ("quality", "fidelity")}
    assert res["quality"].truths["quality"].stimulus.keys() == res["fidelity"].truths["quality"].stimulus.keys()
    for own, other in (("quality", "fidelity"), ("fidelity", "quality")):
        est = res[own].condition_scores()
        keys = sorted(est)
        mine = spearmanr([est[k] for k in keys], [res[own].truths[own].condition[k] for k in keys])[0]
        theirs = spearmanr([est[k] for k in keys], [res[own].truths[other].condition[k] for k in keys])[0]
        assert mine >= 0.9 and mine - theirs >= 0.4, (own, mine, theirs)
        assert res[own].srcc_condition["thurstone-v"] == pytest.approx(mine)
    metric = {t: {c.metric: c.srcc for c in res[t].analysis.correlations if c.level == "stimulus"} for t in res}
    assert metric["fidelity"]["fidelity_metric"] > metric["fidelity"]["good_metric"]
    assert metric["quality"]["good_metric"] > metric["quality"]["fidelity_metric"]
    text = compare_tasks(res["quality"], res["fidelity"])
    assert "| quality |" in text and "| fidelity |" in text and "change rank" in text
    with pytest.raises(ValueError, match="task"):
        run(SimulationSpec(task="beauty"), tmp_path / "x")
