"""Profiles (codec/profile.py), hub file checks (codec/hub.py), the ZeroGPU wrapper
(demo/zerogpu.py) and who-made-which-layer in the file header.

The resolver is pure: machines are described by ``Facts`` (GPU, ZeroGPU, hub, cache), so
every branch of ``auto`` is checked here without a GPU or a network. The hub checks run
against a real huggingface_hub cache layout written by bench/random_models.py.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec import bitstream as bs
from codec import pipeline
from codec.describe import header_name
from codec.errors import ModelUnavailableError
from codec.hub import ModelFiles
from codec.profile import FULL_MODELS, Facts, full_models, requested_profile, resolve
from codec.records import Description, Item

ALL_CACHED = {k: True for k in FULL_MODELS}
NONE_CACHED = {k: False for k in FULL_MODELS}


def facts(**kw) -> Facts:
    base = dict(cached=NONE_CACHED, hub=False, hub_why="HF_HUB_OFFLINE=1")
    base.update(kw)
    return Facts(**base)


# ----------------------------------------------------------------------------- which profile


def test_requested_profile_defaults_to_auto_on_a_space_only():
    assert requested_profile({}) == "offline"
    assert requested_profile({"SPACE_ID": "me/misc"}) == "auto"
    assert requested_profile({"SPACE_ID": "me/misc", "MISC_PROFILE": "offline"}) == "offline"
    assert requested_profile({"MISC_PROFILE": " FULL "}) == "full"
    with pytest.raises(ValueError, match="MISC_PROFILE='fast'.*auto, full, offline"):
        requested_profile({"MISC_PROFILE": "fast"})


def test_auto_is_full_with_a_gpu_and_the_hub_or_a_warm_cache():
    cuda_hub = resolve("auto", facts(cuda=True, gpu_name="NVIDIA A10G", hub=True, hub_why="answered"))
    assert (
        cuda_hub.profile == "full"
        and "CUDA (NVIDIA A10G)" in cuda_hub.reason
        and "hub reachable" in cuda_hub.reason
    )
    assert {k: v.backend for k, v in cuda_hub.layers.items()} == {
        "describer": "hf",
        "maps": "clip",
        "decoder": "diffusion",
    }
    assert cuda_hub.layers["describer"].model == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert cuda_hub.download_bytes == sum(m.download_bytes for m in FULL_MODELS.values())

    zero_cache = resolve("auto", facts(zerogpu=True, cached=ALL_CACHED))
    assert (
        zero_cache.profile == "full"
        and "ZeroGPU" in zero_cache.reason
        and "weights cached" in zero_cache.reason
    )
    assert zero_cache.downloads == {}
    assert "in the cache" in zero_cache.layers["decoder"].reason


def test_auto_is_offline_without_a_gpu_saying_why_per_layer():
    plan = resolve("auto", facts(hub=True, cached=ALL_CACHED))
    assert plan.profile == "offline" and "no GPU" in plan.reason
    assert {k: v.backend for k, v in plan.layers.items()} == {
        "describer": "manual",
        "maps": "painted",
        "decoder": "auto",
    }
    assert all("no GPU" in layer.reason for layer in plan.layers.values())


def test_auto_is_offline_when_a_model_is_neither_cached_nor_downloadable():
    cached = dict(ALL_CACHED, controlnet=False)
    plan = resolve("auto", facts(cuda=True, cached=cached, hub=False, hub_why="HF_HUB_OFFLINE=1"))
    assert plan.profile == "offline"
    assert "lllyasviel/control_v11f1e_sd15_tile not cached" in plan.layers["decoder"].reason
    assert "HF_HUB_OFFLINE" in plan.layers["decoder"].reason
    assert "not cached" not in plan.layers["describer"].reason  # that layer's models are here


def test_openai_describer_needs_no_gpu_and_is_preferred_when_configured():
    plan = resolve("auto", facts(openai=True, openai_model="gpt-4o"))
    assert plan.profile == "offline" and plan.layers["describer"].backend == "openai"
    full = resolve("full", facts(openai=True, openai_model="gpt-4o", cached=ALL_CACHED))
    assert full.layers["describer"].backend == "openai" and full.layers["describer"].model == "gpt-4o"


def test_full_and_offline_are_taken_as_asked_and_say_what_it_costs():
    plan = resolve("full", facts())
    assert plan.profile == "full" and plan.requested == "full"
    assert "slow on CPU" in plan.layers["decoder"].reason
    assert "not cached, hub unreachable" in plan.layers["describer"].reason
    assert resolve("offline", facts(cuda=True, cached=ALL_CACHED)).profile == "offline"
    with pytest.raises(ValueError, match="unknown profile"):
        resolve("turbo", facts())


def test_user_overrides_replace_the_default_repositories(tmp_path):
    models = full_models({"MISC_VLM_HF_MODEL": str(tmp_path), "MISC_SD_MODEL": "me/sd"})
    assert models["vlm"].repo_id == str(tmp_path) and models["sd"].repo_id == "me/sd"
    assert models["clip"] is FULL_MODELS["clip"] and models["controlnet"] is FULL_MODELS["controlnet"]
    assert not models["vlm"].cached()  # a local directory without config.json
    (tmp_path / "config.json").write_text("{}")
    assert models["vlm"].cached()


def test_preload_lines_name_the_files_the_full_profile_reads():
    lines = [m.preload_line() for m in FULL_MODELS.values()]
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5 model_index.json," in lines[2]
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in lines[2] and ".ckpt" not in lines[2]
    assert lines[0] == "Qwen/Qwen2.5-VL-3B-Instruct" and lines[1] == "timm/vit_base_patch16_clip_224.openai"
    assert lines[3] == "lllyasviel/control_v11f1e_sd15_tile config.json,diffusion_pytorch_model.safetensors"
    assert "tokenizer/vocab.json" in lines[2] and "scheduler/scheduler_config.json" in lines[2]


# ----------------------------------------------------------------------------- the hub cache


def _use_cache(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Point huggingface_hub at ``path`` (it reads HF_HUB_CACHE once, at import)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_CACHE", str(path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(path))


def test_cache_layout_is_found_and_variants_shards_and_markers_are_read(tmp_path, monkeypatch):
    from bench.random_models import write_hub_repo

    _use_cache(monkeypatch, tmp_path / "hub")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "sub" / "w.fp16.safetensors").write_bytes(b"x" * 10)
    (src / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}'
    )
    (src / "model-1.safetensors").write_bytes(b"1")
    write_hub_repo(tmp_path / "hub", "org/name", src)
    folder = tmp_path / "hub" / "models--org--name"
    rev = (folder / "refs" / "main").read_text()
    link = folder / "snapshots" / rev / "sub" / "w.fp16.safetensors"
    assert link.is_symlink() and link.resolve().parent == (folder / "blobs").resolve()

    files = ModelFiles(
        "org/name",
        probes=("config.json",),
        weights=(("sub/w.fp16.safetensors", "sub/w.safetensors"), ("model.safetensors.index.json",)),
    )
    assert files.missing() == [("model-2.safetensors",)]  # the shard the index names and the cache lacks
    assert not files.cached() and files.random_weights() and files.variant("sub/w.fp16.safetensors") == "fp16"
    (src / "model-2.safetensors").write_bytes(b"2")
    write_hub_repo(tmp_path / "hub", "org/name", src)
    assert files.cached()
    assert not ModelFiles("org/other", probes=("config.json",)).cached()
    assert not ModelFiles("org/name").cached()  # nothing known about it: never "cached"


def test_fetch_offline_names_the_repository_and_the_remedy(tmp_path, monkeypatch):
    _use_cache(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seen = []
    with pytest.raises(ModelUnavailableError) as err:
        FULL_MODELS["controlnet"].fetch(lambda f, m: seen.append((f, m)))
    msg = str(err.value)
    assert "lllyasviel/control_v11f1e_sd15_tile" in msg and "HF_HUB_OFFLINE" in msg and "hf download" in msg
    assert seen and seen[0][1].startswith("downloading lllyasviel/control_v11f1e_sd15_tile")


# ----------------------------------------------------------------------------- who made each layer


def test_header_names_for_describers_and_their_compact_ids(tmp_path):
    class D:
        def __init__(self, name):
            self.name = name

    assert header_name(D("hf:Qwen/Qwen2.5-VL-3B-Instruct")) == "describe/hf:Qwen/Qwen2.5-VL-3B-Instruct"
    assert header_name(D(f"hf:{tmp_path}/my-vlm")) == "describe/hf:local/my-vlm"  # no path in the file
    assert header_name(D("openai:gpt-4o")) == "describe/openai:gpt-4o"
    assert header_name(D("manual")) == "describe/manual" and header_name(D("none")) is None
    assert len(header_name(D("openai:" + "x" * 200)).encode()) <= 64
    for name in (
        "describe/hf:Qwen/Qwen2.5-VL-3B-Instruct",
        "maps/clip-surgery:ViT-B-16/openai",
        "describe/manual",
        "maps/painted",
        "describe/openai:gpt-4o",
    ):
        assert 16 <= bs.MODEL_IDS[name] <= 31


def test_the_file_says_who_made_each_layer_in_one_byte_each():
    image = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    desc = Description([Item("red square", "left")], "A red square.")
    grid = np.zeros((8, 8), bool)
    grid[2:5, 1:4] = True
    made = {"text": "describe/hf:Qwen/Qwen2.5-VL-3B-Instruct", "maps": "maps/clip-surgery:ViT-B-16/openai"}
    plain = pipeline.encode(image, 0.5, description=desc, maps=[grid], decoder_hint="bicubic")
    named = pipeline.encode(image, 0.5, description=desc, maps=[grid], decoder_hint="bicubic", made_by=made)
    info = named.info()
    assert info["made_by"] == {"text": made["text"], "maps": made["maps"]}
    assert info["models"] == ["text/misc-text-en-1", made["text"], made["maps"]]
    assert len(bs.header_bytes(bs.unpack(named.data))) - len(bs.header_bytes(bs.unpack(plain.data))) == 2
    # a layer dropped for the budget takes its maker with it
    _, models = pipeline._semantic_sections(desc, None, made_by=made)
    assert models == ["text/misc-text-en-1", made["text"]]


def test_encode_names_the_describer_and_clip_it_ran():
    class Describer:
        name = "openai:gpt-4o-mini"

        def describe(self, image):
            return Description([Item("sky", "blue")], "Sky.")

    class Clip:
        header_name = "maps/clip-surgery:tiny-random"  # no compact id: the file names its kind

        def grids(self, image, names, size, threshold):
            return [np.ones((size, size), bool) for _ in names]

    image = Image.new("RGB", (64, 64), (90, 140, 220))
    r = pipeline.encode(image, 0.5, describer=Describer(), clip=Clip(), decoder_hint="bicubic")
    assert r.info()["made_by"] == {"text": "describe/openai:gpt-4o-mini", "maps": "maps/clip-surgery:other"}


# ----------------------------------------------------------------------------- ZeroGPU


@pytest.fixture
def fake_spaces(monkeypatch):
    """A stand-in `spaces` package that records what spaces.GPU was asked for."""
    calls: dict[str, object] = {}
    runs: list[str] = []

    def GPU(task=None, *, duration=None):  # noqa: N802 - the package's name
        def wrap(fn):
            calls[fn.__name__] = duration

            def run(*a, **k):
                runs.append(fn.__name__)
                return fn(*a, **k)

            run.__wrapped__ = fn
            return run

        return wrap if task is None else wrap(task)

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    import demo.zerogpu as zg

    zg = importlib.reload(zg)
    yield zg, calls, runs
    monkeypatch.delitem(sys.modules, "spaces")
    importlib.reload(zg)


class _Recorder:
    """A model stand-in for the registry: records the progress callback it got."""

    config = types.SimpleNamespace(steps=20, strength=0.8, max_side=1024)

    def __init__(self):
        self.progress = "unset"

    def describe(self, image):
        return Description([Item("cat", "grey")], f"{image.size}")

    def grids(self, image, names, size, threshold):
        return [np.ones((size, size), bool) for _ in names]

    def decode(self, layers, progress=None):
        self.progress = progress
        return "decoded"


def test_gpu_steps_are_decorated_with_durations_and_run_outside_zerogpu(fake_spaces, monkeypatch):
    zg, calls, runs = fake_spaces
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert calls["describe"] == zg.DESCRIBE_SECONDS and calls["maps"] == zg.MAPS_SECONDS
    assert calls["decode"] is zg.decode_seconds  # dynamic: from steps, prompts and pixels
    model = _Recorder()
    zg.register("m", model)
    assert zg.describe("m", Image.new("RGB", (8, 6))).overall == "(8, 6)"
    assert len(zg.maps("m", Image.new("RGB", (8, 8)), ["a", "b"], 8, 0.35)) == 2
    progress = lambda f, m: None  # noqa: E731
    assert zg.call_decode("m", types.SimpleNamespace(width=512, height=512), progress) == "decoded"
    assert model.progress is progress  # not on ZeroGPU: progress reaches the decoder
    assert runs == ["describe", "maps", "decode"]


def test_on_zerogpu_progress_is_not_sent_to_the_worker(fake_spaces, monkeypatch):
    zg, _, _ = fake_spaces
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    model = _Recorder()
    zg.register("m", model)
    zg.call_decode("m", types.SimpleNamespace(width=64, height=64), lambda f, m: None)
    assert zg.on_zerogpu() and model.progress is None  # a callback cannot be pickled into the fork


def test_decode_duration_grows_with_the_work_within_zerogpu_bounds():
    import demo.zerogpu as zg

    zg.register("d", _Recorder())
    small = types.SimpleNamespace(width=256, height=256, description=Description([Item("a", "")], ""))
    big = types.SimpleNamespace(
        width=1024, height=1024, description=Description([Item(str(i), "") for i in range(8)], "")
    )
    assert zg.DECODE_MIN_SECONDS <= zg.decode_seconds("d", small) < zg.decode_seconds("d", big)
    assert zg.decode_seconds("d", big) <= zg.DECODE_MAX_SECONDS


def test_without_spaces_the_steps_are_plain_functions(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import fails as if not installed
    import demo.zerogpu as zg

    zg = importlib.reload(zg)
    try:
        assert zg.spaces is None and not zg.on_zerogpu()
        assert zg.gpu(10)(len) is len
    finally:
        monkeypatch.delitem(sys.modules, "spaces")
        importlib.reload(zg)


def test_the_real_spaces_package_is_a_no_op_outside_zerogpu(monkeypatch):
    """With Hugging Face's own `spaces` installed (as on every Gradio Space), outside
    ZeroGPU its decorator hands back the function itself."""
    spaces = pytest.importorskip("spaces")
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    import demo.zerogpu as zg

    zg = importlib.reload(zg)
    assert zg.spaces is spaces and not zg.on_zerogpu()
    zg.register("m", _Recorder())
    assert zg.call_decode("m", types.SimpleNamespace(width=8, height=8)) == "decoded"
    assert spaces.GPU(duration=5)(len) is len


def test_backends_route_the_gpu_steps_through_the_wrapper(monkeypatch, tmp_path):
    """A Backends with the offline profile runs describe/maps/decode through demo.zerogpu."""
    from demo.backends import Backends

    b = Backends(profile="offline")
    recorder = _Recorder()
    b.set_clip(recorder, "a recorder")
    recorder.header_name = "maps/clip-surgery:test"
    grids, maker = b.maps(Image.new("RGB", (16, 16)), ["a"], 8, 0.35)
    assert maker == "maps/clip-surgery:test" and grids[0].shape == (8, 8)
    import demo.zerogpu as zg

    assert zg.MODELS["maps:clip"] is recorder
    recorder.pipeline = object()  # a GPU decoder (diffusion, upscale) goes through the decorated function
    b._decoders["diffusion"] = recorder
    assert b.run_decode("diffusion", types.SimpleNamespace(width=8, height=8)) == "decoded"
    assert zg.MODELS["decoder:diffusion"] is recorder
    cpu = _Recorder()  # restore / bicubic need no GPU: called directly, never registered
    b._decoders["bicubic"] = cpu
    assert b.run_decode("bicubic", types.SimpleNamespace(width=8, height=8)) == "decoded"
    assert "decoder:bicubic" not in zg.MODELS
    assert "**Profile: `offline`**" in b.status_markdown()


def test_profile_panel_for_full_on_a_described_machine():
    from demo.backends import Backends

    b = Backends(profile="auto", facts=facts(zerogpu=True, cached=ALL_CACHED, random_weights={"vlm": True}))
    md = b.profile_markdown()
    assert md.startswith("**Profile: `full`** (requested `auto`")
    assert "describer: **hf** `Qwen/Qwen2.5-VL-3B-Instruct`" in md and "random weights" in md
    assert "decoder: **diffusion**" in md and "maps: **clip** `ViT-B-16/openai`" in md
    assert md.count("random weights") == 1  # only the describer's cached model is a test's
    assert (
        b.default_describer() == "hf"
        and b.default_map_source() == "clip"
        and b.default_decoder() == "diffusion"
    )
    assert "hf" in b.describers() and "diffusion" in b.decoders()


def test_app_wires_zerogpu_before_launch():
    text = Path("app.py").read_text()
    assert text.index("import spaces") < text.index("import gradio")
    assert "backends.preload()" in text and "zerogpu.on_zerogpu()" in text


def test_cli_full_profile_without_weights_or_hub_fails_naming_the_model(tmp_path, monkeypatch, capsys):
    from codec.cli import EXIT_MODEL, main

    _use_cache(monkeypatch, tmp_path / "empty-cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    Image.new("RGB", (64, 64), (10, 120, 200)).save(tmp_path / "in.png")
    code = main(["encode", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.misc"), "--profile", "full"])
    err = capsys.readouterr().err
    assert code == EXIT_MODEL and "profile full: requested" in err
    assert "Qwen/Qwen2.5-VL-3B-Instruct" in err and "HF_HUB_OFFLINE" in err
    assert not (tmp_path / "out.misc").exists()
    # auto on a machine without a GPU is offline: the plain encoder, no model needed
    assert (
        main(
            [
                "encode",
                str(tmp_path / "in.png"),
                "-o",
                str(tmp_path / "out.misc"),
                "--profile",
                "auto",
                "--bpp",
                "0.5",
            ]
        )
        == 0
    )
    assert "profile offline (requested auto)" in capsys.readouterr().err


# ----------------------------------------------------------------------------- first-use download


class _LoopbackHub:
    """The few hub routes hf_hub_download and snapshot_download use, on 127.0.0.1:
    HEAD/GET /{repo}/resolve/{rev}/{path} (404 + EntryNotFound for missing files) and
    GET /api/models/{repo}/revision/{rev} and /tree/{rev} (the revision and the file list)."""

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, files: dict[str, dict[str, bytes]]):
        import hashlib
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        hub = self
        self.files, self.requests = files, []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _file(self):
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, rel = "/".join(parts[:2]), "/".join(parts[4:])
                    return repo, rel, hub.files.get(repo, {}).get(rel)
                return None, None, None

            def _head(self, body: bool):
                hub.requests.append((self.command, self.path))
                if self.path.startswith("/api/models/"):
                    repo = "/".join(self.path.split("/")[3:5])
                    files = hub.files.get(repo, {})
                    if "/tree/" in self.path:  # list_repo_tree(recursive=True)
                        listing = [
                            {"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                            for f, b in files.items()
                        ]
                    else:  # repo_info
                        listing = {
                            "id": repo,
                            "sha": hub.COMMIT,
                            "siblings": [{"rfilename": f} for f in files],
                        }
                    data = json.dumps(listing).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data if body else b"")
                    return
                repo, rel, data = self._file()
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Error-Message", "Entry not found")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.COMMIT)
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self):  # noqa: N802
                self._head(False)

            def do_GET(self):  # noqa: N802
                self._head(True)

        import json

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def _run_against(hub: _LoopbackHub, script: str, tmp_path: Path, timeout: int):
    """Run ``script`` in a fresh interpreter whose hub is ``hub`` and whose cache is empty."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "MISC_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_CACHE=str(tmp_path / "cache"),
        HF_HOME=str(tmp_path / "home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    try:
        return subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
        )
    finally:
        hub.close()


