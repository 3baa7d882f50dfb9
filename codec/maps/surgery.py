"""CLIP Surgery (Li et al. 2023) on an open_clip ViT: one similarity map per item name.

MISC (arXiv 2402.16749) locates each item the VLM named with CLIP Surgery on OpenAI's
CLIP ViT-B/16, then keeps an 8×8 thresholded grid of the map. Plain CLIP's patch tokens
give noisy, often inverted maps; the two "surgeries" fix that without any training:

    image ─resize to S×S (no crop)─▶ patches ─ViT blocks 1..n-k──────────┐
        original path:  x ─▶ block(x) ─▶ ... (unchanged CLIP)            │  (k = 6 last blocks)
        new path:       x_new = x + Σ ls₁(vv-attention(ln₁(x_block_input)))  (no FFN)
        tokens = [cls from original path, patches from new path] ─ln_post─▶ @proj
    names ─85 prompt templates─▶ text encoder ─▶ mean of unit vectors = t_i ;  "" ─▶ r
    feature surgery: s = tokens · (t_i − r)   (the empty text's response is redundancy)
    per map: min-max over patches ─▶ bilinear to the image size ─▶ [0, 1]

Architecture surgery is a second forward over the open_clip VisionTransformer's own
modules: the original path is each block's own ``forward``; the v-v path reuses the
block's attention weights (value projection as query, key and value) and its output
projection. The model is never modified, so the same object still works as CLIP.

Two details follow the reference code (and thus MISC) rather than the paper's prose:
``token_norm="reference"`` divides the [B, tokens, dim] features by their norm over the
token axis (the reference's ``norm(dim=1)``, written for pooled [B, dim] features);
"cosine" gives the per-token normalisation the paper describes. And a map whose patches
all score the same comes out all zeros instead of NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..errors import ImageInputError, ModelUnavailableError
from .grids import DEFAULT_SIZE, DEFAULT_THRESHOLD, to_grid

DEFAULT_SURGERY_BLOCKS = 6
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

# CLIP Surgery's prompt ensemble: OpenAI's 80 ImageNet templates plus five scene ones.
SCENE_TEMPLATES = (
    "there is a {} in the scene.",
    "there is the {} in the scene.",
    "this is a {} in the scene.",
    "this is the {} in the scene.",
    "this is one {} in the scene.",
)


def default_templates() -> tuple[str, ...]:
    """The 85 templates, each with one ``{}`` where the item name goes."""
    from open_clip import OPENAI_IMAGENET_TEMPLATES

    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES) + SCENE_TEMPLATES


def _check_visual(visual: nn.Module) -> None:
    """Refuse, with a reason, vision towers the surgery does not know how to open."""
    needed = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer", "ln_post", "proj")
    missing = [a for a in needed if getattr(visual, a, None) is None]
    if missing:
        raise ValueError(
            f"CLIP Surgery needs an open_clip VisionTransformer; {type(visual).__name__} lacks {missing} "
            "(ResNet, timm and attention-pooled towers are not supported)"
        )
    if getattr(visual, "attn_pool", None) is not None:
        raise ValueError("CLIP Surgery does not support attention-pooled vision towers (CoCa, SigLIP-style)")
    for i, blk in enumerate(visual.transformer.resblocks):
        if not isinstance(getattr(blk, "attn", None), nn.MultiheadAttention):
            raise ValueError(
                f"vision block {i} has no nn.MultiheadAttention (custom attention is not supported)"
            )


def _positional_embedding(visual: nn.Module, gh: int, gw: int) -> torch.Tensor:
    """The class + patch position embeddings for a gh×gw patch grid (bilinear if resized)."""
    pos = visual.positional_embedding
    g0h, g0w = visual.grid_size
    if (gh, gw) == (g0h, g0w):
        return pos
    patch = pos[1:].reshape(1, g0h, g0w, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, size=(gh, gw), mode="bilinear", align_corners=False)
    return torch.cat([pos[:1], patch.permute(0, 2, 3, 1).reshape(gh * gw, -1)], dim=0)


def _vv_attention(attn: nn.MultiheadAttention, h: torch.Tensor) -> torch.Tensor:
    """Self-attention with the value projection as query, key and value (batch-first)."""
    d, heads = attn.embed_dim, attn.num_heads
    if attn._qkv_same_embed_dim:
        w_v = attn.in_proj_weight[2 * d :]
    else:
        w_v = attn.v_proj_weight
    b_v = attn.in_proj_bias[2 * d :] if attn.in_proj_bias is not None else None
    b, n, _ = h.shape
    v = F.linear(h, w_v, b_v).reshape(b, n, heads, d // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(v, v, v)  # softmax(v vᵀ / √d_head) v
    return attn.out_proj(out.transpose(1, 2).reshape(b, n, d))


def surgery_image_tokens(visual: nn.Module, pixels: torch.Tensor, surgery_blocks: int = 6) -> torch.Tensor:
    """Architecture surgery: [B, 3, H, W] → projected tokens [B, 1 + patches, embed_dim].

    The class token comes from the untouched original path, the patch tokens from the v-v
    path added over the last ``surgery_blocks`` blocks.
    """
    _check_visual(visual)
    blocks = visual.transformer.resblocks
    if not 1 <= surgery_blocks <= len(blocks):
        raise ValueError(f"surgery_blocks must be in 1..{len(blocks)}, got {surgery_blocks}")
    x = visual.conv1(pixels.to(visual.conv1.weight.dtype))
    b, _, gh, gw = x.shape
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).reshape(1, 1, -1).expand(b, 1, -1)
    x = torch.cat([cls, x], dim=1) + _positional_embedding(visual, gh, gw).to(x.dtype)
    x = visual.ln_pre(x)
    batch_first = getattr(visual.transformer, "batch_first", True)
    if not batch_first:
        x = x.transpose(0, 1)
    start = len(blocks) - surgery_blocks
    for blk in blocks[:start]:
        x = blk(x)
    x_new = x
    for blk in blocks[start:]:
        h = blk.ln_1(x)
        h = h if batch_first else h.transpose(0, 1)
        vv = _vv_attention(blk.attn, h)
        x_new = x_new + blk.ls_1(vv if batch_first else vv.transpose(0, 1))
        x = blk(x)  # the original path, exactly as CLIP computes it
    if not batch_first:
        x, x_new = x.transpose(0, 1), x_new.transpose(0, 1)
    tokens = torch.cat([x[:, :1], x_new[:, 1:]], dim=1)
    return visual.ln_post(tokens) @ visual.proj


def feature_surgery(
    image_tokens: torch.Tensor,
    text: torch.Tensor,
    redundant: torch.Tensor | None = None,
) -> torch.Tensor:
    """Similarity [B, tokens, N] with the features every text shares removed.

    With ``redundant`` (the empty text's embedding, MISC's choice) it is subtracted from
    each text embedding. Without it, the redundancy is estimated from the N texts
    themselves (the reference's class-set mode): per token, the element-wise products
    with each text, weighted by a softmax over texts, minus their mean over texts.
    """
    if redundant is not None:
        return image_tokens @ (text - redundant.reshape(1, -1)).T
    if text.shape[0] < 2:
        raise ValueError("class-set feature surgery needs at least two texts; pass the empty-text redundancy")
    prob = (2 * image_tokens @ text.T).softmax(dim=-1)  # [B, L, N]
    w = prob / prob.mean(dim=-1, keepdim=True)
    feats = image_tokens.unsqueeze(2) * text.reshape(1, 1, *text.shape) * w.unsqueeze(-1)  # [B, L, N, D]
    feats = feats - feats.mean(dim=2, keepdim=True)
    return feats.sum(dim=-1)


def _minmax(sim: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map over its last dimension; a flat map becomes zeros."""
    lo = sim.min(dim=-1, keepdim=True).values
    span = sim.max(dim=-1, keepdim=True).values - lo
    return torch.where(
        span > 0, (sim - lo) / span.clamp_min(torch.finfo(sim.dtype).tiny), torch.zeros_like(sim)
    )


class ClipSurgery:
    """CLIP Surgery similarity maps and MISC grids from an open_clip model.

    ``from_pretrained`` loads weights the normal open_clip way; the constructor takes an
    already built model and tokenizer (tests pass small random ones, which prove the
    plumbing and nothing about map quality).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Callable[[list[str]], torch.Tensor],
        *,
        name: str = "custom",
        device: str | torch.device | None = None,
        surgery_blocks: int | None = None,
        templates: Sequence[str] | None = None,
        redundancy: Literal["empty", "classes"] = "empty",
        token_norm: Literal["reference", "cosine"] = "reference",
        input_size: int | None = None,
        text_batch: int = 256,
    ):
        visual = getattr(model, "visual", None)
        if visual is None:
            raise ValueError(f"{type(model).__name__} has no vision tower (.visual)")
        _check_visual(visual)
        if redundancy not in ("empty", "classes"):
            raise ValueError(f"redundancy must be 'empty' or 'classes', got {redundancy!r}")
        if token_norm not in ("reference", "cosine"):
            raise ValueError(f"token_norm must be 'reference' or 'cosine', got {token_norm!r}")
        self.templates = tuple(templates) if templates is not None else default_templates()
        if not self.templates or any("{}" not in t for t in self.templates):
            raise ValueError("every prompt template needs one '{}' for the item name")
        n_blocks = len(visual.transformer.resblocks)
        if surgery_blocks is None:  # the reference's choice for 12-block ViTs: the last 6
            surgery_blocks = min(DEFAULT_SURGERY_BLOCKS, n_blocks)
        if not 1 <= surgery_blocks <= n_blocks:
            raise ValueError(f"surgery_blocks must be in 1..{n_blocks}, got {surgery_blocks}")
        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.surgery_blocks = surgery_blocks
        self.redundancy = redundancy
        self.token_norm = token_norm
        native = (
            visual.image_size if isinstance(visual.image_size, (tuple, list)) else (visual.image_size,) * 2
        )
        self.input_size: tuple[int, int] = (input_size, input_size) if input_size else tuple(native)
        patch = (
            visual.patch_size if isinstance(visual.patch_size, (tuple, list)) else (visual.patch_size,) * 2
        )
        if self.input_size[0] % patch[0] or self.input_size[1] % patch[1]:
            raise ValueError(
                f"input size {self.input_size} is not a multiple of the patch size {tuple(patch)}"
            )
        self.mean = tuple(getattr(visual, "image_mean", None) or OPENAI_MEAN)
        self.std = tuple(getattr(visual, "image_std", None) or OPENAI_STD)
        self.text_batch = text_batch
        self._text_cache: dict[str, torch.Tensor] = {}
        self.random_weights = False  # set by load_clip_surgery for a test's random model

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        model_name: str = "ViT-B-16",
        pretrained: str = "openai",
        device: str | torch.device | None = None,
        cache_dir: str | None = None,
        **kwargs,
    ) -> ClipSurgery:
        """Load ``model_name`` with ``pretrained`` weights through open_clip.

        ``pretrained`` is an open_clip tag (MISC: "ViT-B-16" with "openai") or the path
        of a local checkpoint file. Raises ModelUnavailableError, saying how to provide
        the weights, when they cannot be had (e.g. offline with an empty cache).
        """
        if not pretrained:
            raise ValueError(
                "from_pretrained needs weights; build a random model yourself and pass it to ClipSurgery()"
            )
        try:
            import open_clip

            # OpenAI's weights were trained with QuickGELU; open_clip's plain "ViT-B-16" config
            # uses GELU, so follow what the tag itself records (as "ViT-B-16-quickgelu" does).
            quick_gelu = bool((open_clip.get_pretrained_cfg(model_name, pretrained) or {}).get("quick_gelu"))
            model = open_clip.create_model(
                model_name,
                pretrained=pretrained,
                device=device,
                cache_dir=cache_dir,
                force_quick_gelu=quick_gelu,
            )
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as e:  # open_clip raises RuntimeError/ValueError/OSError for missing weights
            raise ModelUnavailableError(
                f"CLIP model {model_name!r} with weights {pretrained!r} could not be loaded for CLIP Surgery: {e}\n"
                "To provide it: allow access to the Hugging Face hub once (open_clip caches the weights, "
                "then HF_HUB_OFFLINE=1 works), or copy a cache that has them and pass cache_dir=..., "
                "or pass pretrained='/path/to/open_clip_pytorch_model.bin' (a local checkpoint file). "
                "Without CLIP weights the file simply gets no map layer."
            ) from e
        return cls(model, tokenizer, name=f"{model_name}/{pretrained}", device=device, **kwargs)

    @property
    def model_id(self) -> str:
        """What produced the maps, for logs and file headers (the decoder does not need it)."""
        return f"clip-surgery/{self.name}"

    @property
    def header_name(self) -> str:
        """The name the file's header gives the maps' maker (ViT-B-16/openai has a compact id)."""
        return f"maps/clip-surgery:{self.name}"[:64]

    # ------------------------------------------------------------------ encoders
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """PIL image → [1, 3, S, S]: squashed to the input size with bicubic resampling,
        no centre crop (the map must cover the whole picture), CLIP mean/std."""
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL image, got {type(image).__name__}")
        if image.width < 1 or image.height < 1:
            raise ImageInputError(f"image is empty ({image.width}x{image.height})")
        h, w = self.input_size
        rgb = image.convert("RGB").resize((w, h), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
        x = (x - torch.tensor(self.mean).reshape(3, 1, 1)) / torch.tensor(self.std).reshape(3, 1, 1)
        return x.unsqueeze(0).to(self.device)

    @torch.inference_mode()
    def image_tokens(self, image: Image.Image) -> torch.Tensor:
        """Surgery tokens [1, 1 + patches, D], normalised as ``token_norm`` says."""
        tokens = surgery_image_tokens(self.model.visual, self.preprocess(image), self.surgery_blocks).float()
        dim = 1 if self.token_norm == "reference" else -1
        return tokens / tokens.norm(dim=dim, keepdim=True)

    def _encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Unit text embeddings [P, D], in batches."""
        out = []
        for i in range(0, len(prompts), self.text_batch):
            tok = self.tokenizer(prompts[i : i + self.text_batch]).to(self.device)
            out.append(_encode_text(self.model, tok).float())
        e = torch.cat(out)
        return e / e.norm(dim=-1, keepdim=True)

    @torch.inference_mode()
    def text_embeddings(self, names: Sequence[str]) -> torch.Tensor:
        """Prompt-ensemble embedding per name [N, D]: the mean of the unit embeddings of
        every template, renormalised. Cached per name (the empty name is the redundancy)."""
        todo = [n for n in dict.fromkeys(names) if n not in self._text_cache]
        if todo:
            k = len(self.templates)
            prompts = [t.replace("{}", n) for n in todo for t in self.templates]
            e = self._encode_prompts(prompts).reshape(len(todo), k, -1).mean(dim=1)
            for n, v in zip(todo, e / e.norm(dim=-1, keepdim=True), strict=True):
                self._text_cache[n] = v
        return torch.stack([self._text_cache[n] for n in names])

    # ------------------------------------------------------------------ maps
    def _check_names(self, names: Sequence[str]) -> list[str]:
        if isinstance(names, str):
            raise TypeError("names must be a list of item names, not one string")
        names = [str(n).strip() for n in names]
        if any(not n for n in names):
            raise ValueError("item names must not be empty")
        return names

    @torch.inference_mode()
    def patch_similarity(self, image: Image.Image, names: Sequence[str]) -> torch.Tensor:
        """Raw feature-surgery similarity [N, grid_h, grid_w] on the patch grid."""
        names = self._check_names(names)
        tokens = self.image_tokens(image)
        text = self.text_embeddings(names)
        redundant = self.text_embeddings([""])[0] if self.redundancy == "empty" else None
        sim = feature_surgery(tokens, text, redundant)[0, 1:, :].T  # [N, patches]
        ps = self.model.visual.patch_size
        ph, pw = ps if isinstance(ps, (tuple, list)) else (ps, ps)
        return sim.reshape(len(names), self.input_size[0] // ph, self.input_size[1] // pw)

    @torch.inference_mode()
    def similarity_maps(
        self, image: Image.Image, names: Sequence[str], size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """float32 [N, H, W] in [0, 1], one map per name, at the image's resolution
        (``size`` = (H, W) overrides): min-max over the patches, then bilinear upsampling,
        as CLIP Surgery's ``get_similarity_map`` does."""
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL image, got {type(image).__name__}")
        names = self._check_names(names)
        h, w = size if size is not None else (image.height, image.width)
        if not names:
            return np.zeros((0, h, w), dtype=np.float32)
        sim = self.patch_similarity(image, names)
        n, gh, gw = sim.shape
        sim = _minmax(sim.reshape(n, gh * gw)).reshape(1, n, gh, gw)
        up = F.interpolate(sim, size=(h, w), mode="bilinear", align_corners=False)[0]
        return up.clamp_(0.0, 1.0).cpu().numpy().astype(np.float32)

    def grids(
        self,
        image: Image.Image,
        names: Sequence[str],
        size: int | tuple[int, int] = DEFAULT_SIZE,
        threshold: float = DEFAULT_THRESHOLD,
        max_side: int | None = 1024,
    ) -> list[np.ndarray]:
        """One bool grid per name, as MISC makes them (``to_grid`` on each map).

        MISC shrinks maps drawn at the image's full resolution; above ``max_side`` pixels
        the map is drawn at a proportionally smaller size first (same aspect ratio), which
        changes the 8×8 result negligibly and saves seconds and memory on large photos.
        """
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL image, got {type(image).__name__}")
        h, w = image.height, image.width
        if max_side is not None and max(h, w) > max_side:
            scale = max_side / max(h, w)
            h, w = max(1, round(h * scale)), max(1, round(w * scale))
        return [to_grid(m, size, threshold) for m in self.similarity_maps(image, names, size=(h, w))]


def load_clip_surgery(
    model_name: str = "ViT-B-16",
    pretrained: str = "openai",
    *,
    fetch: bool = False,
    progress: Callable[[float, str], None] | None = None,
    **kwargs,
) -> ClipSurgery:
    """ClipSurgery.from_pretrained, with the full profile's download first.

    ``fetch``: for the default ViT-B-16/openai, download open_clip's weight file from the
    hub when it is not cached, with progress to ``progress`` and the log (open_clip would
    otherwise fetch it silently). The result's ``random_weights`` says whether the cached
    copy is a test's random model.
    """
    from ..profile import DEFAULT_CLIP, FULL_MODELS

    files = FULL_MODELS["clip"] if (model_name, pretrained) == DEFAULT_CLIP else None
    if fetch and files is not None:
        files.fetch(None if progress is None else lambda f, m: progress(0.9 * f, m))
    if progress is not None:
        progress(0.9, f"loading CLIP {model_name}/{pretrained}")
    clip = ClipSurgery.from_pretrained(model_name, pretrained, **kwargs)
    clip.random_weights = bool(files is not None and files.random_weights())
    return clip


def _encode_text(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text``, cut to the longest prompt when that is provably the same.

    A CLIP text tower with a causal mask that pools at the end-of-text token never lets a
    position attend to later ones, so padding after the longest prompt's end-of-text token
    changes nothing: running only the first L positions is exact and, for 85 short prompts
    per name on a CPU, several times faster. Any other text tower gets ``encode_text``.
    """
    import open_clip

    exact = (
        type(model) is open_clip.CLIP
        and getattr(model, "text_pool_type", None) == "argmax"
        and getattr(model, "attn_mask", None) is not None
    )
    if not exact:
        return model.encode_text(tokens)
    length = int(tokens.argmax(dim=-1).max()) + 1
    t = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(t).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), t.argmax(dim=-1)]
    proj = model.text_projection
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj
