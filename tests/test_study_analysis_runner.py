"""The Admin tab's analysis: in the background, last result at once, CI width and votes still needed."""

from __future__ import annotations

import math
import threading
from pathlib import Path

from study_helpers import open_study

from study.analysis import LEADERBOARD_HEADERS, AnalysisRunner, ScoreRow, leaderboard_rows, more_votes_for
from study.importer import StudyOptions


def _answer(service, sid: int, raters: int) -> None:  # noqa: ANN001
    for _ in range(raters):
        tok = service.start_session(sid)
        while (view := service.next_pair(tok)) is not None:
            service.submit_vote(tok, view.assignment_id, "left" if view.position % 3 else "tie", 500)


def test_more_votes_follow_the_square_root_law() -> None:
    row = ScoreRow("c@0.1", "condition", "thurstone-v", 0.0, -1.0, 1.0, 40)  # ±1.0 JOD after 40
    assert more_votes_for(row, 0.5) == 120  # (1.0 / 0.5)² · 40 = 160 in all
    assert more_votes_for(ScoreRow("c", "condition", "thurstone-v", 0.0, -0.2, 0.2, 40)) == 0
    assert more_votes_for(ScoreRow("c", "condition", "thurstone-v", 0.0, math.nan, math.nan, 0)) is None


def test_runner_keeps_the_last_result_and_reruns_only_for_new_votes(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import study.analysis as analysis

    gate = threading.Event()
    real = analysis.analyze

    def held(*args, **kw):  # noqa: ANN002, ANN003, ANN202 - the run waits until the test lets it go
        gate.wait(60)
        return real(*args, **kw)

    monkeypatch.setattr(analysis, "analyze", held)
    service, sid, _ = open_study(tmp_path, options=StudyOptions(pairs_per_session=6, golden_every=0))
    _answer(service, sid, 4)
    runner = AnalysisRunner(service, bootstrap_samples=20)
    assert runner.state(sid).result is None
    first = runner.ensure(sid)
    assert first.running and first.result is None  # started in the background, returned at once
    gate.set()
    done = runner.wait(sid)
    assert not done.running and done.result is not None and not done.error
    assert done.votes == 24 and done.fraction == 1.0 and done.stage == "done"
    shown = done.result
    again = runner.ensure(sid)  # no new vote: the same result, no new run
    assert not again.running and again.result is shown
    _answer(service, sid, 1)
    gate.clear()
    assert runner.ensure(sid).running
    assert runner.state(sid).result is shown  # the last result stays visible while it runs
    assert runner.state(sid).stage == "starting"
    gate.set()
    assert runner.wait(sid).votes == 30 and runner.state(sid).result is not shown
    rows = leaderboard_rows(runner.state(sid).result)  # type: ignore[arg-type]
    assert len(rows[0]) == len(LEADERBOARD_HEADERS) == 9
    for row in rows:
        assert row[7] is not None and row[7] > 0  # JOD CI half width
        assert isinstance(row[8], int) and row[8] >= 0  # more votes for ±0.5 JOD