def test_first_use_downloads_with_progress_to_the_callback_and_the_log(tmp_path):
    """A loopback server speaking the hub's protocol: the full profile's fetch downloads the
    missing files (fp16 variant absent → the fp32 file), reports bytes to the progress
    callback and the log, and the cache then holds them (a second fetch asks nothing)."""
    weights = bytes(range(256)) * 4096  # 1 MiB
    hub = _LoopbackHub({"org/cn": {"config.json": b"{}", "w.safetensors": weights}})
    script = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
from codec.hub import ModelFiles
m = ModelFiles("org/cn", probes=("config.json",), weights=(("w.fp16.safetensors", "w.safetensors"),),
               download_bytes=2**20)
seen = []
assert not m.cached()
m.fetch(lambda f, msg: seen.append([round(f, 3), msg]))
print(json.dumps({"seen": seen, "cached": m.cached(), "variant": m.variant("w.fp16.safetensors")}))
m.fetch(lambda f, msg: seen.append("again"))
print(json.dumps({"again": "again" in seen}))
"""
    out = _run_against(hub, script, tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    first, second = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
    assert first["cached"] and first["variant"] is None and not second["again"]
    messages = [m for _, m in first["seen"]]
    assert any(
        m.startswith("downloading org/cn/w.safetensors: ") and m.endswith("1.05 MB / 1.05 MB")
        for m in messages
    )
    assert max(f for f, _ in first["seen"]) == 1.0
    assert "misc.hub: downloading org/cn (~1.05 MB) on first use" in out.stderr
    assert "misc.hub: downloading org/cn/w.safetensors: 100% of 1.05 MB" in out.stderr
    assert ("GET", "/org/cn/resolve/main/w.fp16.safetensors") in hub.requests or any(
        "w.fp16.safetensors" in p for _, p in hub.requests
    )  # the fp16 variant was asked for first


@pytest.mark.slow
def test_backends_full_profile_downloads_the_decoder_on_first_use(tmp_path):
    """The demo's path: Backends under the full profile, an empty cache, the hub on
    loopback serving random-weight SD + ControlNet under the default ids. The first decode
    request downloads them (progress to the request and the panel), loads, decodes."""
    from bench.random_models import tiny_controlnet, tiny_sd15
    from codec.profile import DEFAULT_CONTROLNET, DEFAULT_SD

    def tree(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    served = {
        DEFAULT_SD: tree(tiny_sd15(tmp_path / "sd")),
        DEFAULT_CONTROLNET: tree(tiny_controlnet(tmp_path / "cn")),
    }
    hub = _LoopbackHub(served)
    script = """
