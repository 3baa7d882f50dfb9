"""Which pair a rater sees next.

    candidates = pairs of the study this rater has not been shown
    golden slot?  ─► an unseen golden pair
    balanced phase (some pair has < k issues) ─► a least-issued candidate, at random
    active phase ─► argmax  p(1−p) / (1 + n_issued)   (p from the current BT fit)

The active rule is an honest simplification of ASAP's expected information gain: it
prefers pairs whose outcome the current model finds most uncertain (p ≈ ½), discounted
by how often they were already shown so that close pairs are not asked forever. With
the ``balanced`` scheduler the first phase simply never ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candidate:
    pair_id: int
    a: int  # stimulus ids
    b: int
    issued: int  # how many times the pair was issued (to any rater)


def is_golden_slot(position: int, golden_every: int, rater_id: int) -> bool:
    """One golden pair in each block of ``golden_every`` positions, at a rater-specific offset."""
    if golden_every <= 0:
        return False
    offset = (rater_id * 7919) % golden_every
    return position % golden_every == offset


def choose(candidates: list[Candidate], scheduler: str, balanced_votes_per_pair: int,
           scores: dict[int, float] | None, rng: np.random.Generator) -> Candidate | None:
    if not candidates:
        return None
    issued = np.array([c.issued for c in candidates], dtype=np.float64)
    if scheduler == "balanced" or scores is None or issued.min() < balanced_votes_per_pair:
        pool = np.flatnonzero(issued == issued.min())
        return candidates[int(rng.choice(pool))]
    d = np.array([scores.get(c.a, 0.0) - scores.get(c.b, 0.0) for c in candidates])
    p = 1.0 / (1.0 + np.exp(-d))
    gain = p * (1 - p) / (1.0 + issued)
    gain += rng.random(gain.size) * 1e-9  # random tie-break
    return candidates[int(np.argmax(gain))]
