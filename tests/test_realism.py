"""codec.realism: the score, the detail section, the decoder-in-the-loop choice, seed search.

Decoders here are small deterministic stand-ins (and tiny RANDOM-weight diffusion for the
seed search: plumbing only, never quality)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from codec import bitstream as bs
from codec import pipeline
from codec.errors import BitstreamError
from codec.realism import LoopConfig, apply_detail, check_realism, pack_detail, seed_candidates, unpack_detail
from codec.realism.detail import quantize
from codec.realism.loop import crop_boxes
from codec.realism.score import GUARD_DB, texture_distance, utility
from codec.records import DecodeResult
from tests.codec_helpers import kodak_crop


class NoisyDecoder:
    """Bicubic plus fixed noise: its invented 'detail' only hurts PSNR, so a faithful loop
    must turn it off (α = 0) and a realistic one may keep it."""

    name = "noisy/test"

    def __init__(self, amplitude: float = 25.0):
        self.amplitude = amplitude
        self.calls = 0

    def decode(self, layers, progress=None):
        self.calls += 1
        base = np.asarray(layers.lowres.resize((layers.width, layers.height), Image.Resampling.BICUBIC), float)
        rng = np.random.default_rng(layers.seed)
        out = np.clip(base + rng.normal(0, self.amplitude, base.shape), 0, 255).astype(np.uint8)
        return DecodeResult(image=Image.fromarray(out), decoder=self.name, metadata={"seed": layers.seed})


class SeededDecoder(NoisyDecoder):
    """A stochastic decoder: the picture depends on the seed."""

    name = "diffusion/test"
    stochastic = True


def _psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return 10 * math.log10(255**2 / mse)


# ----------------------------------------------------------------------------- score and detail


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf, "0.5", True, None])
def test_realism_out_of_range_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="realism"):
        check_realism(bad)


def test_r0_ignores_perception_and_r1_ignores_psnr():
    assert utility(0.0, 25.0, None, 25.0).utility == 25.0
    assert utility(0.0, 25.0, 0.9, 25.0).utility == utility(0.0, 25.0, 0.1, 25.0).utility
    assert utility(1.0, 20.0, 0.2, 25.0).utility == utility(1.0, 30.0, 0.2, 25.0).utility
    with pytest.raises(ValueError, match="perception"):
        utility(0.5, 25.0, None, 25.0)


def test_guard_penalises_falling_below_the_own_bicubic_only_at_low_r():
    within = utility(0.0, 25.0 - GUARD_DB, None, 25.0)
    beyond = utility(0.0, 25.0 - GUARD_DB - 1, None, 25.0)
    assert within.penalty == 0 and beyond.penalty > 0
    assert beyond.utility < within.utility - 1  # worse than the PSNR loss alone
    assert utility(1.0, 20.0, 0.3, 25.0).penalty == 0


def test_detail_section_round_trips_and_rejects_bad_lengths():
    for a in (0.0, 0.25, 1.0, 1.5):
        assert unpack_detail(pack_detail(a)) == quantize(a) == a
    with pytest.raises(BitstreamError):
        unpack_detail(b"")
    with pytest.raises(BitstreamError):
        unpack_detail(b"\x01\x02")


def test_apply_detail_ends_are_bicubic_and_the_decoder():
    low = kodak_crop(3, (40, 30))
    decoded = kodak_crop(3, (160, 120))
    bic = low.resize(decoded.size, Image.Resampling.BICUBIC)
    assert apply_detail(decoded, low, 1.0) is decoded
    assert np.array_equal(np.asarray(apply_detail(decoded, low, 0.0)), np.asarray(bic))
    half = np.asarray(apply_detail(decoded, low, 0.5), float)
    assert np.abs(half - (np.asarray(bic, float) + np.asarray(decoded, float)) / 2).max() <= 1
    assert apply_detail(decoded.convert("L"), low, 0.5).mode == "L"


def test_texture_distance_orders_blur_and_identity():
    img = kodak_crop(5, (160, 120))
    blurred = img.resize((40, 30)).resize(img.size, Image.Resampling.BICUBIC)
    assert texture_distance(img, img) == pytest.approx(0.0, abs=1e-6)
    assert texture_distance(img, blurred) > 0.05


def test_crop_boxes_align_to_pixel_layer_pixels():
    lbox, box = crop_boxes((500, 500), (125, 125), 0.5)
    assert lbox == (31, 31, 93, 93) and box == (124, 124, 372, 372)
    assert crop_boxes((500, 400), (50, 40), 1.0) == ((0, 0, 50, 40), (0, 0, 500, 400))


def test_seed_candidates_keep_the_varint_length():
    assert seed_candidates(0, 4) == [0, 1, 2, 3]
    assert seed_candidates(126, 4) == [126, 127]  # 128 would take two bytes
    assert all(len(bs.varint(s)) == 2 for s in seed_candidates(200, 8))


@pytest.mark.parametrize("bad", [dict(candidates=0), dict(crop=0.0), dict(seeds=0), dict(seeds=129), dict(alphas=())])
def test_loop_config_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        LoopConfig(**bad)


# ----------------------------------------------------------------------------- the loop in the pipeline


@pytest.fixture(scope="module")
def image():
    return kodak_crop(1, (192, 128))


def test_faithful_loop_turns_invented_detail_off_and_stores_it(image):
    dec = NoisyDecoder()
    enc = pipeline.encode(image, 0.05, decoder_hint="restore", realism=0.0, loop_decoder=dec)
    assert len(enc.data) <= pipeline.budget_bytes(*image.size, 0.05)
    assert enc.loop is not None and enc.loop.alpha == 0.0 and dec.calls == enc.loop.decodes >= 1
    f = bs.unpack(enc.data)
    assert f.section(bs.SectionType.REALISM) == pack_detail(0.0)
    out = pipeline.decode(enc.data, decoder=NoisyDecoder())
    assert out.metadata["detail"] == 0.0
    low = pipeline.read_layers(enc.data).lowres
    assert np.array_equal(np.asarray(out.image), np.asarray(low.resize(image.size, Image.Resampling.BICUBIC)))


def test_realistic_loop_keeps_detail_when_perception_asks_for_it(image):
    # A perceptual distance that rewards high-frequency energy: R = 1 must keep the noise.
    def likes_texture(ref, img):
        g = np.abs(np.diff(np.asarray(img.convert("L"), float), axis=1)).mean()
        return 1.0 / (1.0 + g)

    enc = pipeline.encode(image, 0.05, decoder_hint="restore", realism=1.0, loop_decoder=NoisyDecoder(),
                          perceptual=likes_texture)  # fmt: skip
    assert enc.loop.alpha == max(LoopConfig().alphas)


def test_loop_picks_among_candidates_by_the_decoded_score(image):
    dec = NoisyDecoder(amplitude=0.0)  # = bicubic: the loop must agree with rate control
    enc = pipeline.encode(image, 0.05, decoder_hint="restore", realism=LoopConfig(realism=0.0, crop=1.0),
                          loop_decoder=dec)  # fmt: skip
    # The best bicubic payload is the only one that carries its ranked alternatives.
    assert enc.pixel.alternatives and enc.pixel is enc.pixel.alternatives[0]
    assert len(enc.pixel.alternatives) >= 3 and dec.calls == 3 and len(enc.loop.tried) >= 3


def test_cache_shared_between_realism_values_decodes_each_payload_once(image):
    dec, cache = NoisyDecoder(), {}
    a = pipeline.encode(image, 0.05, decoder_hint="restore", realism=0.0, loop_decoder=dec, loop_cache=cache)
    calls = dec.calls
    pipeline.encode(image, 0.05, decoder_hint="restore", realism=0.0, loop_decoder=dec, loop_cache=cache)
    assert calls == a.loop.decodes and dec.calls == calls


def test_bicubic_decoder_leaves_realism_without_effect(image):
    enc = pipeline.encode(image, 0.05, decoder_hint="bicubic", realism=0.5)
    assert enc.loop is None and any("no effect" in n for n in enc.notes)
    assert bs.unpack(enc.data).section(bs.SectionType.REALISM) is None


def test_files_without_the_section_decode_as_before(image):
    enc = pipeline.encode(image, 0.05, decoder_hint="bicubic")
    out = pipeline.decode(enc.data, decoder="bicubic")
    assert "detail" not in out.metadata and pipeline.read_layers(enc.data).detail is None


def test_older_readers_skip_the_realism_section(image):
    enc = pipeline.encode(image, 0.05, decoder_hint="restore", realism=0.0, loop_decoder=NoisyDecoder())
    f = bs.unpack(enc.data)
    assert bs.SectionType.REALISM >= bs.ANCILLARY_BASE  # ancillary: an old reader skips it
    stripped = bs.pack(bs.MiscFile(f.width, f.height, [s for s in f.sections if s.type != bs.SectionType.REALISM],
                                   f.grayscale, f.seed, f.models))  # fmt: skip
    assert pipeline.read_layers(stripped).detail is None


# ----------------------------------------------------------------------------- seed search


def test_seed_search_keeps_bytes_and_the_chosen_seed_reproduces_the_picture(image):
    dec, cache = SeededDecoder(amplitude=8.0), {}
    cfg = LoopConfig(realism=0.5, crop=1.0, seeds=5, candidates=1)
    enc = pipeline.encode(image, 0.05, decoder_hint="restore", realism=cfg, loop_decoder=dec, loop_cache=cache,
                          perceptual=texture_distance)  # fmt: skip
    one = pipeline.encode(image, 0.05, decoder_hint="restore", realism=LoopConfig(realism=0.5, crop=1.0, candidates=1),
                          loop_decoder=SeededDecoder(amplitude=8.0), perceptual=texture_distance, seed=0)  # fmt: skip
    assert len(enc.data) == len(one.data)  # whichever seed wins, the file keeps its size
    seeds = {t["seed"] for t in enc.loop.tried}
    assert seeds == {0, 1, 2, 3, 4}
    f = bs.unpack(enc.data)
    assert f.seed == enc.loop.seed
    # The chosen seed's picture, as the encoder saw it, is what the file decodes to.
    chosen = next(v for k, v in cache.items() if k[2] == enc.loop.seed)
    out = pipeline.decode(enc.data, decoder=SeededDecoder(amplitude=8.0))
    expect = apply_detail(chosen.decoded, pipeline.read_layers(enc.data).lowres, enc.loop.alpha)
    assert np.array_equal(np.asarray(out.image), np.asarray(expect))


def test_seed_search_is_off_for_deterministic_decoders(image):
    dec = NoisyDecoder()
    enc = pipeline.encode(image, 0.05, decoder_hint="restore", realism=LoopConfig(realism=0.0, seeds=4),
                          loop_decoder=dec)  # fmt: skip
    assert {t["seed"] for t in enc.loop.tried} == {0}


def test_seed_search_with_tiny_random_weight_diffusion(image):
    """Tiny RANDOM weights (plumbing only, not quality): the real diffusion decoder in the
    loop, K = 3 seeds at the full size; the file's size does not depend on the seed that
    wins and the file decodes to exactly the picture the encoder chose."""
    from codec.decode.diffusion import DiffusionConfig, DiffusionDecoder
    from codec.decode.sd_pipeline import MapGuidedControlNetPipeline
    from codec.decode.tiny import tiny_components

    dec = DiffusionDecoder(MapGuidedControlNetPipeline(**tiny_components()), DiffusionConfig(steps=2),
                           models=("tiny-random-weights",))  # fmt: skip

    small = image.resize((96, 64))
    cache: dict = {}
    cfg = LoopConfig(realism=0.5, crop=1.0, seeds=3, candidates=1)
    enc = pipeline.encode(small, 0.3, decoder_hint="diffusion", realism=cfg, loop_decoder=dec, loop_cache=cache,
                          perceptual=texture_distance)  # fmt: skip
    assert {t["seed"] for t in enc.loop.tried} == {0, 1, 2}
    pictures = {k[2]: np.asarray(v.decoded) for k, v in cache.items()}
    assert not np.array_equal(pictures[0], pictures[1])  # the seed matters to this decoder
    fixed = [pipeline.encode(small, 0.3, decoder_hint="diffusion", seed=s,
                             realism=LoopConfig(realism=0.5, crop=1.0, candidates=1), loop_decoder=dec,
                             perceptual=texture_distance) for s in (0, 2)]  # fmt: skip
    assert len(enc.data) == len(fixed[0].data) == len(fixed[1].data)
    assert bs.unpack(enc.data).seed == enc.loop.seed
    out = pipeline.decode(enc.data, decoder=dec)
    assert out.metadata["seed"] == enc.loop.seed
    expect = apply_detail(Image.fromarray(pictures[enc.loop.seed]), pipeline.read_layers(enc.data).lowres, enc.loop.alpha)
    assert np.array_equal(np.asarray(out.image), np.asarray(expect))


def test_faithful_loop_sets_the_detail_level_from_the_whole_decoded_picture():
    """R = 0 with full_alpha: the crop only ranks the payloads; the stored α is the
    least-squares level of the chosen payload's full decode (a crop's can be far off)."""
    # A decoder whose detail helps in the centre (it returns the original there) and hurts
    # elsewhere (noise): the centre crop alone asks for α = 1, the whole picture for less.
    image = kodak_crop(3, (192, 128))

    class CentreTruth(NoisyDecoder):
        def decode(self, layers, progress=None):
            out = super().decode(layers, progress)
            if (layers.width, layers.height) == image.size:
                arr = np.asarray(out.image).copy()
                arr[32:96, 48:144] = np.asarray(image)[32:96, 48:144]
                out.image = Image.fromarray(arr)
            return out

    cfg = dict(realism=0.0, crop=0.3)
    full = pipeline.encode(image, 0.05, decoder_hint="restore", realism=LoopConfig(**cfg, full_alpha=True),
                           loop_decoder=CentreTruth())  # fmt: skip
    crop = pipeline.encode(image, 0.05, decoder_hint="restore", realism=LoopConfig(**cfg), loop_decoder=CentreTruth())
    assert full.pixel.payload == crop.pixel.payload and full.loop.decodes == crop.loop.decodes + 1
    layers = pipeline.read_layers(full.data)
    d = np.asarray(CentreTruth().decode(layers).image, float)
    b = np.asarray(layers.lowres.resize(image.size, Image.Resampling.BICUBIC), float)
    o = np.asarray(image, float)
    least_squares = float(((d - b) * (o - b)).sum() / ((d - b) ** 2).sum())
    assert full.loop.alpha == quantize(least_squares) == layers.detail
    assert crop.loop.alpha != full.loop.alpha
    assert _psnr(pipeline.decode(full.data, CentreTruth()).image, image) > _psnr(
        pipeline.decode(crop.data, CentreTruth()).image, image
    )
    # off by default (one more full decode per encode), and only at R = 0
    assert not any(t.get("full") for t in crop.loop.tried)
    realistic = pipeline.encode(image, 0.05, decoder_hint="restore", loop_decoder=CentreTruth(),
                                realism=LoopConfig(realism=0.5, crop=0.3, full_alpha=True),
                                perceptual=lambda ref, img: 0.0)  # fmt: skip
    assert not any(t.get("full") for t in realistic.loop.tried)
