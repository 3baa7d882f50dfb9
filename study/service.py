"""The study's operations on the database: rater sessions, vote intake, admin actions.

Every write is one short transaction (``Database.write()``: BEGIN IMMEDIATE on SQLite).
A vote is accepted only for an assignment that belongs to the rater's token, in an open
study; the database's unique constraints refuse a second vote on the same pair, so a
double click or a replayed request cannot count twice. Every refusal is a typed
``StudyError`` and stores nothing.

    link (?study=slug, PROLIFIC_PID ...) ─► find_study ─► start_session ─► token (kept by the page)
    reload / reopen / second tab ─► resume(token) ─► next_pair: the unanswered pair again
    vote(token, assignment shown, choice, viewing) ─► next_pair ─► … ─► None: completion code

A vote names the assignment the page showed (never "the current one" on the server), so
parallel calls of one session can only answer pairs that were sent to it.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from db import Assignment, Condition, Database, Pair, Rater, Stimulus, Study, Vote
from db.models import CHOICES, RATER_LOGINS, TASKS
from study.errors import (
    DuplicateVoteError,
    LoginRequiredError,
    NotFoundError,
    StudyClosedError,
    StudyError,
    StudyStorageError,
    VoteError,
)
from study.mturk import is_preview
from study.scaling import aggregate, fit_bt_davidson
from study.scheduler import Candidate, choose, is_golden_slot

MAX_RESPONSE_MS = 3_600_000
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|inf(inity)?|nan)", re.IGNORECASE)
INFO_KEYS = ("age_range", "vision", "display", "experience", "comment")
# URL parameters of crowdsourcing platforms stored with the rater. The first present of
# PLATFORM_ID_KEYS is the participant id (one session per study and id).
PLATFORM_KEYS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId", "hitId", "turkSubmitTo",
                 "participant")
PLATFORM_ID_KEYS = ("PROLIFIC_PID", "workerId", "participant")
# MTurk's keys that name the current assignment: a returning worker may bring a new one.
MTURK_ASSIGNMENT_KEYS = ("assignmentId", "hitId", "turkSubmitTo")
# A Hugging Face sign-in is stored as platform["hf_user"] and the participant id "hf:<username>"
# (never taken from the link: a link's id that starts with "hf:" is not used as an id).
HF_USER_KEY = "hf_user"
HF_ID_PREFIX = "hf:"
HF_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
VIEW_MODES = ("side", "toggle")
QUESTIONS = {"quality": "Which image looks better?",
             "fidelity": "Which image is closer to the original (middle)?"}


@dataclass(frozen=True)
class PairView:
    """What the rater page shows: one assignment, left and right images."""

    assignment_id: int
    position: int  # 0-based
    total: int
    left_path: str
    right_path: str
    source_id: str
    original_path: str | None = None  # fidelity task: the source shown between the two
    shown_count: int = field(default=1, compare=False)  # 1 on first show, more after reloads


@dataclass(frozen=True)
class StudyInfo:
    """What the rater page needs to know about a study (no ids of conditions)."""

    id: int
    name: str
    slug: str | None
    status: str
    task: str
    pairs_per_session: int
    completion_code: str | None
    redirect_url: str | None
    rater_login: str = "none"  # RATER_LOGINS
    description: str = ""

    @property
    def login_required(self) -> bool:
        return self.rater_login == "hf"

    @property
    def login_offered(self) -> bool:
        return self.rater_login in ("hf", "hf-optional")

    @property
    def question(self) -> str:
        return QUESTIONS[self.task]

    @property
    def closed_message(self) -> str:
        """What a rater reads when the study is not open, in plain words."""
        return _closed_text(self)


@dataclass(frozen=True)
class Viewing:
    """Viewing conditions the page reports with an answer; every field optional."""

    viewport_w: int | None = None
    viewport_h: int | None = None
    device_pixel_ratio: float | None = None
    view_ms: int | None = None
    mode: str | None = None

    @classmethod
    def parse(cls, d: dict | None) -> Viewing:
        """From the page's JSON; anything malformed is dropped (it only describes the vote)."""
        d = d if isinstance(d, dict) else {}

        def num(key: str, lo: float, hi: float, cast: type) -> int | float | None:
            v = d.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or not lo <= v <= hi:
                return None
            return cast(round(v)) if cast is int else cast(v)

        mode = d.get("mode")
        return cls(num("vw", 1, 100_000, int), num("vh", 1, 100_000, int), num("dpr", 0.1, 16, float),  # type: ignore[arg-type]
                   num("view_ms", 0, MAX_RESPONSE_MS, int), mode if mode in VIEW_MODES else None)  # type: ignore[arg-type]


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