import json, sys
from PIL import Image
from codec.records import DecodedLayers, Description, Item
from demo.backends import Backends
import numpy as np
b = Backends(profile="full")
seen = []
layers = DecodedLayers(width=64, height=64, grayscale=False, seed=1, models=[], lowres=Image.new("RGB", (16, 16), "red"),
                       description=Description([Item("red square", "")], "red"), maps=[np.eye(8, dtype=bool)])
panel_before = b.profile_markdown()
out = b.run_decode("diffusion", layers, lambda f, m: seen.append(m))
print(json.dumps({"seen": seen, "mode": out.metadata["mode"], "before": panel_before, "after": b.profile_markdown(),
                  "decoder": out.decoder}))
"""
    out = _run_against(hub, script, tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert (
        r["mode"] == "regional" and r["decoder"] == "diffusion/stable-diffusion-v1-5+control_v11f1e_sd15_tile"
    )
    assert (
        "downloads ~" in r["before"] and "hub reachable" not in r["before"]
    )  # full was asked for, not probed
    assert any(
        "downloading stable-diffusion-v1-5/stable-diffusion-v1-5/unet/diffusion_pytorch_model.fp16.safetensors"
        in m
        for m in r["seen"]
    )
    assert any(m.startswith("downloading lllyasviel/control_v11f1e_sd15_tile/") for m in r["seen"])
    assert "decoder: **diffusion**" in r["after"] and "*loaded*" in r["after"]
