"""The study's operations on the database: rater sessions, vote intake, admin actions.

Every write is one short transaction (``Database.write()``: BEGIN IMMEDIATE on SQLite).
A vote is accepted only for an assignment that belongs to the rater's token, in an open
study; the database's unique constraints refuse a second vote on the same pair, so a
double click or a replayed request cannot count twice. Every refusal is a typed
``StudyError`` and stores nothing.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db import Assignment, Condition, Database, Pair, Rater, Stimulus, Study, Vote
from db.models import CHOICES
from study.errors import DuplicateVoteError, NotFoundError, StudyClosedError, StudyStorageError, VoteError
from study.scaling import aggregate, fit_bt_davidson
from study.scheduler import Candidate, choose, is_golden_slot

MAX_RESPONSE_MS = 3_600_000
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|inf(inity)?|nan)", re.IGNORECASE)
INFO_KEYS = ("age_range", "vision", "display", "experience", "comment")


@dataclass(frozen=True)
class PairView:
    """What the rater page shows: one assignment, left and right images."""

    assignment_id: int
    position: int  # 0-based
    total: int
    left_path: str
    right_path: str
    source_id: str


@dataclass(frozen=True)
class VoteReceipt:
    vote_id: int
    done: int
    total: int

    @property
    def finished(self) -> bool:
        return self.done >= self.total


@dataclass(frozen=True)
class VoteRecord:
    """One stored vote, in the terms the analysis needs."""

    rater: int
    pair: int
    left: int
    right: int
    choice: str
    is_golden: bool
    golden_better: int | None
    response_ms: int

    @property
    def winner(self) -> int | None:
        return {"left": self.left, "right": self.right}.get(self.choice)


@dataclass
class Progress:
    study_id: int
    name: str
    status: str
    raters: int
    finished_raters: int
    votes: int
    golden_votes: int
    test_pairs: int
    pairs_with_votes: int
    min_votes_per_pair: int


def _now() -> datetime:
    return datetime.now(UTC)


def parse_client_time(value: object) -> datetime | None:
    """Client clock as epoch milliseconds (a number or its text) or ISO 8601; None if absent.

    Bad values (text, infinities such as ``inf`` or ``1e400``, NaN, dates out of range)
    raise ``VoteError``, never an OverflowError or ValueError.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            t = datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)
        elif isinstance(value, str):
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if t.tzinfo is None:
                t = t.replace(tzinfo=UTC)
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        raise VoteError(f"client time {value!r} is neither epoch milliseconds nor ISO 8601") from None
    if not (2000 <= t.year <= 2200):
        raise VoteError(f"client time {value!r} is out of range")
    return t