class _VoteStatements:
    """The vote path's statements, built once: SQLAlchemy then reuses their compiled form."""

    def __init__(self) -> None:
        a, v, st, p = (Assignment.__table__.c, Vote.__table__.c, Stimulus.__table__.c, Pair.__table__.c)
        sc = Study.__table__.c
        self.info = select(sc.id, sc.name, sc.slug, sc.status, sc.task, sc.pairs_per_session, sc.completion_code,
                           sc.redirect_url, sc.rater_login, sc.description).where(sc.id == bindparam("study"))
        self.study = select(sc.status, sc.pairs_per_session, sc.task, sc.golden_every, sc.scheduler,
                            sc.balanced_votes_per_pair, sc.name).where(sc.id == bindparam("study"))
        self.pending = (select(a.id, a.position, a.left_stimulus_id, a.right_stimulus_id, a.shown_count)
                        .outerjoin(Vote.__table__, v.assignment_id == a.id)
                        .where(a.rater_id == bindparam("rater"), v.id.is_(None)).order_by(a.position).limit(1))
        self.issued = select(func.count()).select_from(Assignment.__table__).where(a.rater_id == bindparam("rater"))
        self.shown = update(Assignment.__table__).where(a.id == bindparam("aid")).values(shown_count=bindparam("shown"))
        self.stimuli = select(st.id, st.path, st.source_id).where(st.id.in_(bindparam("ids", expanding=True)))
        self.original = select(st.path).where(st.study_id == bindparam("study"), st.key == bindparam("key"))
        counts = (select(a.pair_id, func.count(a.id).label("n")).join(Pair.__table__, p.id == a.pair_id)
                  .where(p.study_id == bindparam("study")).group_by(a.pair_id).subquery())
        self.candidates = (select(p.id, p.stimulus_a_id, p.stimulus_b_id, p.is_golden, func.coalesce(counts.c.n, 0))
                           .outerjoin(counts, counts.c.pair_id == p.id)
                           .where(p.study_id == bindparam("study"),
                                  p.id.not_in(select(a.pair_id).where(a.rater_id == bindparam("rater")))))
        self.add_assignment = insert(Assignment.__table__)
        self.assignment = select(a.pair_id, a.left_stimulus_id, a.right_stimulus_id).where(
            a.id == bindparam("aid"), a.rater_id == bindparam("rater"))
        self.add_vote = insert(Vote.__table__)
        self.votes_of = select(func.count()).select_from(Vote.__table__).where(v.rater_id == bindparam("rater"))


