"""Random-weight models with the real architectures, saved where the real ones would be.

The full profile (codec/profile.py) loads four hub repositories by their ids. No hub is
reachable on the project's machines, so the end-to-end test and ``bench.gpu_check``
build models of the same classes with random weights and put them

* in a local directory (``save_pretrained`` layout), or
* in a Hugging Face cache UNDER THE DEFAULT HUB IDS, laid out as ``huggingface_hub``
  lays it out (``models--org--name/blobs/<sha256>``, ``snapshots/<rev>/<path>`` links to
  the blobs, ``refs/main`` naming the revision), so that with ``HF_HOME`` pointing at it
  and ``HF_HUB_OFFLINE=1`` the product's own loaders find them as if downloaded.

Every repository written here carries a ``RANDOM_WEIGHTS.md`` file; ``codec.hub``
reports it, and the app labels such models "random weights" wherever their output
shows. A random model proves the plumbing, never the quality.

    tiny_qwen25_vl(dir, answer=...)   Qwen2.5-VL, 1 text layer, 16-wide vision tower
    random_vit_b16(dir)               open_clip ViT-B-16, FULL size (its name fixes it), fp16
    tiny_sd15(dir) / tiny_controlnet(dir)   diffusers layout, fp16 variant files
    fill_full_profile_cache(hf_home)  all four under the full profile's default ids
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

import torch

from codec.hub import RANDOM_MARKER

MARKER_TEXT = (
    "# Random weights\n\nThis repository was written by bench/random_models.py: the real "
    "architecture's classes with RANDOMLY INITIALISED weights, for tests of the loading and "
    "decoding code. Its outputs mean nothing.\n"
)

# ------------------------------------------------------------------------- the HF cache


def repo_folder(cache_dir: str | Path, repo_id: str) -> Path:
    """``<cache>/models--org--name``, as huggingface_hub names it."""
    return Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))


def write_hub_repo(
    cache_dir: str | Path, repo_id: str, source: str | Path, revision: str | None = None
) -> Path:
    """Copy the tree ``source`` into the hub cache as ``repo_id`` at ``revision``; returns the snapshot.

    Files become blobs named by their SHA-256 (as the hub names LFS blobs), the snapshot
    holds relative symlinks to them, and ``refs/main`` names the revision: what
    ``hf_hub_download`` finds offline. A ``RANDOM_WEIGHTS.md`` marker is added.
    """
    source = Path(source)
    folder = repo_folder(cache_dir, repo_id)
    revision = revision or hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = folder / "snapshots" / revision
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    (source / RANDOM_MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source)
        digest = _sha256(path)
        blob = folder / "blobs" / digest
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------- the VLM

QWEN_SPECIALS = [
    "<unk>",
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen_char_tokenizer(answer: str | None = None) -> Any:
    """A character-level fast tokenizer with Qwen's special tokens (any ASCII round-trips).

    ``answer``: one more (non-special) token spelling that whole string, so a model can
    be made to write it in one step (see ``plant_answer``).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*QWEN_SPECIALS, *string.printable])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIALS[2:],
    )
    if answer is not None:
        from tokenizers import AddedToken

        tokenizer.add_tokens([AddedToken(answer, special=False, normalized=False)])
    return tokenizer


def qwen25_vl_processor(tokenizer: Any, side: int = 56) -> Any:
    """Qwen2.5-VL's real processor; images resized to ``side``² (side/28 squared image tokens)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            min_pixels=side * side, max_pixels=side * side, patch_size=14, merge_size=2, temporal_patch_size=2
        ),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN_TEMPLATE,
    )


def _qwen_token_ids(tokenizer: Any) -> dict[str, int]:
    ids = tokenizer.convert_tokens_to_ids
    return dict(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def tiny_qwen25_vl_config(tokenizer: Any) -> Any:
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
            bos_token_id=1,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=1,
        ),
        vision_config=dict(
            depth=1,
            hidden_size=16,
            intermediate_size=32,
            num_heads=2,
            out_hidden_size=32,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[0],
        ),
        **_qwen_token_ids(tokenizer),
    )


def qwen25_vl_3b_config(tokenizer: Any) -> Any:
    """Qwen2.5-VL-3B-Instruct's architecture (transcribed from its published config.json),
    with the special-token ids of ``tokenizer`` (the real vocabulary is not at hand)."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=151936,
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            max_position_embeddings=128000,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
            bos_token_id=1,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=1,
        ),
        vision_config=dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=2048,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
            tokens_per_second=2,
        ),
        tie_word_embeddings=True,
        **_qwen_token_ids(tokenizer),
    )


