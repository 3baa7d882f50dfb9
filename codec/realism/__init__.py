"""Decoder-in-the-loop rate control and the fidelity ↔ realism knob (issue 13; docs/REALISM.md).

    score     U(R): PSNR vs a perceptual distance, with a hallucination guard
    detail    the detail level α a file asks of its decoder (REALISM section, 1 byte)
    loop      proxy decodes of the most promising payloads → payload, α, seed
"""

from .detail import apply_detail, pack_detail, unpack_detail
from .loop import DEFAULT_REALISM, LoopChoice, LoopConfig, choose, is_stochastic, seed_candidates
from .score import KAPPA, Perceptual, Score, check_realism, texture_distance, utility

__all__ = [
    "DEFAULT_REALISM", "KAPPA", "LoopChoice", "LoopConfig", "Perceptual", "Score", "apply_detail",
    "check_realism", "choose", "is_stochastic", "pack_detail", "seed_candidates", "texture_distance",
    "unpack_detail", "utility",
]  # fmt: skip