_SQL = _VoteStatements()


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
        self._token_cache: dict[str, tuple[int, int, str]] = {}

    # ---- rater session -------------------------------------------------------------
    def open_studies(self) -> list[tuple[int, str]]:
        with self.db.read() as s:
            return [(i, n) for i, n in s.execute(select(Study.id, Study.name).where(Study.status == "open")
                                                  .order_by(Study.id))]

    def find_study(self, ref: str | int) -> StudyInfo:
        """A study by its link slug or its id (any status); NotFoundError otherwise."""
        with self.db.read() as s:
            study = None
            if isinstance(ref, str) and not ref.strip().isdigit():
                study = s.scalar(select(Study).where(Study.slug == ref.strip().lower()))
            else:
                try:
                    study = s.get(Study, int(ref))
                except (TypeError, ValueError):
                    study = None
            if study is None:
                raise NotFoundError(f"there is no study {str(ref)[:80]!r}: check the link")
            return _info(study)

    def start_session(self, study_id: int, info: dict[str, str] | None = None,
                      platform: dict[str, str] | None = None, hf_user: str | None = None) -> str:
        """Record consent now and return the rater's token.

        With a platform participant id (``PROLIFIC_PID``, ``workerId``) that already has a
        session in this study, that session's token is returned: one id, one session (a
        returning MTurk worker's new assignment is stored with it). ``hf_user`` is the
        Hugging Face username of a signed-in rater (from the server's OAuth session, never
        from the link): in a study with ``rater_login`` hf it is required and is the
        participant id; with hf-optional it is the id when present; with none it is ignored.
        An MTurk preview (``assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE``) starts nothing.
        """
        info = {k: str(v)[:200] for k, v in (info or {}).items() if k in INFO_KEYS and v not in (None, "")}
        params = {k: str(v)[:200] for k, v in (platform or {}).items() if k in PLATFORM_KEYS and v not in (None, "")}
        if is_preview(params):
            raise StudyError("this is a preview of the HIT: accept the HIT to start")
        user = (hf_user or "").strip() or None
        if user is not None and not HF_USER_RE.match(user):
            raise StudyError("the Hugging Face username is not a valid one")
        pid = next((params[k] for k in PLATFORM_ID_KEYS if k in params and not params[k].startswith(HF_ID_PREFIX)),
                   None)
        token = secrets.token_hex(16)
        try:
            with self.db.write() as s:
                study = s.get(Study, study_id)
                if study is None:
                    raise NotFoundError(f"no study with id {study_id}")
                if study.status != "open":
                    raise StudyClosedError(_closed_text(study))
                login = study.rater_login if study.rater_login in RATER_LOGINS else "none"
                if login == "hf" and user is None:
                    raise LoginRequiredError("this study asks you to sign in with Hugging Face first")
                if login != "none" and user is not None:
                    params[HF_USER_KEY] = user
                    pid = HF_ID_PREFIX + user
                if pid is not None:
                    known = s.scalar(select(Rater).where(Rater.study_id == study_id, Rater.platform_id == pid))
                    if known is not None:
                        _new_assignment(known, params)
                        return known.token
                s.add(Rater(study_id=study_id, token=token, consent_at=_now(), info=info,
                            platform_id=pid, platform=params or None))
        except IntegrityError:  # the same platform id started twice at once: the first one stands
            with self.db.read() as s:
                known = s.scalar(select(Rater.token).where(Rater.study_id == study_id, Rater.platform_id == pid))
            if known is None:
                raise
            return known
        return token

    def note_assignment(self, token: str, platform: dict[str, str] | None) -> None:
        """A stored session reopened from an MTurk link: keep the assignment it brings (to hand back)."""
        params = {k: str(v)[:200] for k, v in (platform or {}).items() if k in MTURK_ASSIGNMENT_KEYS and v}
        if not params or is_preview(params):
            return
        with self.db.write() as s:
            _new_assignment(self._rater(s, token), params)

    def platform_params(self, token: str) -> dict[str, str]:
        """The link parameters stored with a session (for the done page: MTurk's hand-back)."""
        with self.db.read() as s:
            rater = self._rater(s, token)
            return {str(k): str(v) for k, v in (rater.platform or {}).items()}

    def resume(self, token: str, study_id: int | None = None) -> StudyInfo:
        """The study of a stored token (checked against ``study_id`` when given)."""
        sid, _ = self._study_of(token)
        if study_id is not None and sid != study_id:
            raise VoteError("this session belongs to another study")
        with self.db.read() as s:
            return _info(s.connection().execute(_SQL.info, {"study": sid}).one())

    def _rater(self, s, token: str) -> Rater:  # type: ignore[no-untyped-def]
        if not isinstance(token, str) or not token or len(token) > 64:
            raise VoteError("missing or malformed rater id")
        rater = s.scalar(select(Rater).where(Rater.token == token))
        if rater is None:
            raise VoteError("unknown rater id (the session may have been tampered with)")
        return rater

    def _ids(self, token: str) -> tuple[int, int, str]:
        """(rater id, study id, scheduler) of a rater token; cached: none changes for a token."""
        hit = self._token_cache.get(token) if isinstance(token, str) else None
        if hit is None:
            with self.db.read() as s:
                rater = self._rater(s, token)
                study = s.get(Study, rater.study_id)
                assert study is not None
                hit = (rater.id, study.id, study.scheduler)
            if len(self._token_cache) > 100_000:
                self._token_cache.clear()
            self._token_cache[token] = hit
        return hit

    def _study_of(self, token: str) -> tuple[int, str]:
        """(study id, scheduler) of a rater token."""
        return self._ids(token)[1:]

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

    # The vote path (submit_vote, next_pair, vote_and_next) is the one hot path of a running
    # study: a few Core statements on one connection per transaction, no ORM objects loaded.
    def next_pair(self, token: str) -> PairView | None:
        """The rater's current pair (an unanswered one is shown again), or None when done."""
        rater_id, study_id, scheduler = self._ids(token)
        scores = self._scores(study_id) if scheduler == "active" else None
        with self.db.write() as s:
            return self._next(s, rater_id, study_id, scores)

    def vote_and_next(self, token: str, assignment_id: int, choice: str, response_ms: int,
                      client_time: object = None, viewing: Viewing | None = None
                      ) -> tuple[VoteReceipt, PairView | None]:
        """``submit_vote`` then ``next_pair`` in one transaction (what the rater page does)."""
        ctime = _check_vote(choice, assignment_id, response_ms, client_time)
        rater_id, study_id, scheduler = self._ids(token)
        scores = self._scores(study_id) if scheduler == "active" else None
        try:
            with self.db.write() as s:
                receipt, study = self._submit(s, rater_id, study_id, assignment_id, choice, response_ms, ctime,
                                              viewing)
                return receipt, self._next(s, rater_id, study_id, scores, study)
        except IntegrityError:
            raise DuplicateVoteError("this pair was already answered; the first answer stands") from None

    def _open_study(self, c, study_id: int):  # type: ignore[no-untyped-def]
        """The columns of an open study that the vote path needs; StudyClosedError otherwise."""
        row = c.execute(_SQL.study, {"study": study_id}).one()
        if row.status != "open":
            raise StudyClosedError(_closed_text(row))
        return row

    def _next(self, s, rater_id: int, study_id: int,  # type: ignore[no-untyped-def]
              scores: dict[int, float] | None, study=None) -> PairView | None:
        """The rater's current pair; ``study``: the open study's row when the caller has it."""
        c = s.connection()
        study = study or self._open_study(c, study_id)
        pending = c.execute(_SQL.pending, {"rater": rater_id}).first()
        if pending is None:
            issued = c.execute(_SQL.issued, {"rater": rater_id}).scalar() or 0
            if issued >= study.pairs_per_session:
                return None
            pending = self._issue(c, study_id, study, rater_id, issued, scores)
            if pending is None:
                return None
            shown = 1
        else:
            shown = pending.shown_count + 1  # shown again: a reload, a reopened tab, a refused vote
            c.execute(_SQL.shown, {"aid": pending.id, "shown": shown})
        aid, position, left_id, right_id = pending[:4]
        stim = {i: (path, src) for i, path, src in c.execute(_SQL.stimuli, {"ids": [left_id, right_id]})}
        (left_path, source_id), (right_path, _) = stim[left_id], stim[right_id]
        original = None
        if study.task == "fidelity":
            original = c.execute(_SQL.original, {"study": study_id, "key": f"{source_id}|reference"}).scalar()
        return PairView(aid, position, study.pairs_per_session, left_path, right_path, source_id, original, shown)

    def _issue(self, c, study_id: int, study, rater_id: int, position: int,  # type: ignore[no-untyped-def]
               scores: dict[int, float] | None) -> tuple[int, int, int, int] | None:
        rows = c.execute(_SQL.candidates, {"study": study_id, "rater": rater_id}).all()
        golden = [Candidate(r[0], r[1], r[2], r[4]) for r in rows if r[3]]
        test = [Candidate(r[0], r[1], r[2], r[4]) for r in rows if not r[3]]
        with self._rng_lock:
            pick = None
            if golden and is_golden_slot(position, study.golden_every, rater_id):
                pick = choose(golden, "balanced", 0, None, self._rng)
            if pick is None:
                pick = choose(test, study.scheduler, study.balanced_votes_per_pair, scores, self._rng)
            if pick is None and golden:
                pick = choose(golden, "balanced", 0, None, self._rng)
            if pick is None:
                return None
            swap = bool(self._rng.random() < 0.5)
        left, right = (pick.b, pick.a) if swap else (pick.a, pick.b)
        aid = c.execute(_SQL.add_assignment, {
            "rater_id": rater_id, "pair_id": pick.pair_id, "position": position, "left_stimulus_id": left,
            "right_stimulus_id": right, "issued_at": _now(), "shown_count": 1}).inserted_primary_key[0]
        return aid, position, left, right

    def submit_vote(self, token: str, assignment_id: int, choice: str, response_ms: int,
                    client_time: object = None, viewing: Viewing | None = None) -> VoteReceipt:
        """Store one answer. Raises VoteError / DuplicateVoteError / StudyClosedError."""
        ctime = _check_vote(choice, assignment_id, response_ms, client_time)
        rater_id, study_id, _ = self._ids(token)
        try:
            with self.db.write() as s:
                return self._submit(s, rater_id, study_id, assignment_id, choice, response_ms, ctime, viewing)[0]
        except IntegrityError:
            raise DuplicateVoteError("this pair was already answered; the first answer stands") from None

    def _submit(self, s, rater_id: int, study_id: int, assignment_id: int,  # type: ignore[no-untyped-def]
                choice: str, response_ms: int, ctime: datetime | None, viewing: Viewing | None
                ) -> tuple[VoteReceipt, Any]:
        """Store the vote; (its receipt, the open study's row)."""
        c = s.connection()
        row = c.execute(_SQL.assignment, {"aid": assignment_id, "rater": rater_id}).first()
        if row is None:
            raise VoteError(f"assignment {assignment_id} does not exist for this rater")
        study = self._open_study(c, study_id)
        v = viewing or Viewing()
        vote_id = c.execute(_SQL.add_vote, {
            "study_id": study_id, "assignment_id": assignment_id, "rater_id": rater_id, "pair_id": row.pair_id,
            "choice": choice, "left_stimulus_id": row.left_stimulus_id, "right_stimulus_id": row.right_stimulus_id,
            "response_ms": int(round(response_ms)), "client_time": ctime, "server_time": _now(),
            "viewport_w": v.viewport_w, "viewport_h": v.viewport_h, "device_pixel_ratio": v.device_pixel_ratio,
            "view_ms": v.view_ms, "view_mode": v.mode}).inserted_primary_key[0]
        done = c.execute(_SQL.votes_of, {"rater": rater_id}).scalar() or 0
        return VoteReceipt(vote_id, done, study.pairs_per_session), study

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

    def set_link(self, study_id: int, slug: str | None, completion_code: str | None = None,
                 redirect_url: str | None = None) -> None:
        """The study link ``?study=<slug>``, the code shown at the end and the optional return URL."""
        slug = (slug or "").strip().lower() or None
        code = (completion_code or "").strip() or None
        url = (redirect_url or "").strip() or None
        if slug is not None and not SLUG_RE.match(slug):
            raise StudyError("the link name may hold a-z, 0-9 and '-', up to 63 characters, starting with a "
                             "letter or digit")
        if slug is not None and slug.isdigit():
            raise StudyError("the link name needs a letter (numbers are study ids)")
        if code is not None and (len(code) > 100 or not code.isprintable()):
            raise StudyError("the completion code must be printable and at most 100 characters")
        if url is not None and (not re.match(r"^https?://[^\s<>\"']+$", url) or len(url) > 2000):
            raise StudyError("the return URL must be an http(s) URL without spaces or quotes")
        try:
            with self.db.write() as s:
                study = s.get(Study, study_id)
                if study is None:
                    raise NotFoundError(f"no study with id {study_id}")
                study.slug, study.completion_code, study.redirect_url = slug, code, url
        except IntegrityError:
            raise StudyError(f"another study already uses the link name {slug!r}") from None

    def add_trap_pairs(self, study_id: int) -> int:
        """One trap pair per source: a test stimulus against an identical copy ("same" expected).

        The copy is a stimulus row of its own (role ``reference``, no condition, so never
        scaled) pointing at the same stored file. Returns how many were added.
        """
        added = 0
        with self.db.write() as s:
            study = s.get(Study, study_id)
            if study is None:
                raise NotFoundError(f"no study with id {study_id}")
            tests = s.scalars(select(Stimulus).where(Stimulus.study_id == study_id, Stimulus.role == "test")
                              .order_by(Stimulus.source_id, Stimulus.id)).all()
            have = set(s.scalars(select(Stimulus.source_id).where(Stimulus.study_id == study_id,
                                                                  Stimulus.key.like("%|trap"))))
            by_source: dict[str, list[Stimulus]] = {}
            for st in tests:
                by_source.setdefault(st.source_id, []).append(st)
            for source, rows in by_source.items():
                if source in have:
                    continue
                base = rows[len(rows) // 2]  # a middle condition: neither the best nor the worst
                copy = Stimulus(study_id=study_id, key=f"{source}|trap", source_id=source, role="reference",
                                path=base.path, sha256=base.sha256)
                s.add(copy)
                s.flush()
                lo, hi = sorted((base.id, copy.id))
                s.add(Pair(study_id=study_id, stimulus_a_id=lo, stimulus_b_id=hi, is_golden=True, kind="trap"))
                added += 1
        return added

    def set_excluded(self, study_id: int, rater_id: int, excluded: bool) -> None:
        with self.db.write() as s:
            rater = s.get(Rater, rater_id)
            if rater is None or rater.study_id != study_id:
                raise NotFoundError(f"no rater {rater_id} in study {study_id}")
            rater.excluded = excluded

    def rater_sessions(self, study_id: int) -> list[tuple[int, str | None, int]]:
        """(rater id, platform id, votes) of every session of a study."""
        with self.db.read() as s:
            n = (select(Vote.rater_id, func.count(Vote.id).label("n")).where(Vote.study_id == study_id)
                 .group_by(Vote.rater_id).subquery())
            return [(r, p, int(v or 0)) for r, p, v in s.execute(
                select(Rater.id, Rater.platform_id, n.c.n).outerjoin(n, n.c.rater_id == Rater.id)
                .where(Rater.study_id == study_id).order_by(Rater.id))]

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


def _check_vote(choice: str, assignment_id: int, response_ms: int, client_time: object) -> datetime | None:
    """The client time of a vote; VoteError for arguments out of their domain (before any database work)."""
    if choice not in CHOICES:
        raise VoteError(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")
    if isinstance(assignment_id, bool) or not isinstance(assignment_id, int):
        raise VoteError(f"assignment id must be an integer, got {assignment_id!r}")
    if isinstance(response_ms, bool) or not isinstance(response_ms, int | float) or not np.isfinite(response_ms):
        raise VoteError(f"response time must be a number of milliseconds, got {response_ms!r}")
    if not (0 <= response_ms <= MAX_RESPONSE_MS):
        raise VoteError(f"response time {response_ms} ms is out of range (0 to {MAX_RESPONSE_MS})")
    return parse_client_time(client_time)


def _info(study: Study | Any) -> StudyInfo:
    """A study's rater-facing facts, from its ORM object or a row of its columns."""
    return StudyInfo(study.id, study.name, study.slug, study.status, study.task if study.task in TASKS else "quality",
                     study.pairs_per_session, study.completion_code, study.redirect_url,
                     study.rater_login if study.rater_login in RATER_LOGINS else "none", study.description or "")


def _new_assignment(rater: Rater, params: dict[str, str]) -> None:
    """A returning MTurk worker brings the assignment to hand back now: store it with the session."""
    fresh = {k: params[k] for k in MTURK_ASSIGNMENT_KEYS if k in params}
    old = dict(rater.platform or {})
    if fresh and any(old.get(k) != v for k, v in fresh.items()):
        rater.platform = {**old, **fresh}


def _closed_text(study: StudyInfo | Study | Any) -> str:
    """What a rater reads when a study (anything with its status and name) is not open."""
    if study.status == "closed":
        return f"The study “{study.name}” is closed: it no longer collects answers. Thank you for your interest."
    return f"The study “{study.name}” has not started yet: please come back later."
