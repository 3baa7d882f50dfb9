"""Map-guided diffusion decoding with tiny RANDOM-weight components (plumbing, not quality).

The components are built from configs (no weights exist offline); the tokenizer is the
real CLIP BPE tokenizer built from open_clip's vocabulary file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from codec.decode import get_decoder
from codec.decode.diffusion import DiffusionConfig, DiffusionDecoder, working_size
from codec.decode.regions import blend, region_weights, soft_masks
from codec.decode.sd_pipeline import MapGuidedControlNetPipeline, Region
from codec.decode.tiny import offline_clip_tokenizer, tiny_components, tiny_xl_components
from codec.errors import ModelUnavailableError
from codec.records import DecodedLayers, Description, Item

KODAK = "/work/shared/data/kodak24/kodim01.png"
LEFT = np.zeros((8, 8), bool)
LEFT[:, :4] = True


@pytest.fixture(scope="module")
def pipe() -> MapGuidedControlNetPipeline:
    return MapGuidedControlNetPipeline(**tiny_components(seed=0))


def layers(
    width: int = 64, height: int = 64, seed: int = 7, maps: bool = True, grayscale: bool = False
) -> DecodedLayers:
    img = Image.open(KODAK).convert("RGB").resize((width, height))
    low = img.resize((max(1, width // 4), max(1, height // 4)), Image.Resampling.BOX)
    desc = Description(
        [Item("red house", "brick wall, white windows"), Item("sky", "clear blue")], "a house under a sky"
    )
    return DecodedLayers(width, height, grayscale, seed, ["tiny"], low, desc, [LEFT, ~LEFT] if maps else None)


def decoder(pipe, **cfg) -> DiffusionDecoder:
    return DiffusionDecoder(
        pipe, DiffusionConfig(steps=cfg.pop("steps", 3), **cfg), models=("tiny-random-weights",)
    )


def test_tokenizer_matches_open_clip_ids():
    import open_clip

    tok = offline_clip_tokenizer()
    ids = tok("a photo of a red house").input_ids
    assert len(tok) == 49408 and ids == open_clip.tokenize(["a photo of a red house"])[0][: len(ids)].tolist()


@pytest.mark.parametrize("mode", ["regional", "multistage", "global"])
def test_decode_each_mode_shape_mode_and_progress(pipe, mode):
    steps: list[float] = []
    r = decoder(pipe, mode=mode).decode(layers(70, 52), progress=lambda f, m: steps.append(f))
    assert r.image.size == (70, 52) and r.image.mode == "RGB"
    assert r.metadata["mode"] == mode and r.metadata["working_size"] == [80, 64]
    assert r.metadata["weights"].startswith("random")
    assert steps == sorted(steps) and steps[-1] == 1.0
    assert len(steps) >= 3 + 2  # one report per denoising step, plus start and end


def test_grayscale_output(pipe):
    assert decoder(pipe).decode(layers(grayscale=True)).image.mode == "L"


def test_deterministic_for_a_seed(pipe):
    a = np.asarray(decoder(pipe).decode(layers(seed=5)).image)
    b = np.asarray(decoder(pipe).decode(layers(seed=5)).image)
    c = np.asarray(decoder(pipe).decode(layers(seed=6)).image)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_no_maps_falls_back_to_global_and_says_so(pipe):
    r = decoder(pipe, mode="regional").decode(layers(maps=False))
    assert r.metadata["mode"] == "global" and "no item maps" in r.metadata["note"]


def test_modes_differ(pipe):
    out = {
        m: np.asarray(decoder(pipe, mode=m, color_fix="none").decode(layers()).image)
        for m in ("regional", "global")
    }
    assert not np.array_equal(out["regional"], out["global"])


def test_soft_masks_are_exactly_zero_beyond_softness():
    m = soft_masks([LEFT], (16, 16), softness=0.5)[0, 0]  # a grid cell = 2 latent px; radius 0
    assert torch.equal(m[:, :8], torch.ones(16, 8)) and torch.equal(m[:, 8:], torch.zeros(16, 8))
    m = soft_masks([LEFT], (32, 32), softness=1.0)[0, 0]  # cell 4 px: spreads ≤ 4 px
    assert torch.all(m[:, 20:] == 0) and torch.all(m[:, :12] == 1) and 0 < m[0, 16] < 1
    w = region_weights(soft_masks([LEFT, LEFT], (32, 32), 1.0), background_weight=0.3)
    assert torch.allclose(w.sum(0), torch.ones(1, 32, 32))
    assert torch.equal(w[0, 0, :, 20:], torch.ones(32, 12))  # background alone outside the items
    assert torch.allclose(w[:, 0, 0, 0], torch.tensor([0.3, 0.35, 0.35]))


def test_blend_is_weighted_average():
    eps = torch.stack([torch.full((4, 2, 2), float(v)) for v in (1, 3)])
    w = torch.tensor([0.25, 0.75]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    assert torch.allclose(blend(eps, w), torch.full((1, 4, 2, 2), 2.5))
    with pytest.raises(ValueError):
        blend(eps, None)


def test_region_changes_only_its_own_guidance(pipe):
    """With an item map on the left half, the blended noise prediction on the right is the
    background prompt's own prediction; on the left it differs."""
    torch.manual_seed(0)
    h = w = 16  # latent of a 128×128 picture; a grid cell = 2 latent px
    latents = torch.randn(1, 4, h, w)
    control = torch.rand(1, 3, 8 * h, 8 * w)
    pipe.scheduler.set_timesteps(10)
    t = pipe.scheduler.timesteps[3]
    bg, item, neg = "a quiet landscape", "a bright red fire truck", ""
    embeds_all = pipe.encode_prompts([neg, bg, item])
    weights = pipe.weights_for([Region(item, LEFT)], (h, w), softness=1.0, background_weight=0.0)
    blended = pipe.predict_noise(latents, t, embeds_all, control, weights, 5.0, 1.0)
    background_only = pipe.predict_noise(latents, t, pipe.encode_prompts([neg, bg]), control, None, 5.0, 1.0)
    right = slice(w // 2 + 2, w)  # beyond the softened edge (1 grid cell = 2 px)
    assert torch.allclose(blended[..., right], background_only[..., right], atol=1e-5)
    assert not torch.allclose(blended[..., : w // 2], background_only[..., : w // 2], atol=1e-3)
    item_only = pipe.predict_noise(latents, t, pipe.encode_prompts([neg, item]), control, None, 5.0, 1.0)
    # background_weight 0: deep inside the item's region only the item prompt counts.
    assert torch.allclose(blended[..., :4], item_only[..., :4], atol=1e-5)


def test_working_size():
    assert working_size(500, 500, 64, 1024) == (512, 512)
    assert working_size(3000, 1500, 64, 1024) == (1024, 512)
    assert working_size(10, 10, 64, 1024) == (64, 64)


def test_bad_mode_and_strength(pipe):
    with pytest.raises(ValueError, match="mode"):
        DiffusionConfig(mode="paste")
    with pytest.raises(ValueError, match="strength"):
        pipe(Image.new("RGB", (64, 64)), "x", strength=0.0)


def test_missing_weights_name_the_model_and_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as err:
        MapGuidedControlNetPipeline.from_pretrained(
            str(tmp_path / "sd"), "lllyasviel/control_v11f1e_sd15_tile"
        )
    msg = str(err.value)
    assert "lllyasviel/control_v11f1e_sd15_tile" in msg and "MISC_CONTROLNET_MODEL" in msg
    assert "local" in msg and "HF_HUB_OFFLINE" in msg and "cache" in msg
    with pytest.raises(ModelUnavailableError, match="nowhere.*local directory.*diffusers layout"):
        get_decoder("diffusion", controlnet_model=str(tmp_path / "nowhere"))


def test_real_loading_path_from_local_dirs(tmp_path, monkeypatch):
    """Save tiny components in diffusers' layout, then let auto find and load them: the same
    from_pretrained code real SD weights go through."""
    parts = tiny_components(seed=1)
    sd, cn = tmp_path / "sd", tmp_path / "cn"
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        parts[name].save_pretrained(sd / name)
    (sd / "model_index.json").write_text("{}")
    parts["controlnet"].save_pretrained(cn)
    monkeypatch.setenv("MISC_SD_MODEL", str(sd))
    monkeypatch.setenv("MISC_CONTROLNET_MODEL", str(cn))
    dec = get_decoder("auto", steps=2)
    assert isinstance(dec, DiffusionDecoder) and dec.reason.startswith("auto: diffusion")
    r = dec.decode(layers())
    assert r.image.size == (64, 64) and r.metadata["decoder_reason"] == dec.reason
    assert r.metadata["models"] == [str(sd), str(cn)] and r.metadata["device"] == "cpu"


def test_sdxl_family_through_the_same_pipeline():
    """Two text encoders and size conditioning (SDXL) go through the same loop."""
    xl = MapGuidedControlNetPipeline(**tiny_xl_components(seed=0))
    assert xl.is_xl
    embeds = xl.encode_prompts(["", "a house"])
    assert embeds.hidden.shape == (2, 77, 64) and embeds.pooled.shape == (2, 32)
    r = decoder(xl, mode="regional").decode(layers())
    assert r.image.size == (64, 64) and r.metadata["mode"] == "regional"
    a = decoder(xl).decode(layers(seed=1)).image
    assert np.array_equal(np.asarray(a), np.asarray(decoder(xl).decode(layers(seed=1)).image))
