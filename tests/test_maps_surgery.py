"""CLIP Surgery: shapes and plumbing on tiny random open_clip models, the surgery checked
against an independent step-by-step implementation of the reference's dual-path blocks,
and one run of the full-size ViT-B/16 architecture (random weights: the numbers mean
nothing, the code path is the one real weights take)."""

from __future__ import annotations

import copy
import json

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from codec.errors import ModelUnavailableError
from codec.maps import ClipSurgery
from codec.maps.surgery import (
    _encode_text,
    _vv_attention,
    default_templates,
    feature_surgery,
    surgery_image_tokens,
)

TINY_VISION = dict(image_size=64, layers=3, width=64, patch_size=16, head_width=32)
TINY_TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These models are small; one thread avoids OpenMP spinning on a shared, busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    return open_clip.get_tokenizer("ViT-B-16")  # the real CLIP BPE ships with open_clip


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return open_clip.CLIP(embed_dim=32, vision_cfg=TINY_VISION, text_cfg=TINY_TEXT).eval()


@pytest.fixture(scope="module")
def tiny(tiny_model, tokenizer):
    return ClipSurgery(tiny_model, tokenizer, name="tiny-random (untrained)", device="cpu")


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((48, 80, 3)) * 255).astype(np.uint8))


def _reference_dual_path_tokens(visual, pixels, k):
    """The reference's dual-path blocks, written out with explicit q/k/v arithmetic."""
    x = visual.conv1(pixels).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.reshape(1, 1, -1).expand(x.shape[0], 1, -1), x], 1)
    x = visual.ln_pre(x + visual.positional_embedding)
    blocks = visual.transformer.resblocks
    x_new = None
    for i, blk in enumerate(blocks):
        if i < len(blocks) - k:
            x = blk(x)
            continue
        a = blk.attn
        d, nh = a.embed_dim, a.num_heads
        qkv = torch.nn.functional.linear(blk.ln_1(x), a.in_proj_weight, a.in_proj_bias)
        q, kk, v = (t.reshape(*t.shape[:2], nh, d // nh).transpose(1, 2) for t in qkv.split(d, dim=-1))
        scale = (d // nh) ** -0.5

        def heads_out(w, v=v, a=a, shape=x.shape):
            return a.out_proj((w @ v).transpose(1, 2).reshape(shape))

        ori = heads_out(((q @ kk.transpose(-2, -1)) * scale).softmax(-1))
        vv = heads_out(((v @ v.transpose(-2, -1)) * scale).softmax(-1))
        x_new = (x if x_new is None else x_new) + vv  # the new path skips the FFN
        x = x + ori
        x = x + blk.mlp(blk.ln_2(x))
    x_new = torch.cat([x[:, :1], x_new[:, 1:]], 1)  # class token from the original path
    return visual.ln_post(x_new) @ visual.proj


def test_default_prompt_ensemble_is_clip_surgerys_85_templates():
    t = default_templates()
    assert len(t) == 85 and all(s.count("{}") == 1 for s in t)
    assert "a bad photo of a {}." in t and "there is a {} in the scene." in t


@pytest.mark.parametrize("k", [1, 2, 3])
def test_architecture_surgery_matches_the_reference_dual_path(tiny_model, k):
    px = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = surgery_image_tokens(tiny_model.visual, px, k)
        ref = _reference_dual_path_tokens(tiny_model.visual, px, k)
    assert ours.shape == (2, 1 + 16, 32)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_original_path_is_untouched(tiny_model, tiny, photo):
    before = copy.deepcopy(tiny_model.state_dict())
    px = tiny.preprocess(photo)
    with torch.no_grad():
        pooled = tiny_model.encode_image(px)
        tokens = surgery_image_tokens(tiny_model.visual, px, 3)
        after_pooled = tiny_model.encode_image(px)
        plain = tiny_model.visual.ln_post(tiny_model.visual.transformer(tiny_model.visual._embeds(px)))
    torch.testing.assert_close(tokens[:, 0], pooled, rtol=1e-5, atol=1e-6)  # class token = CLIP's
    torch.testing.assert_close(after_pooled, pooled)
    assert not torch.allclose(tokens[:, 1:], plain[:, 1:] @ tiny_model.visual.proj, atol=1e-3)
    after = tiny_model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[n], after[n]) for n in before)


def test_vv_attention_is_attention_with_v_as_query_and_key(tiny_model):
    attn = tiny_model.visual.transformer.resblocks[-1].attn
    d = attn.embed_dim
    vv_only = copy.deepcopy(attn)
    with torch.no_grad():
        w = vv_only.in_proj_weight
        w[:d] = w[2 * d :]
        w[d : 2 * d] = w[2 * d :]
        b = vv_only.in_proj_bias
        b[:d] = b[2 * d :]
        b[d : 2 * d] = b[2 * d :]
        h = torch.randn(2, 9, d)
        torch.testing.assert_close(_vv_attention(attn, h), vv_only(h, h, h, need_weights=False)[0])


def test_feature_surgery_removes_the_redundant_text():
    img = torch.randn(1, 5, 8)
    text = torch.randn(3, 8)
    red = torch.randn(8)
    torch.testing.assert_close(feature_surgery(img, text, red), img @ (text - red).T)
    classes = feature_surgery(img, text)  # class-set mode: the per-token mean over texts is removed
    assert classes.shape == (1, 5, 3)
    torch.testing.assert_close(classes.sum(-1), torch.zeros(1, 5), atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        feature_surgery(img, text[:1])


def test_trimmed_text_encoding_equals_encode_text(tiny_model, tokenizer, monkeypatch):
    tok = tokenizer(
        ["a photo of a dog.", "", "a black and white photo of the very small red car in a video game."]
    )
    with torch.no_grad():
        full = tiny_model.encode_text(tok)
        monkeypatch.setattr(tiny_model, "encode_text", lambda *a, **k: pytest.fail("trimmed path not taken"))
        torch.testing.assert_close(_encode_text(tiny_model, tok), full, rtol=1e-5, atol=1e-6)


def test_similarity_maps_shapes_range_and_grids(tiny, photo):
    names = ["dog", "red car", "sky"]
    maps = tiny.similarity_maps(photo, names)
    assert maps.shape == (3, photo.height, photo.width) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    sim = tiny.patch_similarity(photo, names)
    assert sim.shape == (3, 4, 4)
    at_patches = tiny.similarity_maps(photo, names, size=(4, 4))  # min-max per map over patches
    np.testing.assert_allclose(at_patches.reshape(3, -1).min(1), 0.0, atol=1e-6)
    np.testing.assert_allclose(at_patches.reshape(3, -1).max(1), 1.0, atol=1e-6)
    lo, hi = sim.reshape(3, -1).min(1, keepdim=True).values, sim.reshape(3, -1).max(1, keepdim=True).values
    np.testing.assert_allclose(
        at_patches.reshape(3, -1), ((sim.reshape(3, -1) - lo) / (hi - lo)).numpy(), atol=1e-6
    )
    assert tiny.similarity_maps(photo, names, size=(10, 12)).shape == (3, 10, 12)
    grids = tiny.grids(photo, names)
    assert len(grids) == 3 and all(g.dtype == bool and g.shape == (8, 8) for g in grids)
    assert [g.shape for g in tiny.grids(photo, names[:1], size=4)] == [(4, 4)]
    big = photo.resize((photo.width * 16, photo.height * 16))  # 1280×768: drawn at 1024×614
    assert [g.shape for g in tiny.grids(big, names[:1], max_side=1024)] == [(8, 8)]
    assert tiny.similarity_maps(photo, []).shape == (0, photo.height, photo.width)
    assert tiny.grids(photo, []) == []


def test_maps_are_deterministic_and_text_is_cached(tiny_model, photo):
    calls = []

    def counting_tokenizer(texts):
        calls.append(len(texts))
        return open_clip.get_tokenizer("ViT-B-16")(texts)

    cs = ClipSurgery(tiny_model, counting_tokenizer, templates=["a photo of a {}.", "{}"], device="cpu")
    a = cs.similarity_maps(photo, ["cat", "tree"])
    b = cs.similarity_maps(photo, ["tree", "cat"])
    np.testing.assert_array_equal(a, b[::-1])
    assert calls == [4, 2]  # two names × two templates, then the empty text; nothing re-encoded


def test_options_input_size_cosine_norm_and_class_set_redundancy(tiny_model, tokenizer, photo):
    big = ClipSurgery(tiny_model, tokenizer, templates=["{}"], input_size=96, device="cpu")
    assert big.patch_similarity(photo, ["dog"]).shape == (1, 6, 6)  # position embeddings resized
    cos = ClipSurgery(tiny_model, tokenizer, templates=["{}"], token_norm="cosine", device="cpu")
    ref = ClipSurgery(tiny_model, tokenizer, templates=["{}"], device="cpu")
    assert not np.allclose(
        cos.similarity_maps(photo, ["dog", "cat"]), ref.similarity_maps(photo, ["dog", "cat"])
    )
    cls = ClipSurgery(tiny_model, tokenizer, templates=["{}"], redundancy="classes", device="cpu")
    assert cls.similarity_maps(photo, ["dog", "cat"]).shape == (2, photo.height, photo.width)


def test_bad_arguments_are_refused(tiny, tiny_model, tokenizer, photo):
    with pytest.raises(TypeError):
        tiny.similarity_maps(np.zeros((8, 8, 3)), ["dog"])
    with pytest.raises(TypeError):
        tiny.similarity_maps(photo, "dog")
    with pytest.raises(ValueError):
        tiny.similarity_maps(photo, ["dog", "  "])
    for kwargs in (
        {"surgery_blocks": 4},
        {"templates": ["no slot"]},
        {"redundancy": "x"},
        {"input_size": 70},
    ):
        with pytest.raises(ValueError):
            ClipSurgery(tiny_model, tokenizer, device="cpu", **kwargs)


def test_unsupported_vision_towers_are_named():
    resnet = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=64, layers=(1, 1, 1, 1), width=8),
        text_cfg=TINY_TEXT,
    )
    with pytest.raises(ValueError, match="VisionTransformer"):
        ClipSurgery(resnet, open_clip.get_tokenizer("ViT-B-16"), device="cpu")