class StudyService:
    """Operations used by the Study and Admin tabs (and by tests, and the vote bench)."""

    def __init__(self, db: Database, seed: int | None = None, refit_every: int = 20,
                 refit_in_background: bool = False) -> None:
        self.db = db
        db.storage_error = StudyStorageError  # storage faults reach the tabs as a StudyError
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()
        self._refit_every = refit_every
        self._model: dict[int, tuple[int, dict[int, float]]] = {}  # study → (votes at fit, scores)
        self._model_lock = threading.Lock()
        self._refit_in_background = refit_in_background
        self._refitting: set[int] = set()
        self._counted: dict[int, float] = {}  # study → when its votes were last counted
        self._token_cache: dict[str, tuple[int, str]] = {}

    # ---- rater session -------------------------------------------------------------
    def open_studies(self) -> list[tuple[int, str]]:
        with self.db.read() as s:
            return [(i, n) for i, n in s.execute(select(Study.id, Study.name).where(Study.status == "open")
                                                  .order_by(Study.id))]

    def start_session(self, study_id: int, info: dict[str, str] | None = None) -> str:
        """Record consent now and return the rater's new anonymous token."""
        info = {k: str(v)[:200] for k, v in (info or {}).items() if k in INFO_KEYS and v not in (None, "")}
        token = secrets.token_hex(16)
        with self.db.write() as s:
            study = s.get(Study, study_id)
            if study is None:
                raise NotFoundError(f"no study with id {study_id}")
            if study.status != "open":
                raise StudyClosedError(f"study {study.name!r} is {study.status}, not open")
            s.add(Rater(study_id=study_id, token=token, consent_at=_now(), info=info))
        return token

    def _rater(self, s, token: str) -> Rater:  # type: ignore[no-untyped-def]
        if not isinstance(token, str) or not token or len(token) > 64:
            raise VoteError("missing or malformed rater id")
        rater = s.scalar(select(Rater).where(Rater.token == token))
        if rater is None:
            raise VoteError("unknown rater id (the session may have been tampered with)")
        return rater

    def _study_of(self, token: str) -> tuple[int, str]:
        """(study id, scheduler) of a rater token; cached, both never change for a token."""
        hit = self._token_cache.get(token)
        if hit is None:
            with self.db.read() as s:
                rater = self._rater(s, token)
                study = s.get(Study, rater.study_id)
                assert study is not None
                hit = (study.id, study.scheduler)
            if len(self._token_cache) > 100_000:
                self._token_cache.clear()
            self._token_cache[token] = hit
        return hit

    def _scores(self, study_id: int) -> dict[int, float] | None:
        """Current per-stimulus BT scores for active scheduling, refitted every few votes.

        With ``refit_in_background`` (the app) a stale model starts a refit in a thread and
        the request goes on with the last scores: no rater's vote waits for a fit; and the
        votes are counted at most once a second, not on every request.
        """
        if self._refit_in_background:
            with self._model_lock:
                cached = self._model.get(study_id)
                if cached is not None and time.monotonic() - self._counted.get(study_id, 0.0) < 1.0:
                    return cached[1]
                self._counted[study_id] = time.monotonic()
        with self.db.read() as s:
            n_votes = s.scalar(select(func.count(Vote.id)).where(Vote.study_id == study_id)) or 0
        with self._model_lock:
            cached = self._model.get(study_id)
            if cached is not None and n_votes - cached[0] < self._refit_every:
                return cached[1]
            if n_votes and self._refit_in_background:
                if study_id not in self._refitting:
                    self._refitting.add(study_id)
                    threading.Thread(target=self._refit, args=(study_id, n_votes), daemon=True).start()
                return cached[1] if cached else None
        return self._refit(study_id, n_votes) if n_votes else None

    def _refit(self, study_id: int, n_votes: int) -> dict[int, float]:
        try:
            records = self.votes(study_id, include_golden=False)
            ids = sorted({r.left for r in records} | {r.right for r in records})
            index = {sid: k for k, sid in enumerate(ids)}
            a = np.array([index[r.left] for r in records])
            b = np.array([index[r.right] for r in records])
            y = np.array([{"left": 1.0, "right": 0.0, "tie": 0.5}[r.choice] for r in records])
            fit = fit_bt_davidson(aggregate(a, b, y, len(ids)))
            scores = {sid: float(fit.scores[k]) for sid, k in index.items()}
            with self._model_lock:
                self._model[study_id] = (n_votes, scores)
            return scores
        finally:
            with self._model_lock:
                self._refitting.discard(study_id)

    def next_pair(self, token: str) -> PairView | None:
        """The rater's current pair (an unanswered one is shown again), or None when done."""
        study_id, scheduler = self._study_of(token)
        scores = self._scores(study_id) if scheduler == "active" else None
        with self.db.write() as s:
            rater = self._rater(s, token)
            study = s.get(Study, rater.study_id)
            assert study is not None
            if study.status != "open":
                raise StudyClosedError(f"study {study.name!r} is {study.status}, not open")
            pending = s.scalar(
                select(Assignment).outerjoin(Vote, Vote.assignment_id == Assignment.id)
                .where(Assignment.rater_id == rater.id, Vote.id.is_(None)).order_by(Assignment.position)
            )
            if pending is None:
                issued = s.scalar(select(func.count(Assignment.id)).where(Assignment.rater_id == rater.id)) or 0
                if issued >= study.pairs_per_session:
                    return None
                pending = self._issue(s, study, rater, issued, scores)
                if pending is None:
                    return None
            left = s.get(Stimulus, pending.left_stimulus_id)
            right = s.get(Stimulus, pending.right_stimulus_id)
            assert left is not None and right is not None
            return PairView(pending.id, pending.position, study.pairs_per_session, left.path, right.path,
                            left.source_id)

    def _issue(self, s, study: Study, rater: Rater, position: int,  # type: ignore[no-untyped-def]
               scores: dict[int, float] | None) -> Assignment | None:
        seen = select(Assignment.pair_id).where(Assignment.rater_id == rater.id)
        issued = (select(Assignment.pair_id, func.count(Assignment.id).label("n"))
                  .join(Pair, Pair.id == Assignment.pair_id).where(Pair.study_id == study.id)
                  .group_by(Assignment.pair_id).subquery())
        q = (select(Pair.id, Pair.stimulus_a_id, Pair.stimulus_b_id, Pair.is_golden,
                    func.coalesce(issued.c.n, 0))
             .outerjoin(issued, issued.c.pair_id == Pair.id)
             .where(Pair.study_id == study.id, Pair.id.not_in(seen)))
        rows = s.execute(q).all()
        golden = [Candidate(r[0], r[1], r[2], r[4]) for r in rows if r[3]]
        test = [Candidate(r[0], r[1], r[2], r[4]) for r in rows if not r[3]]
        with self._rng_lock:
            pick = None
            if golden and is_golden_slot(position, study.golden_every, rater.id):
                pick = choose(golden, "balanced", 0, None, self._rng)
            if pick is None:
                pick = choose(test, study.scheduler, study.balanced_votes_per_pair, scores, self._rng)
            if pick is None and golden:
                pick = choose(golden, "balanced", 0, None, self._rng)
            if pick is None:
                return None
            swap = bool(self._rng.random() < 0.5)
        left, right = (pick.b, pick.a) if swap else (pick.a, pick.b)
        a = Assignment(rater_id=rater.id, pair_id=pick.pair_id, position=position,
                       left_stimulus_id=left, right_stimulus_id=right)
        s.add(a)
        s.flush()
        return a

    def submit_vote(self, token: str, assignment_id: int, choice: str, response_ms: int,
                    client_time: object = None) -> VoteReceipt:
        """Store one answer. Raises VoteError / DuplicateVoteError / StudyClosedError."""
        if choice not in CHOICES:
            raise VoteError(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")
        if isinstance(assignment_id, bool) or not isinstance(assignment_id, int):
            raise VoteError(f"assignment id must be an integer, got {assignment_id!r}")
        if isinstance(response_ms, bool) or not isinstance(response_ms, int | float) or not np.isfinite(response_ms):
            raise VoteError(f"response time must be a number of milliseconds, got {response_ms!r}")
        if not (0 <= response_ms <= MAX_RESPONSE_MS):
            raise VoteError(f"response time {response_ms} ms is out of range (0 to {MAX_RESPONSE_MS})")
        ctime = parse_client_time(client_time)
        try:
            with self.db.write() as s:
                rater = self._rater(s, token)
                assignment = s.get(Assignment, assignment_id)
                if assignment is None or assignment.rater_id != rater.id:
                    raise VoteError(f"assignment {assignment_id} does not exist for this rater")
                study = s.get(Study, rater.study_id)
                assert study is not None
                if study.status != "open":
                    raise StudyClosedError(f"study {study.name!r} is {study.status}, not open")
                vote = Vote(study_id=study.id, assignment_id=assignment.id, rater_id=rater.id,
                            pair_id=assignment.pair_id, choice=choice,
                            left_stimulus_id=assignment.left_stimulus_id,
                            right_stimulus_id=assignment.right_stimulus_id,
                            response_ms=int(round(response_ms)), client_time=ctime, server_time=_now())
                s.add(vote)
                s.flush()
                done = s.scalar(select(func.count(Vote.id)).where(Vote.rater_id == rater.id)) or 0
                return VoteReceipt(vote.id, done, study.pairs_per_session)
        except IntegrityError:
            raise DuplicateVoteError("this pair was already answered; the first answer stands") from None

    # ---- admin ---------------------------------------------------------------------
    def studies(self) -> list[Study]:
        with self.db.read() as s:
            return list(s.scalars(select(Study).order_by(Study.id)))

    def set_status(self, study_id: int, status: str) -> None:
        if status not in ("draft", "open", "closed"):
            raise VoteError(f"unknown status {status!r}")
        with self.db.write() as s:
            study = s.get(Study, study_id)
            if study is None:
                raise NotFoundError(f"no study with id {study_id}")
            study.status = status
            if status == "open":
                study.opened_at = _now()
            elif status == "closed":
                study.closed_at = _now()

    def set_excluded(self, study_id: int, rater_id: int, excluded: bool) -> None:
        with self.db.write() as s:
            rater = s.get(Rater, rater_id)
            if rater is None or rater.study_id != study_id:
                raise NotFoundError(f"no rater {rater_id} in study {study_id}")
            rater.excluded = excluded

    def progress(self, study_id: int) -> Progress:
        with self.db.read() as s:
            study = s.get(Study, study_id)
            if study is None:
                raise NotFoundError(f"no study with id {study_id}")
            raters = s.scalar(select(func.count(Rater.id)).where(Rater.study_id == study_id)) or 0
            per_rater = (select(Vote.rater_id, func.count(Vote.id).label("n")).where(Vote.study_id == study_id)
                         .group_by(Vote.rater_id).subquery())
            finished = s.scalar(select(func.count()).select_from(per_rater)
                                .where(per_rater.c.n >= study.pairs_per_session)) or 0
            votes = s.scalar(select(func.count(Vote.id)).where(Vote.study_id == study_id)) or 0
            golden_votes = s.scalar(select(func.count(Vote.id)).join(Pair, Pair.id == Vote.pair_id)
                                    .where(Vote.study_id == study_id, Pair.is_golden)) or 0
            test_pairs = s.scalar(select(func.count(Pair.id)).where(Pair.study_id == study_id,
                                                                    Pair.is_golden.is_(False))) or 0
            per_pair = dict(s.execute(select(Vote.pair_id, func.count(Vote.id)).join(Pair, Pair.id == Vote.pair_id)
                                      .where(Vote.study_id == study_id, Pair.is_golden.is_(False))
                                      .group_by(Vote.pair_id)).all())
            return Progress(study_id, study.name, study.status, raters, finished, votes, golden_votes,
                            test_pairs, len(per_pair),
                            min(per_pair.values()) if len(per_pair) == test_pairs and per_pair else 0)

    def votes(self, study_id: int, include_golden: bool = True,
              include_excluded: bool = True) -> list[VoteRecord]:
        with self.db.read() as s:
            q = (select(Vote.rater_id, Vote.pair_id, Vote.left_stimulus_id, Vote.right_stimulus_id, Vote.choice,
                        Pair.is_golden, Pair.golden_better_id, Vote.response_ms)
                 .join(Pair, Pair.id == Vote.pair_id).join(Rater, Rater.id == Vote.rater_id)
                 .where(Vote.study_id == study_id).order_by(Vote.id))
            if not include_golden:
                q = q.where(Pair.is_golden.is_(False))
            if not include_excluded:
                q = q.where(Rater.excluded.is_(False))
            return [VoteRecord(*row) for row in s.execute(q).all()]

    def stimuli(self, study_id: int) -> list[tuple[Stimulus, Condition | None]]:
        with self.db.read() as s:
            rows = s.execute(select(Stimulus, Condition).outerjoin(Condition, Condition.id == Stimulus.condition_id)
                             .where(Stimulus.study_id == study_id).order_by(Stimulus.id)).all()
            return [(st, c) for st, c in rows]
