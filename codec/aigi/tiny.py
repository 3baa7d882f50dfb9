"""Tiny random-weight text-to-image pipelines: they prove the AIGI plumbing, never the quality.

No Stable Diffusion weights can be fetched on the project's offline machines. These
pipelines have SD's architecture in miniature (codec.decode.tiny) and random weights, so
what they "generate" is structured noise, not an AI-generated image: everything made with
them is named ``...-random-weights`` and must be reported as "random weights".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..decode.tiny import RANDOM_LABEL

TINY_MODEL = f"tiny-sd-{RANDOM_LABEL}"


def tiny_txt2img(seed: int = 0) -> Any:
    """A StableDiffusionPipeline of tiny random components (weights drawn with ``seed``).

    The UNet attends only at half the latent resolution (SD attends at every level), so a
    512x512 picture takes seconds on a CPU, not minutes.
    """
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    from ..decode.tiny import tiny_components

    parts = tiny_components(seed)
    parts.pop("controlnet")
    torch.manual_seed(seed)
    parts["unet"] = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )  # fmt: skip
    pipe = StableDiffusionPipeline(
        **parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_txt2img(directory: str | Path, seed: int = 0) -> Path:
    """Write a tiny pipeline in diffusers layout, loadable with from_pretrained like real weights."""
    directory = Path(directory)
    tiny_txt2img(seed).save_pretrained(directory, safe_serialization=True)
    return directory