def test_from_pretrained_offline_says_how_to_provide_weights(tmp_path):
    with pytest.raises(ModelUnavailableError) as e:
        ClipSurgery.from_pretrained("ViT-B-16", "openai", device="cpu")
    msg = str(e.value)
    assert "ViT-B-16" in msg and "openai" in msg and "pretrained=" in msg and "hub" in msg
    with pytest.raises(ModelUnavailableError, match="missing.bin"):
        ClipSurgery.from_pretrained("ViT-B-16", str(tmp_path / "missing.bin"), device="cpu")
    with pytest.raises(ValueError):
        ClipSurgery.from_pretrained("ViT-B-16", None)


def test_from_pretrained_loads_a_local_checkpoint_the_open_clip_way(tmp_path, tiny_model, photo):
    """The real loading path, offline: a registered config plus a local weights file."""
    cfg = tmp_path / "misc-test-tiny-vit.json"
    cfg.write_text(json.dumps({"embed_dim": 32, "vision_cfg": TINY_VISION, "text_cfg": TINY_TEXT}))
    open_clip.add_model_config(cfg)
    weights = tmp_path / "tiny.pt"
    torch.save(tiny_model.state_dict(), weights)
    cs = ClipSurgery.from_pretrained("misc-test-tiny-vit", str(weights), device="cpu", templates=["{}"])
    assert cs.model_id == f"clip-surgery/misc-test-tiny-vit/{weights}"
    ref = ClipSurgery(tiny_model, open_clip.get_tokenizer("ViT-B-16"), templates=["{}"], device="cpu")
    np.testing.assert_allclose(
        cs.similarity_maps(photo, ["dog"]), ref.similarity_maps(photo, ["dog"]), atol=1e-5
    )


