"""Rater screening: who failed golden pairs, who disagrees with everyone else.

    golden answers ─► failure rate per rater ────────────────┐
    test votes ─► leave-one-rater-out BT fit ─► agreement ───┴─► flags (+ reasons)

Check pairs are golden pairs (an undistorted image against a badly degraded copy:
choosing the copy, or a tie, is a failure) and trap pairs (an image against an identical
copy: anything but "same" is a failure). An attentive rater still slips now and then, so
a rater is flagged on check pairs only when that many failures would be unlikely
(one-sided binomial p < ``check_alpha``) for someone who slips on ``lapse_rate`` of them:
with the defaults (10 %, 0.05) one miss never flags, 2 of 2 does, 2 of 4 does not, 3 of
4 does. (Until December 2026 one miss in two flagged a rater.) Agreement is the share of a rater's decisive votes (not ties)
that pick the side the model fitted on the *other* raters prefers; a rater answering at
random sits near 0.5. The one-sided binomial p-value says how sure we are the rater is
better than random. Flags only advise: the analysis excludes flagged raters when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binomtest

from study.scaling import aggregate, fit_bt_davidson


@dataclass
class ScreeningConfig:
    lapse_rate: float = 0.10  # how often an attentive rater fails a check pair
    check_alpha: float = 0.05  # flag when failures this many are less likely than this for such a rater ...
    min_golden: int = 2  # ... once at least this many check pairs were answered
    min_agreement: float = 0.6  # flag below this agreement ...
    min_decisive: int = 10  # ... once at least this many decisive test votes


@dataclass
class RaterScreen:
    rater: int
    votes: int
    golden_answered: int
    golden_failed: int
    decisive: int
    agreement: float  # NaN when no decisive vote could be judged
    p_random: float  # P(agreement this high | rater answers at random)
    flagged: bool = False
    reasons: list[str] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        return {
            "rater": self.rater, "votes": self.votes, "golden_answered": self.golden_answered,
            "golden_failed": self.golden_failed, "decisive": self.decisive,
            "agreement": self.agreement, "p_random": self.p_random,
            "flagged": self.flagged, "reasons": "; ".join(self.reasons),
        }


def screen(raters: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, n_items: int,
           golden: dict[int, tuple[int, int]], config: ScreeningConfig | None = None) -> list[RaterScreen]:
    """``raters``/``a``/``b``/``y``: test votes; ``golden``: rater → (answered, failed)."""
    config = config or ScreeningConfig()
    everyone = sorted(set(np.unique(raters).tolist()) | set(golden))
    full = fit_bt_davidson(aggregate(a, b, y, n_items)) if a.size else None
    out: list[RaterScreen] = []
    for r in everyone:
        mine = raters == r
        others = ~mine
        g_ans, g_fail = golden.get(r, (0, 0))
        decisive = mine & (y != 0.5)
        agreement, p_random, n_judged = float("nan"), float("nan"), 0
        if decisive.any() and others.any():
            x0 = None if full is None else np.append(full.scores, np.log(max(full.tie_param or 1e-3, 1e-6)))
            loo = fit_bt_davidson(aggregate(a[others], b[others], y[others], n_items), x0=x0)
            diff = loo.scores[a[decisive]] - loo.scores[b[decisive]]
            judged = np.abs(diff) > 1e-9
            n_judged = int(judged.sum())
            if n_judged:
                agree = int(np.sum((diff[judged] > 0) == (y[decisive][judged] == 1.0)))
                agreement = agree / n_judged
                p_random = float(binomtest(agree, n_judged, 0.5, alternative="greater").pvalue)
        s = RaterScreen(int(r), int(mine.sum()) + g_ans, g_ans, g_fail, n_judged, agreement, p_random)
        if g_ans >= config.min_golden and g_fail:
            p_lapse = float(binomtest(g_fail, g_ans, config.lapse_rate, alternative="greater").pvalue)
            if p_lapse < config.check_alpha:
                s.reasons.append(f"failed {g_fail} of {g_ans} check pairs (p = {p_lapse:.3f} for a rater who "
                                 f"slips on {config.lapse_rate:.0%} of them)")
        if n_judged >= config.min_decisive and agreement < config.min_agreement:
            s.reasons.append(f"agreement {agreement:.2f} < {config.min_agreement:.2f} with other raters")
        s.flagged = bool(s.reasons)
        out.append(s)
    return out
