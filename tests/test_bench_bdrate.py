"""BD-rate on synthetic curves whose answer is known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.bdrate import bd_rate

RATES = [0.005, 0.01, 0.02, 0.04]


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.0, 1.25, 3.0])
def test_constant_rate_factor_gives_exactly_that_bd_rate(scale: float) -> None:
    psnr = [18.0, 20.5, 22.0, 24.7]
    test_rates = [r * scale for r in RATES]
    assert bd_rate(RATES, psnr, test_rates, psnr) == pytest.approx((scale - 1) * 100, abs=1e-9)


def test_lower_is_better_metric_keeps_the_sign_meaning() -> None:
    dists = [0.50, 0.42, 0.37, 0.30]  # falls as rate rises
    cheaper = [r * 0.6 for r in RATES]  # same DISTS with 40 % fewer bits: better
    assert bd_rate(RATES, dists, cheaper, dists, higher_is_better=False) == pytest.approx(-40.0, abs=1e-9)
    # Lower DISTS at the same rates is better: negative BD-rate. BD-rate is a horizontal
    # (rate) gap averaged over the quality range, so it does not depend on which way the
    # quality axis points: the flag documents the metric and must not change the answer.
    better = [x - 0.03 for x in dists]
    got = bd_rate(RATES, dists, RATES, better, higher_is_better=False)
    assert got is not None and got < 0
    assert bd_rate(RATES, dists, RATES, better, higher_is_better=True) == pytest.approx(got, abs=1e-9)


def test_log_linear_curves_shifted_in_quality() -> None:
    # q = a + b·ln R; the test codec gains d dB everywhere, so at equal q its rate is
    # R·exp(−d/b): BD-rate = exp(−d/b) − 1 exactly (any interpolant is exact on a line).
    a, b, d = 30.0, 2.5, 1.0
    rates = np.geomspace(0.004, 0.05, 5)
    q_ref = a + b * np.log(rates)
    q_test = q_ref + d
    expected = (math.exp(-d / b) - 1) * 100
    assert bd_rate(rates, q_ref, rates, q_test) == pytest.approx(expected, abs=1e-9)


def test_no_overlap_or_too_few_points_gives_none() -> None:
    assert bd_rate(RATES, [10, 11, 12, 13], RATES, [20, 21, 22, 23]) is None
    assert bd_rate(RATES[:1], [10], RATES, [10, 11, 12, 13]) is None
    # non-finite points are ignored, not propagated
    assert bd_rate(RATES, [18, 20, float("nan"), 24], RATES, [18, 20, 22, 24]) is not None


def test_report_says_which_side_wins_when_curves_do_not_overlap() -> None:
    from bench.report import Condition, bd_rates

    def cond(codec: str, bpp: float, lpips: float, psnr: float) -> Condition:
        return Condition(
            codec, bpp, n_images=4, n_fit=4, real_bpp=bpp, metrics={"lpips_alex": lpips, "psnr": psnr}
        )

    conds = [
        cond("misc", 0.01, 0.60, 20.0), cond("misc", 0.02, 0.50, 22.0),
        cond("webp", 0.01, 0.84, 19.0), cond("webp", 0.02, 0.76, 21.0),
        Condition("avif", 0.01, n_images=4, n_fit=1, real_bpp=0.01, metrics={"psnr": 18.0}),  # partial: left out
    ]  # fmt: skip
    out = bd_rates(conds, ["lpips_alex", "psnr"], "misc")
    assert out["webp"]["lpips_alex"] == "no overlap: misc better"  # lower LPIPS at every rate
    assert isinstance(out["webp"]["psnr"], float) and out["webp"]["psnr"] < 0
    assert "avif" not in out


def test_table_marks_a_metric_not_yet_filled_in_for_every_image() -> None:
    from bench.report import Condition, markdown_table

    c = Condition("webp", 0.01, n_images=4, n_fit=4, real_bpp=0.0098, metrics={"psnr": 21.3, "dists": 0.43})
    c.counts = {"psnr": 4, "dists": 2}  # a resumed run stopped half-way through DISTS
    table = markdown_table([c], ["psnr", "dists"])
    assert "| 21.30 |" in table and "0.4300 (n=2)" in table
    assert c.complete_for("psnr") and not c.complete_for("dists")
