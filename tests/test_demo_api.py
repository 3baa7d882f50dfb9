"""The demo's named endpoints ("encode", "decode") through gradio_client on a launched app.

Offline backends only: the manual description, painted maps, Real-ESRGAN and bicubic.
Small images (128×128) keep it quick.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec import pipeline
from demo.figures import budget_parts

DESCRIPTION = "astronaut: woman in an orange suit\nflag: stars and stripes\n\nA portrait of an astronaut."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from gradio_client import Client

    import app
    from study.config import StudyConfig

    tmp = tmp_path_factory.mktemp("demo_api")
    blocks = app.build_app(StudyConfig(db_url=str(tmp / "study.db"), stimuli_dir=tmp / "stim"))
    port = _free_port()
    kw = app.launch_kwargs("127.0.0.1", port)
    blocks.queue().launch(prevent_thread_lock=True, quiet=True, **kw)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from demo.examples import example_image

    path = tmp_path_factory.mktemp("photo") / "astronaut128.png"
    example_image("astronaut").resize((128, 128), Image.Resampling.LANCZOS).save(path)
    return path


def _maps() -> str:
    a = np.zeros((8, 8), int)
    a[1:8, 1:6] = 1
    f = np.zeros((8, 8), int)
    f[0:3, 5:8] = 1
    return json.dumps({"astronaut": a.tolist(), "flag": f.tolist()})


def test_encode_then_decode_endpoints(client, photo: Path) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    misc_path, info = client.predict(handle_file(str(photo)), 0.05, DESCRIPTION, _maps(), "restore",
                                     api_name="/encode")
    data = Path(misc_path).read_bytes()
    assert misc_path.endswith(".misc")
    assert len(data) == info["total_bytes"] <= pipeline.budget_bytes(128, 128, 0.05) == info["target_bytes"]
    assert sum(p[3] for p in budget_parts(info)) == len(data)  # the bar adds up to the file
    assert {"pixel_av1", "text", "maps"} <= set(info["sections"])
    assert [i["name"] for i in info["description"]["items"]] == ["astronaut", "flag"]
    # What the endpoint says is what the file holds.
    layers = pipeline.read_layers(data)
    assert [i.name for i in layers.description.items] == ["astronaut", "flag"]
    assert np.array_equal(layers.maps[0].astype(int), np.array(json.loads(_maps())["astronaut"]))

    for decoder in ("bicubic", "restore"):
        png, dinfo = client.predict(handle_file(misc_path), decoder, api_name="/decode")
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size == (128, 128)
        assert dinfo["decoder"].startswith(decoder)
        assert dinfo["bytes"] == len(data)
        assert dinfo["description"]["overall"] == "A portrait of an astronaut."
    # The demo decodes exactly as the codec does.
    direct = pipeline.decode(data, "bicubic").image
    png, _ = client.predict(handle_file(misc_path), "bicubic", api_name="/decode")
    assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), np.asarray(direct))


def test_encode_without_semantic_layer(client, photo: Path) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    misc_path, info = client.predict(handle_file(str(photo)), 0.03, "", "", "bicubic", api_name="/encode")
    assert set(info["sections"]) == {"pixel_av1"}
    assert info["description"] is None and info["maps"] is None
    assert any("no semantic layer" in n for n in info["notes"])


def test_errors_are_readable(client, photo: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    with pytest.raises(Exception, match="smallest file"):
        client.predict(handle_file(str(photo)), 0.0005, "", "", "restore", api_name="/encode")
    bad = tmp_path / "bad.misc"
    bad.write_bytes(b"not a misc file at all")
    with pytest.raises(Exception) as err:
        client.predict(handle_file(str(bad)), "bicubic", api_name="/decode")
    assert "Traceback" not in str(err.value)
    assert "misc" in str(err.value).lower() or "file" in str(err.value).lower()
    with pytest.raises(Exception, match="maps for"):
        client.predict(handle_file(str(photo)), 0.05, DESCRIPTION, "[[[1]]]", "restore", api_name="/encode")


@pytest.fixture(scope="module")
def clip_client(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """An app whose CLIP Surgery is a tiny random open_clip model: plumbing, not map quality."""
    import open_clip
    from gradio_client import Client

    import app
    from codec.maps import ClipSurgery
    from demo.backends import Backends
    from study.config import StudyConfig

    model = open_clip.CLIP(embed_dim=32, vision_cfg=dict(image_size=64, layers=3, width=64, patch_size=16,
                                                         head_width=32),
                           text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)).eval()
    backends = Backends()
    backends.set_clip(ClipSurgery(model, open_clip.get_tokenizer("ViT-B-16"), name="tiny-random", device="cpu"))
    tmp = tmp_path_factory.mktemp("demo_api_clip")
    blocks = app.build_app(StudyConfig(db_url=str(tmp / "study.db"), stimuli_dir=tmp / "stim"), backends=backends)
    port = _free_port()
    blocks.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs("127.0.0.1", port))
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), backends
    finally:
        blocks.close()


def test_encode_with_clip_surgery_maps(clip_client, photo: Path) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    client, backends = clip_client
    assert "clip-surgery/tiny-random" in backends.status_markdown()
    misc_path, info = client.predict(handle_file(str(photo)), 0.05, DESCRIPTION, "", "restore", api_name="/encode")
    # No painted maps given: the maps come from CLIP Surgery, exactly as the codec makes them.
    expected = backends.clip.grids(Image.open(photo).convert("RGB"), ["astronaut", "flag"], size=8, threshold=0.35)
    if any(g.any() for g in expected):
        assert [np.asarray(g, bool).tolist() for g in info["maps"]] == [g.tolist() for g in expected]
        assert "maps" in info["sections"]
    else:  # a random model may light no cell at all: then the file has no map layer
        assert info["maps"] is None


# --------------------------------------------------------------------------- hostile uploads


def png_bomb(path: Path, side: int) -> Path:
    """A valid grayscale PNG of side×side black pixels, streamed: ~79 KB at 9000², 389 KB at 20000²."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + side)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture()
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of every image PIL decodes in this process (the app runs in it) while the test runs."""
    from PIL import ImageFile

    seen: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def counting(self):  # noqa: ANN001, ANN202
        seen.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return seen


def _check(client, path: Path) -> str:  # noqa: ANN001
    """The Demo tab's check of a new picture (what an upload into the image box triggers): its message."""
    from gradio_client import handle_file

    out = client.predict(handle_file(str(path)), "", api_name="/check_image")
    return str(out[0] if isinstance(out, list | tuple) else out)


