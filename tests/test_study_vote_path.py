"""The rater page's one-transaction vote (vote_and_next) behaves as submit_vote then next_pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from study.errors import DuplicateVoteError, StudyClosedError, VoteError
from study.importer import StudyOptions
from study.service import StudyService, Viewing
from tests.study_helpers import open_study


def _pair(service: StudyService, sid: int) -> tuple[str, int]:
    tok = service.start_session(sid)
    view = service.next_pair(tok)
    assert view is not None
    return tok, view.assignment_id


def test_vote_and_next_stores_the_vote_and_answers_the_next_pair(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path, StudyOptions(pairs_per_session=3, golden_every=0))
    service.set_status(sid, "open")
    tok, first = _pair(service, sid)
    receipt, view = service.vote_and_next(tok, first, "left", 1200, 1_700_000_000_000,
                                          Viewing(viewport_w=1400, viewport_h=900, device_pixel_ratio=2.0))
    assert receipt.done == 1 and receipt.total == 3
    assert view is not None and view.position == 1 and view.assignment_id != first
    assert service.next_pair(tok) == view  # the same unanswered pair, shown again
    votes = service.votes(sid)
    assert len(votes) == 1 and votes[0].choice == "left" and votes[0].response_ms == 1200
    _, view = service.vote_and_next(tok, view.assignment_id, "tie", 900)
    _, last = service.vote_and_next(tok, view.assignment_id, "right", 900)
    assert last is None and len(service.votes(sid)) == 3  # the session is over


def test_vote_and_next_refuses_and_stores_nothing(tmp_path: Path) -> None:
    service, sid, _ = open_study(tmp_path, StudyOptions(pairs_per_session=3, golden_every=0))
    service.set_status(sid, "open")
    tok, first = _pair(service, sid)
    other, theirs = _pair(service, sid)
    service.vote_and_next(tok, first, "left", 1000)
    with pytest.raises(DuplicateVoteError):
        service.vote_and_next(tok, first, "right", 1000)
    with pytest.raises(VoteError, match="does not exist for this rater"):
        service.vote_and_next(tok, theirs, "left", 1000)  # another rater's pair
    with pytest.raises(VoteError, match="choice"):
        service.vote_and_next(tok, first, "maybe", 1000)
    with pytest.raises(VoteError, match="unknown rater"):
        service.vote_and_next("f" * 32, first, "left", 1000)
    service.set_status(sid, "closed")
    with pytest.raises(StudyClosedError, match="closed"):
        service.vote_and_next(other, theirs, "left", 1000)
    assert [v.choice for v in service.votes(sid)] == ["left"]
