"""The FULL profile end to end, as a Space runs it, on RANDOM-WEIGHT models, offline.

No hub is reachable here, so bench/random_models.py writes models of the real classes
with RANDOM WEIGHTS into a fresh Hugging Face cache, UNDER THE DEFAULT HUB IDS the full
profile loads (codec/profile.py FULL_MODELS):

    Qwen/Qwen2.5-VL-3B-Instruct            tiny Qwen2.5-VL (1 text layer, 16-wide ViT),
                                           its answer planted (see plant_answer)
    timm/vit_base_patch16_clip_224.openai  open_clip ViT-B-16 at FULL size (the name fixes
                                           the architecture), fp16 open_clip_model.safetensors
    stable-diffusion-v1-5/stable-diffusion-v1-5   tiny UNet/VAE/CLIP text encoder, fp16 variant
    lllyasviel/control_v11f1e_sd15_tile    tiny ControlNet

Then ``app.py`` starts as a Space starts it (``python app.py`` with SPACE_ID set, so it
binds 0.0.0.0; MISC_PROFILE=full because this machine has no GPU and auto would say
offline), with HF_HOME on that cache and HF_HUB_OFFLINE=1, and is driven with
gradio_client and headless Chromium. Everything these models produce is noise: the test
proves the full pipeline's plumbing, and every output is labelled "random weights".

The map-edit assertion (why it is a ratio and not an equality): a changed item map
changes the blend weights only under the changed cells (plus the softening margin), so
after the FIRST denoising step the latents outside are bit-for-bit identical (checked
exactly in ``test_first_step_changes_latents_only_under_the_changed_cells``). From the
second step on, the UNet's self-attention and convolutions read the whole latent, the
VAE decoder has a global attention block, and the wavelet colour fix spreads high
frequencies over ~31 px, so the decoded pixels far from the change differ a little too.
The sound claim on pixels is therefore relative: inside the changed cells the picture
changes many times more than in cells two or more cells away from them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
CELL = 32  # px per map cell in the 256×256 test picture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Space:
    url: str
    log: Path
    repos: dict[str, str]
    timings: dict[str, float]
    tmp: Path


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory):
    from bench.random_models import fill_full_profile_cache

    tmp = tmp_path_factory.mktemp("space-full")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    repos = fill_full_profile_cache(tmp / "hf")
    timings["fill_cache_s"] = time.perf_counter() - t0
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRADIO_SERVER", "MISC_", "HF_", "TRANSFORMERS_"))
    }
    env.update(
        SPACE_ID="misc-tests/space-full",
        MISC_PROFILE="full",
        HF_HOME=str(tmp / "hf"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_SERVER_PORT=str(port),
        MISC_STUDY_DB=str(tmp / "study.db"),
        MISC_STUDY_STIMULI_DIR=str(tmp / "stimuli"),
        PYTHONUNBUFFERED="1",
    )
    log = tmp / "app.log"
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"app.py did not answer in 300 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        timings["app_start_s"] = time.perf_counter() - t0
        yield Space(url, log, repos, timings, tmp)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        OUT.mkdir(exist_ok=True)
        (OUT / "space_full_timing.json").write_text(json.dumps(timings, indent=2))
        (OUT / "space_full_app.log").write_text(log.read_text())


@pytest.fixture(scope="module")
def photo(space: Space) -> Path:
    """A 256×256 photograph (Kodak 4, or scikit-image's astronaut without ../shared)."""
    kodak = ROOT.parent / "shared" / "data" / "kodak24"
    files = sorted(kodak.glob("*.png")) if kodak.is_dir() else []
    if files:
        image = Image.open(files[3]).convert("RGB")
    else:
        from demo.examples import example_image

        image = example_image("astronaut")
    path = space.tmp / "photo.png"
    image.resize((256, 256), Image.Resampling.LANCZOS).save(path)
    return path


@pytest.fixture(scope="module")
def client(space: Space):
    from gradio_client import Client

    return Client(space.url, verbose=False)


@pytest.fixture(scope="module")
def encoded(space: Space, client, photo: Path) -> tuple[bytes, dict]:
    from gradio_client import handle_file

    t0 = time.perf_counter()
    misc_path, info = client.predict(
        handle_file(str(photo)), 0.05, "", "", "diffusion", "default", api_name="/encode"
    )
    space.timings["api_encode_first_s"] = time.perf_counter() - t0
    return Path(misc_path).read_bytes(), info


def test_the_space_binds_all_interfaces_and_loads_nothing_before_first_use(space: Space) -> None:
    log = space.log.read_text()
    assert "0.0.0.0" in log, log[-2000:]
    assert "profile full" in log and "describer: hf Qwen/Qwen2.5-VL-3B-Instruct" in log


def test_encode_runs_the_vlm_and_clip_surgery_and_the_file_names_them(space: Space, encoded) -> None:
    data, info = encoded
    d = info["description"]
    assert [i["name"] for i in d["items"]] == ["red square", "blue sky"]  # the planted answer, via the VLM
    assert "Random weights" in d["overall"]
    assert info["maps"] is not None and len(info["maps"]) == 2  # CLIP Surgery on the two names
    assert info["made_by"] == {
        "text": "describe/hf:Qwen/Qwen2.5-VL-3B-Instruct",
        "maps": "maps/clip-surgery:ViT-B-16/openai",
        "decoder_hint": "diffusion/sd15-controlnet-tile",
    }
    assert len(data) <= info["target_bytes"] and set(info["sections"]) == {"pixel_av1", "text", "maps"}
    # The file itself (not the API's JSON) says so: codec.pipeline.info on the bytes.
    from codec import pipeline

    assert pipeline.info(data)["made_by"] == info["made_by"]
    log = space.log.read_text()
    for layer in ("describer", "maps"):
        assert f"{layer} ready" in log


def test_decode_runs_the_regional_diffusion_decoder(space: Space, client, encoded) -> None:
    from gradio_client import handle_file

    data, _ = encoded
    path = space.tmp / "encoded.misc"
    path.write_bytes(data)
    t0 = time.perf_counter()
    png, info = client.predict(handle_file(str(path)), "diffusion", api_name="/decode")
    space.timings["api_decode_first_s"] = time.perf_counter() - t0
    meta = info["metadata"]
    assert info["decoder"] == "diffusion/stable-diffusion-v1-5+control_v11f1e_sd15_tile"
    assert meta["mode"] == "regional" and meta["models"] == [
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "lllyasviel/control_v11f1e_sd15_tile",
    ]
    assert meta["weights"].startswith("random")  # labelled: never shown as a real model's output
    assert meta["decoder_reason"] == "requested (full profile)"
    assert Image.open(png).size == (256, 256)
    assert "decoder ready" in space.log.read_text()


def _with_maps(data: bytes, grids: list[np.ndarray]) -> bytes:
    """The same file with other item maps: same pixel layer, text and seed (bitstream level)."""
    from codec import bitstream as bs
    from codec.maps import compress_grids

    f = bs.unpack(data)
    sections = [
        bs.Section(s.type, compress_grids(grids)) if s.type == bs.SectionType.MAPS else s for s in f.sections
    ]
    return bs.pack(bs.MiscFile(f.width, f.height, sections, f.grayscale, f.seed, f.models))


def _edited_maps() -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    square = np.zeros((8, 8), bool)
    square[2:6, 0:3] = True
    sky = np.zeros((8, 8), bool)
    sky[0:2, :] = True
    edited = square.copy()
    edited[5:7, 5:7] = True  # the change: four cells of the first item's map
    return [square, sky], [edited, sky], edited & ~square


def test_editing_one_map_changes_the_picture_inside_that_map_not_outside(
    space: Space, client, encoded
) -> None:
    from gradio_client import handle_file
    from scipy.ndimage import binary_dilation

    data, _ = encoded
    before, after, changed = _edited_maps()
    pictures = []
    for name, grids in (("before", before), ("after", after)):
        path = space.tmp / f"{name}.misc"
        path.write_bytes(_with_maps(data, grids))
        png, info = client.predict(handle_file(str(path)), "diffusion", api_name="/decode")
        assert (
            info["maps"] == [g.astype(int).tolist() for g in grids] and info["metadata"]["mode"] == "regional"
        )
        pictures.append(np.asarray(Image.open(png).convert("RGB"), np.float32))
    diff = np.abs(pictures[0] - pictures[1]).mean(axis=2)
    per_cell = diff.reshape(8, CELL, 8, CELL).mean(axis=(1, 3))
    far = ~binary_dilation(changed, iterations=1)  # two or more cells from any changed cell
    inside, outside = per_cell[changed].mean(), per_cell[far].mean()
    space.timings.update(
        map_edit_inside_grey=float(inside),
        map_edit_far_grey=float(outside),
        map_edit_far_max_grey=float(per_cell[far].max()),
    )
    _draw(per_cell, changed, pictures, OUT / "space_full_map_edit.png")
    assert inside > 0.5, per_cell  # the edit reached the picture under the changed cells
    assert inside > 8 * outside and per_cell[far].max() < 0.3 * inside, per_cell


def _draw(per_cell: np.ndarray, changed: np.ndarray, pictures: list[np.ndarray], path: Path) -> None:
    """Before | after | |difference| ×20 with the changed cells outlined (random weights)."""
    from PIL import ImageDraw

    diff = np.clip(np.abs(pictures[0] - pictures[1]) * 20, 0, 255).astype(np.uint8)
    tiles = [Image.fromarray(p.astype(np.uint8)) for p in pictures] + [Image.fromarray(diff)]
    canvas = Image.new("RGB", (3 * 256 + 20, 256 + 24), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (tile, label) in enumerate(
        zip(tiles, ("before (random weights)", "after", "|diff| x20"), strict=True)
    ):
        canvas.paste(tile, (i * 266, 24))
        draw.text((i * 266 + 4, 4), label, fill="black")
    for r, c in zip(*np.nonzero(changed), strict=True):
        draw.rectangle(
            [2 * 266 + c * CELL, 24 + r * CELL, 2 * 266 + (c + 1) * CELL - 1, 24 + (r + 1) * CELL - 1],
            outline="red",
        )
    path.parent.mkdir(exist_ok=True)
    canvas.save(path)


def test_first_step_changes_latents_only_under_the_changed_cells() -> None:
    """The exact half of the map-edit claim, on the pipeline itself: after one denoising
    step the latents outside the changed cells' softened margin are bit-for-bit equal."""
    import torch

    from codec.decode.sd_pipeline import MapGuidedControlNetPipeline, Region
    from codec.decode.tiny import tiny_components

    pipe = MapGuidedControlNetPipeline(**tiny_components(seed=0), device="cpu")
    before, after, changed = _edited_maps()
    control = Image.fromarray((np.random.default_rng(1).random((256, 256, 3)) * 255).astype(np.uint8))
    firsts = []
    for grids in (before, after):
        steps: list[torch.Tensor] = []
        step = pipe.scheduler.step

        def record(*a, _step=step, _steps=steps, **k):
            out = _step(*a, **k)
            _steps.append(out[0].clone())
            return out

        pipe.scheduler.step = record
        try:
            pipe(
                control,
                "a landscape",
                regions=[Region("red square", grids[0]), Region("blue sky", grids[1])],
                num_inference_steps=4,
                strength=1.0,
                softness=0.5,
                seed=3,
            )
        finally:
            pipe.scheduler.step = step
        firsts.append(steps[0])
    latent_cell = 256 // 8 // 8  # latent px per map cell
    mask = torch.from_numpy(np.kron(changed, np.ones((latent_cell, latent_cell), bool)))
    margin = (
        torch.nn.functional.max_pool2d(mask[None, None].float(), 2 * 2 + 1, 1, 2)[0, 0] > 0
    )  # softness 0.5 cell
    delta = (firsts[0] - firsts[1]).abs().amax(dim=1)[0]
    assert torch.equal(delta[~margin], torch.zeros_like(delta[~margin]))
    assert delta[mask].mean() > 0


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")
def test_browser_full_profile_status_encode_decode(space: Space, photo: Path, encoded) -> None:
    from playwright.sync_api import expect, sync_playwright

    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(space.url)
        expect(page.locator("#demo-encode")).to_be_visible(timeout=60000)
        page.get_by_text("Backends: which are active").click()
        status = page.locator("#demo-status")
        expect(status).to_contain_text("Profile: full", timeout=20000)
        text = status.inner_text()
        space.timings["status_panel_text"] = text.split("\nBackends")[0]  # kept in test-output for the report
        assert "describer: hf Qwen/Qwen2.5-VL-3B-Instruct" in text and "random weights" in text
        assert "decoder: diffusion" in text and "maps: clip ViT-B-16/openai" in text
        expect(page.locator("#demo-describer input")).to_have_value("transformers VLM")

        page.locator("#demo-input input[type=file]").set_input_files(str(photo))
        expect(page.locator("#demo-input img")).to_be_visible(timeout=20000)
        t0 = time.perf_counter()
        page.locator("#demo-encode").click()
        expect(page.locator("#demo-encode-info")).to_contain_text("Made by", timeout=300000)
        space.timings["ui_encode_s"] = time.perf_counter() - t0
        info = page.locator("#demo-encode-info").inner_text()
        assert (
            "describe/hf:Qwen/Qwen2.5-VL-3B-Instruct" in info and "maps/clip-surgery:ViT-B-16/openai" in info
        )
        assert "red square" in info and "Item maps in the file: yes" in info
        assert "describer and maps model(s) have random weights" in info
        t0 = time.perf_counter()
        page.locator("#demo-decode").click()
        expect(page.locator("#demo-decode-info")).to_contain_text("random weights", timeout=300000)
        space.timings["ui_decode_s"] = time.perf_counter() - t0
        expect(page.locator("#demo-decode-info")).to_contain_text("diffusion/stable-diffusion-v1-5")
        expect(page.locator("#demo-slider img").first).to_be_visible(timeout=60000)
        expect(page.locator("#demo-slider")).to_contain_text("RANDOM WEIGHTS")
        page.get_by_role("button", name="Refresh").click()
        expect(status).to_contain_text("decoder: diffusion", timeout=20000)
        page.wait_for_timeout(1000)
        status_after = status.inner_text()
        assert status_after.count("loaded — random weights") == 3, status_after  # describer, maps, decoder
        assert "describer hf: active" in status_after
        page.wait_for_timeout(1000)
        page.screenshot(path=str(OUT / "space_full_decoded.png"), full_page=True)
        browser.close()


def test_gpu_check_smoke_run_prints_one_labelled_table(capsys: pytest.CaptureFixture) -> None:
    """bench.gpu_check's code path on tiny random models, on the CPU (the GPU run itself
    needs CUDA: not available here)."""
    from bench import gpu_check

    assert gpu_check.main(["--device", "cpu", "--tiny", "--size", "128", "--denoise-steps", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["describe", "maps", "decode"]
    assert all("**random weights**" in r and "| cpu |" in r for r in rows)
    assert "regional, 2 denoising steps, 3 items" in rows[2]


def test_gpu_check_without_cuda_says_so_and_fails(capsys: pytest.CaptureFixture) -> None:
    import torch

    from bench import gpu_check

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main([]) == 2
    assert "needs CUDA" in capsys.readouterr().err
    assert gpu_check.main(["--device", "cpu"]) == 2  # full size on a CPU: refused, --tiny suggested
