"""Exports: votes in the pwcmp toolbox's table format, scores and correlations as CSV/JSON.

pwcmp (Mantiuk et al.) reads a table with one row per comparison; its
``pw_scale_table(T, 'scene', {'condition_A','condition_B'}, 'observer', 'selected_A')``
takes exactly the first five columns written here. ``selected_A`` is 1 when the left
image (A) was chosen, 0 for the right one, 0.5 for a tie. Extra columns (the raw choice,
stimulus ids, times, golden flag) follow and are ignored by pwcmp.
"""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select
from sqlalchemy.orm import aliased

from db import Condition, Pair, Rater, Stimulus, Vote
from study.analysis import Analysis
from study.service import StudyService

PWCMP_COLUMNS = ["observer", "scene", "condition_A", "condition_B", "selected_A"]
EXTRA_COLUMNS = ["session", "choice", "stimulus_A", "stimulus_B", "is_golden", "response_ms",
                 "client_time", "server_time", "rater_excluded"]


def _label(st: Stimulus, cond: Condition | None) -> str:
    return cond.label if cond is not None else st.role


def votes_pwcmp_csv(service: StudyService, study_id: int) -> str:
    left, right = aliased(Stimulus), aliased(Stimulus)
    lc, rc = aliased(Condition), aliased(Condition)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(PWCMP_COLUMNS + EXTRA_COLUMNS)
    with service.db.read() as s:
        q = (select(Vote, Rater, left, right, lc, rc, Pair.is_golden)
             .join(Rater, Rater.id == Vote.rater_id).join(Pair, Pair.id == Vote.pair_id)
             .join(left, left.id == Vote.left_stimulus_id).join(right, right.id == Vote.right_stimulus_id)
             .outerjoin(lc, lc.id == left.condition_id).outerjoin(rc, rc.id == right.condition_id)
             .where(Vote.study_id == study_id).order_by(Vote.id))
        for vote, rater, ls, rs, lcond, rcond, golden in s.execute(q).all():
            w.writerow([rater.id, ls.source_id, _label(ls, lcond), _label(rs, rcond),
                        {"left": 1, "right": 0, "tie": 0.5}[vote.choice],
                        rater.token[:8], vote.choice, ls.key, rs.key, int(bool(golden)), vote.response_ms,
                        vote.client_time.isoformat() if vote.client_time else "",
                        vote.server_time.isoformat(), int(rater.excluded)])
    return out.getvalue()


def scores_csv(analysis: Analysis) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["level", "model", "item", "source_id", "condition", "score", "ci_low", "ci_high", "comparisons"])
    for r in analysis.scores:
        w.writerow([r.level, r.model, r.item, r.source_id, r.condition, f"{r.score:.6g}", f"{r.ci_low:.6g}",
                    f"{r.ci_high:.6g}", r.comparisons])
    return out.getvalue()


def correlations_csv(analysis: Analysis) -> str:
    out = io.StringIO()
    cols = ["metric", "level", "n", "srcc", "srcc_lo", "srcc_hi", "krcc", "krcc_lo", "krcc_hi",
            "plcc", "plcc_lo", "plcc_hi", "fit"]
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for c in analysis.correlations:
        row = c.row()
        w.writerow([row[k] if not isinstance(row[k], float) else f"{row[k]:.6g}" for k in cols])
    return out.getvalue()


def analysis_json(analysis: Analysis) -> str:
    return json.dumps(analysis.to_dict(), indent=1)
