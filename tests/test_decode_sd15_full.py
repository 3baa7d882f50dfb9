"""SD 1.5 + ControlNet at FULL SIZE with RANDOM weights, through the decoder's real code path.

No SD weights can be downloaded here, so the real architectures are built from configs
written in codec/decode/tiny.py; parameter counts are checked against the published
models, then one small picture is decoded (64×64, one step, regional prompts). fp32 on
CPU needs about 5.5 GB of RAM.
"""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from PIL import Image

from codec.decode.diffusion import DiffusionConfig, DiffusionDecoder
from codec.decode.sd_pipeline import MapGuidedControlNetPipeline
from codec.decode.tiny import sd15_components
from codec.records import DecodedLayers, Description, Item

# Parameter counts of stable-diffusion-v1-5 (unet, vae, text_encoder) and
# an SD 1.5 ControlNet (v1.0 and v1.1 share the architecture), as counted from the published
# weights by diffusers/transformers.
SD15_PARAMS = {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480, "controlnet": 361_279_120}


def _decode_in_this_process() -> tuple[dict, tuple, dict, list]:
    from codec_helpers import KODAK

    parts = sd15_components(seed=0)
    counts = {k: sum(p.numel() for p in parts[k].parameters()) for k in SD15_PARAMS}
    pipe = MapGuidedControlNetPipeline(**parts)
    facts = {"size_multiple": pipe.size_multiple, "vae_scale": pipe.vae_scale, "device": str(pipe.device)}
    img = Image.open(KODAK / "kodim03.png").convert("RGB").resize((64, 64))
    left = np.zeros((8, 8), bool)
    left[:, :4] = True
    layers = DecodedLayers(
        64,
        64,
        False,
        3,
        [],
        img.resize((16, 16), Image.Resampling.BOX),
        Description([Item("hat", "red felt"), Item("wall", "white")], "hats on a wall"),
        [left, ~left],
    )
    steps: list[str] = []
    dec = DiffusionDecoder(pipe, DiffusionConfig(steps=1, strength=1.0), models=("sd15-random-weights",))
    r = dec.decode(layers, progress=lambda f, m: steps.append(m))
    return counts, r.image.size, {**r.metadata, **facts}, steps


@pytest.mark.slow
def test_sd15_full_size_random_weights_decode():
    # In a child process: the ~6 GB heap goes back to the system when it exits, instead of
    # staying in the pytest process for the rest of the suite (browser tests included).
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        counts, size, metadata, steps = pool.apply(_decode_in_this_process)
    assert counts == SD15_PARAMS
    assert metadata["size_multiple"] == 64 and metadata["vae_scale"] == 8 and metadata["device"] == "cpu"
    assert size == (64, 64) and metadata["mode"] == "regional" and metadata["dtype"] == "float32"
    assert "denoising step 1/1" in steps
    assert metadata["weights"].startswith("random")
