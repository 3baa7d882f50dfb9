"""CLIP embeddings for CLIP-I (image–image), CLIP-T (text–image) and FD-CLIP.

Loaded the normal open_clip way, ``create_model_and_transforms(name, pretrained=tag)``,
so a user with the hub (or a local checkpoint path as ``pretrained``) gets the real
model; here, without weights, loading fails and the metrics report unavailable. Tests
pass a tiny randomly initialised model to the constructor to prove the plumbing only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image


def resolve_clip_weights(model_name: str, pretrained: str) -> str:
    """Local path of the CLIP weights, downloading them the open_clip way if needed.

    Checked before building the model, because building ViT-B first (seconds to minutes
    on a loaded CPU) only to learn that the weights are missing makes availability slow.
    Raises with the reason when the weights cannot be had.
    """
    import os

    import open_clip
    from open_clip.pretrained import download_pretrained

    if model_name.startswith(("hf-hub:", "local-dir:")) or os.path.isfile(pretrained):
        return pretrained
    if model_name not in open_clip.list_models():
        raise ValueError(f"unknown open_clip model {model_name!r}")
    cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not cfg:
        raise ValueError(
            f"open_clip has no pretrained tag {pretrained!r} for {model_name} and it is not a file"
        )
    path = download_pretrained(cfg)
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f"weights for {model_name}/{pretrained} could not be found or downloaded")
    return path


class ClipScorer:
    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        *,
        label: str,
        device: str = "cpu",
    ):
        self.model = model.eval().to(device)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.label = label
        self.device = device

    @classmethod
    def from_pretrained(cls, model_name: str, pretrained: str, device: str = "cpu") -> ClipScorer:
        import open_clip

        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device=device
        )
        tokenizer = open_clip.get_tokenizer(model_name)
        return cls(
            model,
            preprocess,
            tokenizer,
            label=f"open_clip {model_name} pretrained={pretrained}",
            device=device,
        )

    @torch.no_grad()
    def image_features(self, images: Sequence[np.ndarray], *, normalize: bool) -> np.ndarray:
        batch = torch.stack([self.preprocess(Image.fromarray(a)) for a in images]).to(self.device)
        feats = self.model.encode_image(batch).float()
        if normalize:
            feats = torch.nn.functional.normalize(feats, dim=-1)
        return feats.cpu().numpy().astype(np.float64)

    def image_embeddings(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-norm image embeddings (N x D)."""
        return self.image_features(images, normalize=True)

    @torch.no_grad()
    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm text embeddings (N x D); texts longer than the context are truncated."""
        tokens = self.tokenizer(list(texts)).to(self.device)
        feats = torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)
        return feats.cpu().numpy().astype(np.float64)