@torch.no_grad()
def plant_answer(model: Any, tokenizer: Any, answer: str, strength: float = 60.0) -> None:
    """Make greedy decoding write ``answer`` (one token) after the prompt, then stop.

    The weights stay random; only the embeddings of the prompt's last token ("\\n") and
    of the answer token are made large and orthogonal, and the output rows of the answer
    and end-of-turn tokens are pointed at them. So after "...assistant\\n" the answer
    token wins, and after it the end token. The image still goes through the (random)
    vision tower and the (random) decoder layer: this is plumbing, not description.
    """
    lm = model.get_output_embeddings().weight
    emb = model.get_input_embeddings().weight
    newline, ans, eos = tokenizer.convert_tokens_to_ids(["\n", answer, tokenizer.eos_token])
    d = emb.shape[1]
    a = torch.zeros(d)
    a[: d // 2] = 1.0
    b = torch.zeros(d)
    b[d // 2 :] = 1.0
    scale = 50.0
    emb[newline] = a * scale
    emb[ans] = b * scale
    lm[ans] = a / a.norm() * strength
    lm[eos] = b / b.norm() * strength


def tiny_qwen25_vl(path: str | Path, answer: str | None = None, seed: int = 0) -> Path:
    """A tiny random Qwen2.5-VL with its real processor, saved with save_pretrained.

    ``answer``: plant it (see ``plant_answer``) so the describer gets items to map.
    """
    from transformers import Qwen2_5_VLForConditionalGeneration

    path = Path(path)
    tokenizer = qwen_char_tokenizer(answer)
    processor = qwen25_vl_processor(tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_qwen25_vl_config(tokenizer)).eval()
    if answer is not None:
        model.config.tie_word_embeddings = False
        model.config.text_config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
        plant_answer(model, tokenizer, answer)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# ------------------------------------------------------------------------- CLIP


def random_vit_b16(path: str | Path, seed: int = 0) -> Path:
    """open_clip's ViT-B-16 (149.6 M parameters) with random weights, as
    ``open_clip_model.safetensors`` in fp16 (what open_clip reads from the hub for
    ViT-B-16/openai). The name fixes the architecture, so it cannot be made tiny."""
    import open_clip
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / "open_clip_model.safetensors"))
    cfg = {"model_cfg": open_clip.get_model_config("ViT-B-16"), "random_weights": True}
    (path / "open_clip_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return path


# ------------------------------------------------------------------------- SD 1.5 + ControlNet


def tiny_sd15(path: str | Path, seed: int = 0, variant: str | None = "fp16") -> Path:
    """Tiny random SD-like UNet/VAE/text encoder (codec.decode.tiny) in diffusers' repo layout."""
    from codec.decode.tiny import tiny_components

    path = Path(path)
    parts = tiny_components(seed)
    for name in ("unet", "vae", "text_encoder"):
        parts[name].to(torch.float16 if variant == "fp16" else torch.float32).save_pretrained(
            path / name, variant=variant
        )
    for name in ("tokenizer", "scheduler"):
        parts[name].save_pretrained(path / name)
    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (path / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    return path


def tiny_controlnet(path: str | Path, seed: int = 0) -> Path:
    from codec.decode.tiny import tiny_components

    path = Path(path)
    tiny_components(seed)["controlnet"].save_pretrained(path)
    return path


# ------------------------------------------------------------------------- all four

PLANTED_ANSWER = json.dumps(
    {
        "items": [
            {"name": "red square", "detail": "flat bright colour, left side"},
            {"name": "blue sky", "detail": "clear, upper half"},
        ],
        "overall": "A red square on the left under a clear blue sky. Random weights: a planted answer.",
    }
)


def fill_full_profile_cache(hf_home: str | Path, answer: str = PLANTED_ANSWER) -> dict[str, str]:
    """Write random-weight models under the full profile's default hub ids into
    ``<hf_home>/hub``; returns {profile key: repo id}."""
    from codec.profile import FULL_MODELS

    hub = Path(hf_home) / "hub"
    hub.mkdir(parents=True, exist_ok=True)
    builders = {
        "vlm": lambda d: tiny_qwen25_vl(d, answer=answer),
        "clip": random_vit_b16,
        "sd": tiny_sd15,
        "controlnet": tiny_controlnet,
    }
    written: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="misc-random-models-") as tmp:
        for key, build in builders.items():
            repo = FULL_MODELS[key].repo_id
            build(Path(tmp) / key)
            write_hub_repo(hub, repo, Path(tmp) / key)
            written[key] = repo
    return written
