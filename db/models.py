"""Typed models of a pairwise-comparison study.

Uniqueness lives in constraints, never in a read followed by a write: the database
refuses a second vote of one rater on one pair, a second assignment of one pair to one
rater, a duplicate stimulus, or a pair stored in both orders (``stimulus_a_id <
stimulus_b_id``). The vote intake relies on those refusals under concurrency.

    Study ─┬─ Condition (codec + target bpp, set-level metrics)
           ├─ Stimulus  (source image, condition or golden role, file, real bpp, metrics)
           ├─ Pair      (two stimuli of one source; golden pairs know the better side)
           └─ Rater ── Assignment (a pair shown to a rater, with its left side) ── Vote
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so Alembic migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STUDY_STATUSES = ("draft", "open", "closed")
# fidelity: the original is shown between the two candidates ("which is closer to the original?");
# quality: no original ("which looks better?"). MISC's two axes, consistency and perception.
TASKS = ("quality", "fidelity")
# test: two reconstructions under study; golden: the original against a badly degraded copy
# (the original must win); trap: one image against an identical copy ("same" expected).
PAIR_KINDS = ("test", "golden", "trap")
STIMULUS_ROLES = ("test", "reference", "degraded")
CHOICES = ("left", "right", "tie")
SCHEDULERS = ("balanced", "active")
# How a rater says who they are (revision 0004): none (a random token, or a platform id from the
# link); hf (sign in with Hugging Face first: the username is the participant id);
# hf-optional (the sign-in is offered; without it the rater is anonymous).
RATER_LOGINS = ("none", "hf", "hf-optional")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Study(Base):
    __tablename__ = "study"
    __table_args__ = (
        Index("uq_study_slug", "slug", unique=True),
        CheckConstraint("status IN ('draft','open','closed')", name="status"),
        CheckConstraint("scheduler IN ('balanced','active')", name="scheduler"),
        CheckConstraint("pairs_per_session > 0", name="pairs_per_session"),
        CheckConstraint("golden_every >= 0", name="golden_every"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="draft")
    scheduler: Mapped[str] = mapped_column(String(10), default="active")
    # Balanced scheduling until every test pair has this many votes, then active.
    balanced_votes_per_pair: Mapped[int] = mapped_column(Integer, default=1)
    pairs_per_session: Mapped[int] = mapped_column(Integer, default=30)
    # One golden pair every N pairs of a session (0: none).
    golden_every: Mapped[int] = mapped_column(Integer, default=8)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    source: Mapped[str] = mapped_column(Text, default="")  # where the stimuli came from
    # Since revision 0002: the study link (?study=<slug>), the task, and the end of a session.
    slug: Mapped[str | None] = mapped_column(String(64), nullable=True)
    task: Mapped[str] = mapped_column(String(10), default="quality", server_default="quality")
    completion_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    redirect_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Since revision 0004: whether raters sign in with Hugging Face (RATER_LOGINS).
    rater_login: Mapped[str] = mapped_column(String(12), default="none", server_default="none")

    conditions: Mapped[list[Condition]] = relationship(back_populates="study", cascade="all, delete-orphan")
    stimuli: Mapped[list[Stimulus]] = relationship(back_populates="study", cascade="all, delete-orphan")
    pairs: Mapped[list[Pair]] = relationship(back_populates="study", cascade="all, delete-orphan")
    raters: Mapped[list[Rater]] = relationship(back_populates="study", cascade="all, delete-orphan")


class Condition(Base):
    """A codec at a target rate: what the study ranks, pooled over source images."""

    __tablename__ = "condition"
    __table_args__ = (UniqueConstraint("study_id", "codec", "target_bpp"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    codec: Mapped[str] = mapped_column(String(100))
    target_bpp: Mapped[float] = mapped_column(Float)
    set_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    study: Mapped[Study] = relationship(back_populates="conditions")

    @property
    def label(self) -> str:
        return f"{self.codec}@{self.target_bpp:g}"


class Stimulus(Base):
    """One image shown to raters.

    ``role`` is ``test`` for a reconstruction under study (it has a condition),
    ``reference`` / ``degraded`` for the two sides of golden pairs (no condition; never
    scaled).
    """

    __tablename__ = "stimulus"
    __table_args__ = (
        UniqueConstraint("study_id", "key"),
        CheckConstraint("role IN ('test','reference','degraded')", name="role"),
        CheckConstraint("(role = 'test') = (condition_id IS NOT NULL)", name="condition_role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    # "source|codec@bpp" or "source|reference" / "source|degraded": unique in a study.
    key: Mapped[str] = mapped_column(String(400))
    source_id: Mapped[str] = mapped_column(String(200), index=True)
    # "natural" (a photograph) or "aigi" (an AI-generated image), as the manifest says.
    source_kind: Mapped[str] = mapped_column(String(10), default="natural", server_default="natural")
    role: Mapped[str] = mapped_column(String(10), default="test")
    condition_id: Mapped[int | None] = mapped_column(
        ForeignKey("condition.id", ondelete="CASCADE"), nullable=True, index=True
    )
    path: Mapped[str] = mapped_column(Text)  # absolute path of the stored image
    sha256: Mapped[str] = mapped_column(String(64))
    real_bpp: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    study: Mapped[Study] = relationship(back_populates="stimuli")
    condition: Mapped[Condition | None] = relationship()


class Pair(Base):
    """Two stimuli of the same source, stored once in canonical order (a < b)."""

    __tablename__ = "pair"
    __table_args__ = (
        UniqueConstraint("study_id", "stimulus_a_id", "stimulus_b_id"),
        CheckConstraint("stimulus_a_id < stimulus_b_id", name="ordered"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    stimulus_a_id: Mapped[int] = mapped_column(ForeignKey("stimulus.id", ondelete="CASCADE"))
    stimulus_b_id: Mapped[int] = mapped_column(ForeignKey("stimulus.id", ondelete="CASCADE"))
    is_golden: Mapped[bool] = mapped_column(Boolean, default=False)
    # For golden pairs: the stimulus every attentive rater prefers.
    golden_better_id: Mapped[int | None] = mapped_column(ForeignKey("stimulus.id"), nullable=True)
    # test | golden | trap (revision 0002). Golden and trap pairs are both ``is_golden`` (check
    # pairs, never scaled); a trap has no better side: its right answer is "same".
    kind: Mapped[str] = mapped_column(String(10), default="test", server_default="test")

    study: Mapped[Study] = relationship(back_populates="pairs")
    stimulus_a: Mapped[Stimulus] = relationship(foreign_keys=[stimulus_a_id])
    stimulus_b: Mapped[Stimulus] = relationship(foreign_keys=[stimulus_b_id])


class Rater(Base):
    """An anonymous rater: a random public token, consent time, optional self-report."""

    __tablename__ = "rater"
    # One platform id (Prolific PROLIFIC_PID, MTurk workerId) holds one session per study.
    __table_args__ = (Index("uq_rater_study_platform", "study_id", "platform_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)  # set by the admin
    # Crowdsourcing (revision 0002): the platform's participant id and the link's parameters.
    platform_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    platform: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="raters")


class Assignment(Base):
    """A pair shown to a rater, with the side each stimulus was shown on.

    The (rater, pair) constraint is what guarantees a rater never sees a pair twice.
    """

    __tablename__ = "assignment"
    __table_args__ = (
        UniqueConstraint("rater_id", "pair_id"),
        UniqueConstraint("rater_id", "position"),
        Index("ix_assignment_pair", "pair_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("rater.id", ondelete="CASCADE"))
    pair_id: Mapped[int] = mapped_column(ForeignKey("pair.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0-based order in the rater's session
    left_stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimulus.id"))
    right_stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimulus.id"))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # How often the pair was sent to the page (1 + reloads / reopenings before the answer).
    shown_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    rater: Mapped[Rater] = relationship()
    pair: Mapped[Pair] = relationship()


class Vote(Base):
    """One answer. Unique per assignment and per (rater, pair): a retry cannot double it."""

    __tablename__ = "vote"
    __table_args__ = (
        UniqueConstraint("assignment_id"),
        UniqueConstraint("rater_id", "pair_id"),
        CheckConstraint("choice IN ('left','right','tie')", name="choice"),
        CheckConstraint("response_ms >= 0", name="response_ms"),
        Index("ix_vote_study", "study_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"))
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("rater.id", ondelete="CASCADE"))
    pair_id: Mapped[int] = mapped_column(ForeignKey("pair.id", ondelete="CASCADE"))
    choice: Mapped[str] = mapped_column(String(5))
    left_stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimulus.id"))
    right_stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimulus.id"))
    response_ms: Mapped[int] = mapped_column(Integer)
    client_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    server_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Viewing conditions the page reported with the answer (revision 0002; absent from API clients).
    viewport_w: Mapped[int | None] = mapped_column(Integer, nullable=True)
    viewport_h: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_pixel_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    view_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)  # time on the pair, page clock
    view_mode: Mapped[str | None] = mapped_column(String(10), nullable=True)  # side | toggle
