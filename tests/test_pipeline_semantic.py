"""The whole encoder with its semantic layers: a VLM behind a real HTTP endpoint on
loopback, CLIP Surgery maps from a tiny random CLIP, the text coder, rate control that
pays for text and maps first. The tiny CLIP is untrained: its maps prove the plumbing,
not where things are."""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch
from codec_helpers import kodak
from test_describe_openai import ChatServer, Reply

from codec import bitstream as bs
from codec.describe import get_describer
from codec.errors import BitstreamError
from codec.maps import ClipSurgery
from codec.pipeline import budget_bytes, encode, info, read_layers
from codec.records import Description, Item

CAPTION = {
    "items": [
        {"name": "red barn", "detail": "weathered wooden walls, white trim"},
        {"name": "green meadow", "detail": "tall grass with yellow flowers"},
        {"name": "blue sky", "detail": "a few thin white clouds"},
    ],
    "overall": "A red barn stands in a green meadow under a blue sky with a few clouds; "
    "the meadow slopes gently toward the barn and a fence runs along its edge.",
}


@pytest.fixture(scope="module")
def tiny_clip():
    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=64, layers=3, width=64, patch_size=16, head_width=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
    ).eval()
    return ClipSurgery(model, open_clip.get_tokenizer("ViT-B-16"), name="tiny-random (untrained)", device="cpu")


@pytest.fixture(scope="module")
def photo():
    return kodak(22).crop((0, 0, 384, 256))


def test_full_encode_with_loopback_vlm_and_tiny_clip(photo, tiny_clip, capsys):
    with ChatServer([Reply(content=json.dumps(CAPTION))]) as server:
        describer = get_describer("openai", base_url=server.url, api_key="k", model="test-vlm")
        res = encode(photo, 0.05, describer=describer, clip=tiny_clip, decoder_hint="bicubic")
        assert len(server.requests) == 1
    assert res.nbytes <= budget_bytes(384, 256, 0.05)
    layers = read_layers(res.data)
    assert [i.name for i in layers.description.items] == [i["name"] for i in CAPTION["items"]]
    assert layers.description.overall == CAPTION["overall"]
    assert len(layers.maps) == 3 and all(m.shape == (8, 8) and m.dtype == bool for m in layers.maps)
    assert all(np.array_equal(a, b) for a, b in zip(layers.maps, res.maps, strict=True))
    out = info(res.data)
    assert set(out["sections"]) == {"pixel_av1", "text", "maps"}
    assert out["header_bytes"] + out["checksum_bytes"] + sum(s["bytes"] for s in out["sections"].values()) == res.nbytes
    assert "text/misc-text-en-1" in out["models"]
    chars = len(CAPTION["overall"]) + sum(len(i["name"]) + len(i["detail"]) for i in CAPTION["items"])
    with capsys.disabled():
        print("\nfile size per layer (bytes):", {k: v["bytes"] for k, v in out["sections"].items()},
              "header", out["header_bytes"], "checksum", out["checksum_bytes"], "total", res.nbytes,
              f"| text: {8 * out['sections']['text']['payload_bytes'] / chars:.2f} bits/char over {chars} chars")


def test_semantic_layers_are_paid_first(photo):
    desc = Description.from_dict(CAPTION)
    grids = [np.eye(8, dtype=bool), np.ones((8, 8), bool), np.zeros((8, 8), bool)]
    bare = encode(photo, 0.05, decoder_hint="bicubic")
    rich = encode(photo, 0.05, description=desc, maps=grids, decoder_hint="bicubic")
    # same ceiling, so the pixel layer gets less when text and maps come along
    assert rich.pixel.nbytes < bare.pixel.nbytes
    assert abs(rich.nbytes - bare.nbytes) < 0.1 * bare.nbytes


def test_layers_are_dropped_in_order_when_the_target_is_tiny(photo):
    desc = Description([Item("x" * 20, "y " * 30)] * 3, "z " * 200)
    grids = [np.ones((8, 8), bool)] * 3
    res = encode(photo, 0.004, description=desc, maps=grids, decoder_hint="bicubic")
    assert res.maps is None
    assert any("maps dropped" in n for n in res.notes)
    assert res.nbytes <= budget_bytes(384, 256, 0.004)


def test_a_file_coded_with_another_text_model_is_refused(photo):
    res = encode(photo, 0.05, description=Description.from_dict(CAPTION), decoder_hint="bicubic")
    f = bs.unpack(res.data)
    f.models = ["text/some-other-model-9" if m.startswith("text/") else m for m in f.models]
    with pytest.raises(BitstreamError, match="text was coded with model text/some-other-model-9"):
        read_layers(bs.pack(f))


def test_maps_need_one_per_item(photo):
    from codec.errors import CodecError

    with pytest.raises(CodecError, match="one map per"):
        encode(photo, 0.05, description=Description.from_dict(CAPTION), maps=[np.ones((8, 8), bool)])
