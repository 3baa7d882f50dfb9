"""Classical baselines at a byte budget: every file fits, decodes back, and more bytes never hurt."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.classical import (
    CODECS,
    ClassicalResult,
    available,
    budget_for_bpp,
    decode_classical,
    encode_at_budget,
)

BUDGETS = (160, 320, 640, 1280)
USABLE = [c for c, why in available().items() if why is None]


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A real photograph (ships inside scikit-image), not square, so sizes are checked both ways."""
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((240, 200), Image.LANCZOS)


@pytest.fixture(scope="module")
def results(photo: Image.Image) -> dict[tuple[str, int], ClassicalResult | None]:
    return {(c, b): encode_at_budget(photo, b, c) for c in USABLE for b in BUDGETS}


def test_all_four_codecs_are_available_here() -> None:
    # requirements.txt pins Pillow with AVIF and imagecodecs with libjxl: all four must work.
    assert set(available()) == set(CODECS)
    assert USABLE == list(CODECS), available()


@pytest.mark.parametrize("codec", CODECS)
def test_results_fit_budget_and_decode_to_full_size(codec: str, photo: Image.Image, results: dict) -> None:
    fitted = 0
    for budget in BUDGETS:
        r = results[(codec, budget)]
        if r is None:
            continue
        fitted += 1
        assert r.nbytes == len(r.data) <= budget
        assert r.codec == codec
        assert r.image.size == photo.size and r.image.mode == "RGB"
        assert r.factor >= 1 and 0 <= r.quality <= 100
        # The file alone (plus the original size) gives back exactly the reported image.
        again = decode_classical(r.data, codec, photo.size)
        assert again.size == photo.size
        assert np.array_equal(np.asarray(again), np.asarray(r.image))
        ref = np.asarray(photo, dtype=np.float64)
        mse = np.mean((ref - np.asarray(r.image, dtype=np.float64)) ** 2)
        assert r.psnr == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-6)
    assert fitted >= 1, f"{codec}: nothing fitted even {max(BUDGETS)} bytes"


@pytest.mark.parametrize("codec", CODECS)
def test_more_bytes_never_lower_psnr(codec: str, results: dict) -> None:
    last = -np.inf
    for budget in BUDGETS:
        r = results[(codec, budget)]
        if r is None:
            assert last == -np.inf, "a smaller budget fitted but a larger one did not"
            continue
        assert r.psnr >= last - 0.05, (budget, r.psnr, last)
        last = r.psnr


@pytest.mark.parametrize("codec", CODECS)
def test_absurdly_small_budget_gives_none(codec: str, photo: Image.Image) -> None:
    assert encode_at_budget(photo, 8, codec) is None


def test_downsampling_is_searched(photo: Image.Image) -> None:
    # 160 B cannot hold a full-resolution 240×200 WebP; the search must shrink the image.
    r = encode_at_budget(photo, 160, "webp")
    assert r is not None and r.factor > 1 and r.coded_size[0] < photo.size[0]


def test_unknown_codec_and_budget_helper(photo: Image.Image) -> None:
    with pytest.raises(ValueError, match="unknown classical codec"):
        encode_at_budget(photo, 1000, "bpg")
    assert budget_for_bpp((500, 500), 0.01) == 312
    assert budget_for_bpp((500, 500), 0.02) == 625
