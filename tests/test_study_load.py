"""The vote path under load: the benchmark runs end to end, and no vote waits for a model fit."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from study_helpers import open_study

from bench.study_load import run
from study.importer import StudyOptions


def test_load_benchmark_small_run_counts_everything(tmp_path: Path) -> None:
    out = run(tmp_path, raters=4, votes=3, think=0.05, max_seconds=60, sources=2, codecs=3, size=64)
    assert out["votes_acknowledged"] == out["votes_stored"] == out["votes_sent"] == 12
    assert out["votes_lost"] == out["votes_doubled"] == out["errors"] == out["truncated"] == 0
    assert out["images_fetched"] == 24 and out["vote_ms_p95"] is not None


def test_active_scheduler_refits_in_the_background(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    service, sid, _ = open_study(tmp_path, options=StudyOptions(pairs_per_session=9, golden_every=0),
                                 sources=2, codecs=4)
    service._refit_in_background, service._refit_every = True, 2
    import study.service as module

    gate, fits = threading.Event(), []
    real = module.fit_bt_davidson

    def slow_fit(*args, **kw):  # noqa: ANN002, ANN003, ANN202 - a fit that only ends when the test says so
        fits.append(1)
        gate.wait(60)
        return real(*args, **kw)

    monkeypatch.setattr(module, "fit_bt_davidson", slow_fit)
    tok = service.start_session(sid)
    for _ in range(6):  # votes go on while the fit is held
        view = service.next_pair(tok)
        assert view is not None
        service.submit_vote(tok, view.assignment_id, "left", 100)
        service._counted.clear()  # count on every request here
    assert len(fits) == 1 and sid not in service._model  # one fit started, none finished, no vote waited
    gate.set()
    for _ in range(100):
        if sid in service._model:
            break
        time.sleep(0.05)
    assert sid in service._model and service._model[sid][0] >= 1
