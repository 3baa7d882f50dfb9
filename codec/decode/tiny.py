"""Randomly initialised diffusion components, for tests, benchmarks of the plumbing, and demos.

No Stable Diffusion weights can be fetched on the project's offline machines, so these
prove that the decoding code runs, end to end, through the same path real weights take.
A random model's output is noise-like: it shows the plumbing, never the quality, and
everything built here is labelled ``random-weights``.

* :func:`offline_clip_tokenizer` - the real CLIP BPE tokenizer (same ids as SD's), built
  from the vocabulary file that ships inside ``open_clip_torch``.
* :func:`tiny_components` - a few-MB UNet/ControlNet/VAE/CLIP text encoder.
* :func:`sd15_components` - SD 1.5's real architectures at full size (~1.4 G parameters
  with the ControlNet; fp32 ≈ 5.5 GB), configs written out here because they cannot be
  downloaded.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

RANDOM_LABEL = "random-weights"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable-character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def write_clip_vocab(directory: str | Path) -> Path:
    """Write vocab.json + merges.txt for CLIPTokenizer from open_clip's BPE file; returns the dir."""
    import open_clip

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    merge_pairs = [tuple(m.split()) for m in merges]
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merge_pairs]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(
        json.dumps({tok: i for i, tok in enumerate(vocab)}), encoding="utf-8"
    )
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return directory


@lru_cache(maxsize=1)
def offline_clip_tokenizer() -> Any:
    """The CLIP tokenizer (49,408 tokens, max length 77) without the hub."""
    from transformers import CLIPTokenizer

    directory = write_clip_vocab(Path(tempfile.mkdtemp(prefix="misc-clip-tok-")))
    return CLIPTokenizer(
        str(directory / "vocab.json"),
        str(directory / "merges.txt"),
        pad_token="<|endoftext|>",
        model_max_length=77,
    )


def _text_encoder(hidden: int, layers: int, heads: int, ffn: int, projection: int) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        projection_dim=projection,
        hidden_act="quick_gelu",
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    return CLIPTextModel(cfg)


def _scheduler() -> Any:
    from diffusers import UniPCMultistepScheduler

    # SD 1.5's scheduler config (scaled-linear betas, ε-prediction).
    return UniPCMultistepScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        steps_offset=1,
        timestep_spacing="leading",
    )


def _tiny_vae(block_out_channels: tuple[int, ...], **config: Any) -> Any:
    """A tiny AutoencoderKL; it scales by 2 ** (len(block_out_channels) - 1)."""
    from diffusers import AutoencoderKL

    levels = len(block_out_channels)
    return AutoencoderKL(
        block_out_channels=block_out_channels,
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        norm_num_groups=8,
        **config,
    )


def tiny_components(seed: int = 0) -> dict[str, Any]:
    """Tiny random SD-like components: latent ÷8 as in SD, pixel sides multiples of 16."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet_kw = dict(
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        norm_num_groups=8,
    )
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        **unet_kw,
    )
    controlnet = ControlNetModel(
        in_channels=4, conditioning_embedding_out_channels=(8, 16, 16, 16), **unet_kw
    )
    return dict(
        vae=_tiny_vae((8, 16, 16, 16)),
        text_encoder=_text_encoder(32, 2, 4, 37, 32),
        tokenizer=offline_clip_tokenizer(),
        unet=unet,
        controlnet=controlnet,
        scheduler=_scheduler(),
    )


def tiny_xl_components(seed: int = 0) -> dict[str, Any]:
    """Tiny random SDXL-like components: two text encoders, size-conditioned UNet/ControlNet."""
    from diffusers import ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    parts = tiny_components(seed)
    torch.manual_seed(seed + 1)
    xl_kw = dict(
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=64,  # two 32-wide encoders side by side
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=32 + 6 * 8,  # pooled text + six size numbers
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        norm_num_groups=8,
    )
    parts["unet"] = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        **xl_kw,
    )
    parts["controlnet"] = ControlNetModel(
        in_channels=4, conditioning_embedding_out_channels=(8, 16, 16, 16), **xl_kw
    )
    cfg = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        hidden_act="gelu",
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    parts["text_encoder_2"] = CLIPTextModelWithProjection(cfg)
    parts["tokenizer_2"] = offline_clip_tokenizer()
    return parts


def sd15_components(seed: int = 0) -> dict[str, Any]:
    """SD 1.5 UNet/VAE/CLIP ViT-L text encoder and a ControlNet v1.1, full size, random weights.

    Configs transcribed from stable-diffusion-v1-5 and control_v11f1e_sd15_tile (diffusers
    defaults are SD 1.x's for most fields; the ones that matter are spelled out).
    """
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet_kw = dict(
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
        norm_num_groups=32,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    )
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        **unet_kw,
    )
    controlnet = ControlNetModel(
        in_channels=4, conditioning_embedding_out_channels=(16, 32, 96, 256), **unet_kw
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
        scaling_factor=0.18215,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    return dict(
        vae=vae,
        text_encoder=_text_encoder(768, 12, 12, 3072, 768),
        tokenizer=offline_clip_tokenizer(),
        unet=unet,
        controlnet=controlnet,
        scheduler=_scheduler(),
    )


def tiny_upscaler_components(seed: int = 0) -> dict[str, Any]:
    """Tiny random components shaped like stabilityai/stable-diffusion-x4-upscaler: the UNet
    takes 4 latent + 3 low-res image channels and the noise level as a class label, the VAE
    scales by 4 (not 8), v-prediction. Low-res sides must be multiples of 2 here (8 for the
    real model's three down-samplings)."""
    from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=7,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=4,
        num_class_embeds=1000,  # the noise level added to the low-res image
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        norm_num_groups=8,
    )
    return dict(
        vae=_tiny_vae((8, 16, 16), scaling_factor=0.08333),
        text_encoder=_text_encoder(32, 2, 4, 37, 32),
        tokenizer=offline_clip_tokenizer(),
        unet=unet,
        low_res_scheduler=DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.0001, beta_end=0.02),
        scheduler=DDIMScheduler(
            beta_schedule="scaled_linear",
            beta_start=0.0001,
            beta_end=0.02,
            prediction_type="v_prediction",
            clip_sample=False,
            set_alpha_to_one=False,
        ),
    )