def test_openai_weights_get_quickgelu_as_their_tag_records(monkeypatch):
    seen = {}

    def fake_create_model(name, **kwargs):
        seen.update(kwargs, name=name)
        raise RuntimeError("no network")

    monkeypatch.setattr(open_clip, "create_model", fake_create_model)
    with pytest.raises(ModelUnavailableError):
        ClipSurgery.from_pretrained("ViT-B-16", "openai")
    assert seen["name"] == "ViT-B-16" and seen["pretrained"] == "openai" and seen["force_quick_gelu"] is True
    with pytest.raises(ModelUnavailableError):
        ClipSurgery.from_pretrained("ViT-B-16", "laion2b_s34b_b88k")
    assert seen["force_quick_gelu"] is False


@pytest.mark.slow
def test_full_size_vit_b16_architecture_runs_the_whole_surgery(tokenizer):
    """open_clip's real ViT-B-16 architecture (86M-parameter vision tower, 12 blocks, 14×14
    patches at 224) with RANDOM weights: only the code path is real, not the maps. A few
    templates instead of 85 keep the text tower's CPU time down; the ensemble code is the
    same."""
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None).eval()
    cs = ClipSurgery(
        model,
        tokenizer,
        name="ViT-B-16/random-init (untrained)",
        device="cpu",
        templates=default_templates()[:6],
    )
    assert cs.surgery_blocks == 6 and cs.input_size == (224, 224)
    image = Image.fromarray((np.random.default_rng(1).random((240, 320, 3)) * 255).astype(np.uint8))
    sim = cs.patch_similarity(image, ["dog", "grass"])
    assert sim.shape == (2, 14, 14) and torch.isfinite(sim).all()
    maps = cs.similarity_maps(image, ["dog", "grass"])
    assert maps.shape == (2, 240, 320) and 0.0 <= maps.min() and maps.max() <= 1.0
    grids = cs.grids(image, ["dog", "grass"])
    assert [g.shape for g in grids] == [(8, 8), (8, 8)]
    with torch.no_grad():  # the original path still gives CLIP's own image embedding
        px = cs.preprocess(image)
        torch.testing.assert_close(
            surgery_image_tokens(model.visual, px, 6)[:, 0], model.encode_image(px), rtol=1e-4, atol=1e-5
        )
