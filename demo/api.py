"""Named API endpoints for gradio_client: "encode" and "decode".

    Client(url).predict(handle_file("photo.png"), 0.02, "cat: grey tabby\\n\\nA cat.", "", "restore",
                        api_name="/encode")  -> (path of the .misc file, info JSON)
    Client(url).predict(handle_file("photo.png"), 0.02, "", "", "diffusion", "default",
                        api_name="/encode")  -> the profile's describer writes the text
    Client(url).predict(handle_file("photo.misc"), "restore", api_name="/decode")
                        -> (path of the decoded PNG, info JSON)

They run the same steps as the Demo tab (demo/session.py). The inputs live in a hidden row:
an API call does not need them on screen.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from codec.bitstream import read_file
from demo import session
from demo.backends import Backends


def _encode_api(backends: Backends):
    def encode(
        image_path: str, bpp: float, description: str, maps_json: str, decoder_hint: str, describer: str = ""
    ) -> tuple[str, dict]:
        """Encode an image at `bpp`; `description` in the manual format (empty: none, or
        what `describer` writes: "default" = the profile's, "hf", "openai"), `maps_json`
        {item: 8×8 rows of 0/1} (empty: CLIP Surgery when available, else none)."""
        from demo.ui import _error_boundary

        @_error_boundary
        def run() -> tuple[str, dict]:
            if not image_path:
                raise gr.Error("no image given")
            image = session.load_upload(image_path)  # header checked before any pixel is decoded
            desc = session.read_text(description or "")
            made = {"text": session.MANUAL_TEXT, "maps": session.PAINTED_MAPS}
            spec = backends.default_describer() if describer == "default" else (describer or "").strip()
            if desc is None and spec and spec not in ("manual", "none"):
                if spec not in backends.describers():
                    raise gr.Error(f"describer {spec!r} is not available here; see the Backends panel")
                desc, made["text"] = session.describe(image.convert("RGB"), spec, "", backends=backends)
            names = [it.name for it in desc.items] if desc else []
            grids = session.parse_maps_json(maps_json, names) if names else None
            if grids is None and names and (backends.clip is not None or backends.full):
                grids, made["maps"] = backends.maps(image.convert("RGB"), names, session.MAP_SIZE[0], 0.35)
            enc = session.encode(image, float(bpp), desc, grids, decoder_hint or "restore", made_by=made)
            folder = Path(tempfile.mkdtemp(prefix="misc-api-"))
            path = folder / f"{Path(image_path).stem}.misc"
            path.write_bytes(enc.result.data)
            info: dict[str, Any] = dict(enc.info)
            info.update(
                target_bpp=float(bpp),
                target_bytes=enc.target_bytes,
                notes=enc.result.notes,
                description=enc.description.to_dict() if enc.description else None,
                maps=[g.astype(int).tolist() for g in enc.grids] if enc.grids else None,
            )
            return str(path), info

        return run()

    return encode


def _decode_api(backends: Backends):
    def decode(misc_path: str, decoder: str) -> tuple[Image.Image, dict]:
        """Decode a .misc file with `decoder` (auto | restore | bicubic | diffusion)."""
        from demo.ui import _error_boundary

        @_error_boundary
        def run() -> tuple[Image.Image, dict]:
            if not misc_path:
                raise gr.Error("no .misc file given")
            data = read_file(misc_path)  # at most a .misc file's bytes, whatever was uploaded
            out = session.decode(data, decoder or "auto", backends)
            lay = out.layers
            info = {
                "decoder": out.decoder,
                "metadata": {
                    k: v for k, v in out.metadata.items() if isinstance(v, str | int | float | bool | list)
                },
                "width": lay.width,
                "height": lay.height,
                "bytes": len(data),
                "bpp": 8 * len(data) / (lay.width * lay.height),
                "description": lay.description.to_dict() if lay.description else None,
                "maps": [g.astype(int).tolist() for g in lay.maps] if lay.maps else None,
            }
            return out.image, session.json_safe(info)  # a TEXT layer may hold lone surrogates

        return run()

    return decode


def register_api(backends: Backends) -> None:
    """Hidden components + two events named "encode" and "decode"."""
    from demo.ui import uploaded_image

    with gr.Row(visible=False):
        img = uploaded_image(label="image")
        bpp = gr.Number(value=0.02, label="bpp")
        text = gr.Textbox(label="description")
        maps = gr.Textbox(label="maps_json")
        hint = gr.Textbox(value="restore", label="decoder_hint")
        desc_by = gr.Textbox(value="", label="describer")
        misc_out = gr.File(label="misc file")
        info_out = gr.JSON(label="info")
        misc_in = gr.File(label="misc file", type="filepath")
        dec = gr.Textbox(value="auto", label="decoder")
        png_out = gr.Image(type="pil", format="png", label="decoded image")
        dinfo_out = gr.JSON(label="decode info")
        enc_btn = gr.Button("encode")
        dec_btn = gr.Button("decode")
    enc_btn.click(
        _encode_api(backends), [img, bpp, text, maps, hint, desc_by], [misc_out, info_out], api_name="encode"
    )
    dec_btn.click(_decode_api(backends), [misc_in, dec], [png_out, dinfo_out], api_name="decode")