@pytest.mark.parametrize("side", [9000, 20000])
def test_bomb_upload_refused_from_its_header(client, tmp_path: Path, decodes, side: int) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    bomb = png_bomb(tmp_path / f"bomb{side}.png", side)
    message = _check(client, bomb)
    assert "1,048,576 pixels" in message and "MISC_MAX_PIXELS" not in message, message
    assert "too large to downscale here" in message
    with pytest.raises(Exception, match="pixels") as err:  # the API refuses it the same way
        client.predict(handle_file(str(bomb)), 0.02, "", "", "restore", api_name="/encode")
    assert "MISC_MAX_PIXELS" not in str(err.value)
    assert (side, side) not in decodes  # refused before a single pixel was decoded


def test_non_image_upload_gets_a_message(client, tmp_path: Path) -> None:  # noqa: ANN001
    fake = tmp_path / "notes.png"
    fake.write_text("these are my notes, not a picture\n")
    message = _check(client, fake)
    assert "not an image" in message, message


def test_large_upload_offers_a_downscale(client, tmp_path: Path, decodes) -> None:  # noqa: ANN001
    big = tmp_path / "big.jpg"
    Image.new("RGB", (2400, 1600), (90, 120, 200)).save(big, quality=90)
    message = _check(client, big)
    assert "2400×1600 = 3,840,000 pixels" in message and "Downscale to 1254×836" in message, message
    assert (2400, 1600) not in decodes


def test_large_upload_through_the_api_says_what_to_pass(client, tmp_path: Path, decodes) -> None:  # noqa: ANN001
    """An API client has no Downscale button: /encode's answer gives the limit in pixels and the
    size to pass instead, and names no button."""
    from gradio_client import handle_file

    big = tmp_path / "big.jpg"
    Image.new("RGB", (2400, 1600), (90, 120, 200)).save(big, quality=90)
    with pytest.raises(Exception) as err:
        client.predict(handle_file(str(big)), 0.02, "", "", "restore", api_name="/encode")
    message = str(err.value)
    assert "2400×1600 = 3,840,000 pixels" in message and "at most 1,048,576 pixels" in message, message
    assert "Pass a copy downscaled to at most 1254×836 (the same aspect ratio)" in message, message
    assert "Press" not in message and "Downscale to" not in message and "**" not in message, message
    assert (2400, 1600) not in decodes


def test_decode_json_keeps_markup_like_text(client, photo: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """Prompt syntax (LoRA tags, angle brackets) goes through /decode's JSON as written. Lone
    surrogates never get this far: the codec refuses them when writing and when parsing
    (tests/test_decode_attacks.py::test_web_decode_refuses_text_that_is_no_unicode)."""
    from gradio_client import handle_file

    from codec.records import Description, Item

    desc = Description(items=[Item("cat", "grey <lora:x:1>")], overall="A cat & a <b>mat</b>.")
    misc = tmp_path / "markup.misc"
    misc.write_bytes(pipeline.encode(Image.open(photo), 0.05, description=desc).data)
    _png, info = client.predict(handle_file(str(misc)), "bicubic", api_name="/decode")
    assert info["description"]["items"][0] == {"name": "cat", "detail": "grey <lora:x:1>"}
    assert info["description"]["overall"] == "A cat & a <b>mat</b>."


@pytest.mark.parametrize("realism", [0.75, 0.0])
def test_realism_slider_reaches_the_encoder(client, photo: Path, monkeypatch, realism: float) -> None:  # noqa: ANN001
    """The page's Encode (its event, as the button sends it) hands the fidelity ↔ realism
    slider's value to the encoder, and the report says what the encoder did with it."""
    from gradio_client import handle_file

    seen: list[dict] = []
    encode = pipeline.encode

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(dict(kwargs))
        return encode(*args, **kwargs)

    monkeypatch.setattr(pipeline, "encode", spy)
    out = client.predict(handle_file(str(photo)), 0.05, "manual", DESCRIPTION, "painted", "restore", realism,
                         api_name="/do_encode")  # fmt: skip
    assert [kw.get("realism") for kw in seen] == [realism]
    assert callable(seen[0].get("perceptual")) == (realism > 0)  # metrics' DISTS scores realism above 0
    report = next(o for o in out if isinstance(o, str) and "Fidelity ↔ realism" in o)
    assert f"R = {realism:g}" in report, report
