"""The Demo tab: pick an image, encode it at a target rate, edit what the file says, decode.

    [image | example] + bpp + describer + decoder ─Encode─▶ description, item maps over the
        image (click cells to paint/erase), bit budget bar, .misc download
    (edit the text, paint cells) ─Encode again─▶ a new file with the edited semantics
    ─Decode─▶ original ◀▶ reconstruction slider, pixel layer alone, classical codecs at the
        same file size, PSNR / LPIPS / DISTS (+ CLIP when its weights are here)

Every number on screen comes from codec/, bench.classical and metrics/ (demo/session.py);
this module only lays them out. ``build_demo_tab`` also registers the named API endpoints
"encode" and "decode" for gradio_client (demo/api.py).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from codec.describe import FORMAT_HELP
from codec.errors import BudgetError, CodecError
from demo import aigi_panel, session
from demo.backends import DESCRIBER_LABELS, Backends
from demo.examples import example_files
from demo.figures import budget_bar, cell_at, overlay_maps

INTRO = """\
## MISC: an image in a few hundred bytes
The file holds three layers: a **description** (key items, a detail each, a paragraph; entropy coded),
one coarse **map** per item (8×8 cells: where the item is), and a tiny **pixel layer** (raw AV1) that
rate control sizes so the *whole file* fits the target. Encode, look at what the file says, edit
the text or click map cells, encode again, then decode and compare with classical codecs at the same file size.
"""

MAP_HELP = (
    "Pick an item, then click cells on this picture to paint or erase its map. "
    "Maps go into the file at the next **Encode**; an item with no painted cell gets an empty map, "
    "and with no cell painted at all the file has no map layer."
)


def _error_boundary(fn: Callable) -> Callable:
    """Codec and input errors reach the visitor as one readable message, never a traceback."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except BudgetError as exc:
            hint = f" Try at least {exc.minimum_bpp:.4f} bpp." if exc.minimum_bpp else ""
            raise gr.Error(f"{exc}.{hint}", title="Target too low") from exc
        except CodecError as exc:
            raise gr.Error(str(exc), title=type(exc).__name__) from exc
        except (ValueError, OSError) as exc:
            raise gr.Error(f"{type(exc).__name__}: {exc}", title="Bad input") from exc

    return wrapped


def _progress(progress: gr.Progress) -> session.Progress:
    return lambda f, m: progress(f, desc=m)


def _names(text: str) -> list[str]:
    d = session.read_text(text)
    return [it.name for it in d.items] if d else []


def _grids(names: list[str], painted: dict) -> list[np.ndarray]:
    return session.grids_for(names, painted or {})


def _overlay(
    image: Image.Image | None, names: list[str], painted: dict, selected: str | None
) -> Image.Image | None:
    if image is None:
        return None
    sel = names.index(selected) if selected in names else None
    return overlay_maps(image, names, _grids(names, painted), sel, session.MAP_SIZE)


def _file_for(data: bytes, stem: str) -> str:
    folder = Path(tempfile.mkdtemp(prefix="misc-demo-"))
    path = folder / f"{stem}.misc"
    path.write_bytes(data)
    return str(path)


def _encode_report(enc: session.Encoded, random_layers: list[str] | None = None) -> str:
    r, info = enc.result, enc.info
    lines = [
        f"**{r.nbytes} bytes = {r.bpp:.5f} bpp** (target {r.target_bpp:g} bpp = {enc.target_bytes} bytes; "
        f"{r.width}×{r.height}) · pixel layer {info.get('pixel_layer_size', ['?', '?'])[0]}×"
        f"{info.get('pixel_layer_size', ['?', '?'])[1]} · encoded in {r.seconds:.1f} s",
    ]
    d = enc.description
    if d is not None:
        lines.append("\n**Description in the file**")
        lines += [f"- **{it.name}**: {it.detail}" for it in d.items]
        if d.overall:
            lines.append(f"\n> {d.overall}")
        lines.append(f"\nItem maps in the file: {'yes' if enc.grids else 'none'}")
    made = info.get("made_by") or {}
    if made:
        lines.append("\nMade by: " + " · ".join(f"{k}: `{v}`" for k, v in made.items()))
    if random_layers:
        lines.append(
            f"\n⚠️ The {' and '.join(random_layers)} model(s) have **random weights** (a test's models): "
            "their text and maps mean nothing."
        )
    for note in r.notes:
        lines.append(f"\n⚠️ {note}")
    return "\n".join(lines)


def build_demo_tab(backends: Backends | None = None) -> Backends:
    """Add the Demo tab (and the API endpoints) to the Blocks being built."""
    backends = backends or Backends()
    examples = [[str(p)] for p in example_files()]
    describers = backends.describers()
    decoders = backends.decoders()
    default_decoder = backends.default_decoder()

    with gr.Tab("Demo", id="demo"):
        gr.Markdown(INTRO)
        painted = gr.State({})  # item name → 8×8 grid of 0/1, as painted or as CLIP made it
        data_state = gr.State(None)  # the current .misc bytes
        orig_state = gr.State(None)  # the image those bytes were made from
        decoded_state = gr.State(None)  # the last session.Decoded
        made_state = gr.State({})  # what a model made: {"text": [text, maker], "maps": [grids, maker]}
        with gr.Row():
            with gr.Column(scale=1):
                image_in = gr.Image(
                    label="Image",
                    type="pil",
                    sources=["upload", "clipboard"],
                    format="png",
                    height=340,
                    elem_id="demo-input",
                )
                gr.Examples(
                    examples,
                    inputs=[image_in],
                    label="Examples (scikit-image photographs)",
                    elem_id="demo-examples",
                )
                bpp = gr.Slider(
                    0.002,
                    0.05,
                    value=0.02,
                    step=0.001,
                    label="Target bits per pixel (whole file)",
                    elem_id="demo-bpp",
                )
                describer = gr.Dropdown(
                    [(DESCRIBER_LABELS.get(k, k), k) for k in describers],
                    value=backends.default_describer(),
                    label="Describer",
                    elem_id="demo-describer",
                )
                text = gr.Textbox(
                    lines=6,
                    label="Description (editable: one 'item: detail' line each, a blank line, the paragraph)",
                    placeholder=FORMAT_HELP,
                    elem_id="demo-text",
                )
                maps_src = gr.Radio(
                    [("painted by hand", "painted"), ("CLIP Surgery", "clip")],
                    value=backends.default_map_source(),
                    label="Item maps from",
                    elem_id="demo-maps-source",
                )
                decoder = gr.Dropdown(
                    ["auto", *decoders], value=default_decoder, label="Decoder", elem_id="demo-decoder"
                )
                realism = gr.Slider(
                    0.0, 1.0, value=session.DEFAULT_REALISM, step=0.25, elem_id="demo-realism",
                    label="Faithful (0) ◀ ▶ realistic (1): the encoder decodes candidates and keeps the best for this",
                )  # fmt: skip
                encode_btn = gr.Button("1 · Encode", variant="primary", elem_id="demo-encode")
            with gr.Column(scale=1):
                item_sel = gr.Radio([], label="Item to paint", elem_id="demo-item")
                map_img = gr.Image(
                    label="Item maps (click a cell to paint or erase it)",
                    type="pil",
                    interactive=False,
                    format="png",
                    height=340,
                    elem_id="demo-maps",
                )
                gr.Markdown(MAP_HELP)
                with gr.Row():
                    clear_btn = gr.Button("Erase this item's map", size="sm")
                    fill_btn = gr.Button("Whole picture for this item", size="sm")
                budget = gr.Image(
                    label="Bit budget of the file",
                    type="pil",
                    interactive=False,
                    format="png",
                    elem_id="demo-budget",
                )
                enc_info = gr.Markdown(elem_id="demo-encode-info")
                misc_file = gr.File(label="The .misc file", interactive=False, elem_id="demo-file")
        decode_btn = gr.Button("2 · Decode", variant="primary", elem_id="demo-decode")
        with gr.Row():
            slider = gr.ImageSlider(
                label="Original ◀ ▶ reconstruction", type="pil", format="png", elem_id="demo-slider"
            )
            pixel_img = gr.Image(
                label="Pixel layer alone (bicubic upsampling)",
                type="pil",
                format="png",
                interactive=False,
                elem_id="demo-pixel",
            )
        metrics_df = gr.Dataframe(
            label="Same file size: MISC vs classical codecs (scored against the original)",
            interactive=False,
            wrap=True,
            elem_id="demo-metrics",
        )
        with gr.Row(elem_id="demo-classical"):
            classical = [
                gr.Image(
                    label=f"{c.upper()} at the same file size",
                    type="pil",
                    format="png",
                    interactive=False,
                    elem_id=f"demo-{c}",
                )
                for c in session.CLASSICAL
            ]
        dec_info = gr.Markdown(elem_id="demo-decode-info")
        with gr.Accordion("Decode a .misc file of your own", open=False):
            upload = gr.File(
                label="Upload a .misc file", file_types=[".misc"], type="binary", elem_id="demo-upload"
            )
            upload_btn = gr.Button("Decode the uploaded file", elem_id="demo-decode-upload")
        aigi_panel.build(image_in, bpp, decoder, {"text": text, "budget": budget, "enc_info": enc_info,
                                                  "misc_file": misc_file, "data_state": data_state,
                                                  "orig_state": orig_state})  # fmt: skip
        with gr.Accordion("Backends: which are active, and how to enable the others", open=False):
            status_md = gr.Markdown(value=backends.status_markdown, elem_id="demo-status")
            refresh_btn = gr.Button("Refresh", size="sm")

        # ---------------------------------------------------------------- handlers
        def redraw(image, txt, pt, selected):
            names = _names(txt)
            sel = selected if selected in names else (names[0] if names else None)
            picture = gr.skip() if image is None else _overlay(image, names, pt, sel)
            return gr.update(choices=names, value=sel), picture

        @_error_boundary
        def toggle(image, txt, pt, selected, evt: gr.SelectData):
            names = _names(txt)
            if image is None or not names:
                raise gr.Error(
                    "Write a description with at least one 'item: detail' line (or Encode with a "
                    "describer) first; then pick an item and click cells."
                )
            if selected not in names:
                selected = names[0]
            x, y = evt.index[0], evt.index[1]
            w, h = image.size
            r, c = cell_at(x, y, w, h, *session.MAP_SIZE)
            pt = dict(pt or {})
            grid = np.array(pt.get(selected, session.empty_grid().astype(int).tolist()), bool)
            grid[r, c] = not grid[r, c]
            pt[selected] = grid.astype(int).tolist()
            return pt, _overlay(image, names, pt, selected), gr.update(value=selected)

        def set_all(value: bool):
            def fn(image, txt, pt, selected):
                names = _names(txt)
                pt = dict(pt or {})
                if selected in names:
                    pt[selected] = np.full(session.MAP_SIZE, int(value)).tolist()
                return pt, _overlay(image, names, pt, selected)

            return fn

        @_error_boundary
        def do_encode(image, rate, spec, txt, src, dec, pt, made, real=None, progress=gr.Progress()):
            if image is None:
                raise gr.Error("Pick an example or upload an image first.")
            p = _progress(progress)
            desc, text_maker = session.describe(image, spec, txt or "", session.sub(p, 0.0, 0.3), backends)
            names = [it.name for it in desc.items] if desc else []
            made = dict(made or {})
            if spec == "manual" and made.get("text") and made["text"][0] == (txt or ""):
                text_maker = made["text"][1]  # a model's text, not edited since
            if src == "clip" and names:
                if backends.clip is None and not backends.full:
                    raise gr.Error(
                        "CLIP Surgery is not available here (see Backends below); paint the maps instead."
                    )
                p(0.3, "CLIP Surgery maps")
                grids, maps_maker = backends.maps(
                    image.convert("RGB"), names, session.MAP_SIZE[0], 0.35, session.sub(p, 0.3, 0.35)
                )
            else:
                grids = _grids(names, pt) if names else None
                same = (
                    made.get("maps")
                    and grids is not None
                    and made["maps"][0] == session.grids_to_json(names, grids)
                )
                maps_maker = made["maps"][1] if same else session.PAINTED_MAPS
            enc = session.encode(
                image,
                rate,
                desc,
                grids,
                dec,
                session.sub(p, 0.35, 1.0),
                made_by={"text": text_maker, "maps": maps_maker},
                realism=real,
            )
            new_txt = session.description_text(enc.description) if enc.description else txt
            new_pt = dict(pt or {})
            if enc.grids is not None and enc.description is not None:
                new_pt.update(session.grids_to_json(names, enc.grids))
            sel = names[0] if names else None
            if enc.description is not None:
                made["text"] = [new_txt, text_maker]
            if enc.grids is not None:
                made["maps"] = [session.grids_to_json(names, enc.grids), maps_maker]
            return (
                made,
                gr.update(value=new_txt),
                gr.update(value="manual" if enc.description else spec),  # next Encode reads the edited text
                gr.update(value="painted"),  # ... and the (edited) cells
                gr.update(choices=names, value=sel),
                _overlay(image, names, new_pt, sel),
                new_pt,
                budget_bar(enc.info, enc.target_bytes),
                _encode_report(
                    enc,
                    [
                        x
                        for x, used in (
                            ("describer", text_maker not in ("", session.MANUAL_TEXT)),
                            ("maps", maps_maker != session.PAINTED_MAPS),
                        )
                        if used and x in backends.random_layers()
                    ],
                ),
                _file_for(enc.result.data, f"image-{enc.result.nbytes}B"),
                enc.result.data,
                image.convert("RGB"),
            )

        @_error_boundary
        def do_decode(data, original, dec, progress=gr.Progress()):
            if data is None:
                raise gr.Error("Encode an image first (or upload a .misc file below).")
            out = aigi_panel.decode(data, dec, backends, _progress(progress))
            before = original if original is not None else out.upsampled
            label = "Original ◀ ▶ reconstruction" + (
                " (RANDOM WEIGHTS)" if out.metadata.get("weights") else ""
            )
            return (
                gr.update(value=(before, out.image), label=label),
                out.upsampled,
                _decode_report(out, len(data)),
                out,
            )

        @_error_boundary
        def do_compare(decoded, data, original, progress=gr.Progress()):
            """Second step of Decode: classical codecs at the same size and the metrics."""
            if decoded is None or data is None or original is None:
                return gr.skip(), *[gr.skip() for _ in classical]
            cmp = session.compare(original, decoded, len(data), backends, _progress(progress))
            heads, rows = session.table(cmp)
            shown = {cap.split(":")[0]: (img, cap) for img, cap in cmp.images}
            pictures = [
                gr.update(value=shown[c.upper()][0], label=shown[c.upper()][1])
                if c.upper() in shown
                else gr.update(value=None, label=f"{c.upper()}: no file fits")
                for c in session.CLASSICAL
            ]
            return pd.DataFrame(rows, columns=heads), *pictures

        @_error_boundary
        def do_decode_upload(blob, dec, progress=gr.Progress()):
            if not blob:
                raise gr.Error("Choose a .misc file first.")
            data = bytes(blob)
            p = _progress(progress)
            out = aigi_panel.decode(data, dec, backends, p)
            lay = out.layers
            names = [it.name for it in lay.description.items] if lay.description else []
            grids = lay.maps or [None] * len(names)
            info = session.pipeline.info(data)
            return (
                (out.upsampled, out.image),
                out.upsampled,
                pd.DataFrame(
                    [["no original: metrics need the image the file was made from"]], columns=["note"]
                ),
                *[gr.update(value=None) for _ in classical],
                _decode_report(out, len(data)),
                overlay_maps(out.image, names, grids, None, session.MAP_SIZE),
                budget_bar(info),
                f"**Uploaded file: {len(data)} bytes = {info['bpp']:.5f} bpp** ({lay.width}×{lay.height}); "
                f"its maps are drawn over the reconstruction.",
                None,
                data,
                None,
                None,
            )

        hide = {"api_visibility": "undocumented"}
        image_in.change(redraw, [image_in, text, painted, item_sel], [item_sel, map_img], **hide)
        text.change(
            redraw,
            [image_in, text, painted, item_sel],
            [item_sel, map_img],
            trigger_mode="always_last",
            **hide,
        )
        item_sel.change(
            lambda im, t, pt, s: gr.skip() if im is None else _overlay(im, _names(t), pt, s),
            [image_in, text, painted, item_sel],
            map_img,
            **hide,
        )
        map_img.select(toggle, [image_in, text, painted, item_sel], [painted, map_img, item_sel], **hide)
        clear_btn.click(set_all(False), [image_in, text, painted, item_sel], [painted, map_img], **hide)
        fill_btn.click(set_all(True), [image_in, text, painted, item_sel], [painted, map_img], **hide)
        encode_btn.click(
            do_encode,
            [image_in, bpp, describer, text, maps_src, decoder, painted, made_state, realism],
            [
                made_state,
                text,
                describer,
                maps_src,
                item_sel,
                map_img,
                painted,
                budget,
                enc_info,
                misc_file,
                data_state,
                orig_state,
            ],
            **hide,
        )
        decode_btn.click(
            do_decode, [data_state, orig_state, decoder], [slider, pixel_img, dec_info, decoded_state], **hide
        ).success(do_compare, [decoded_state, data_state, orig_state], [metrics_df, *classical], **hide)
        upload_btn.click(
            do_decode_upload,
            [upload, decoder],
            [
                slider,
                pixel_img,
                metrics_df,
                *classical,
                dec_info,
                map_img,
                budget,
                enc_info,
                misc_file,
                data_state,
                orig_state,
                image_in,
            ],
            **hide,
        )
        refresh_btn.click(backends.status_markdown, None, status_md, **hide)

        from demo.api import register_api

        register_api(backends)
    return backends


def _decode_report(out: session.Decoded, nbytes: int) -> str:
    lay = out.layers
    lines = [
        f"**Decoded {nbytes} bytes with `{out.decoder}`** ({lay.width}×{lay.height}; pixel layer "
        f"{lay.lowres.width}×{lay.lowres.height})."
    ]
    reason = out.metadata.get("decoder_reason")
    if reason:
        lines.append(f"Decoder chosen: {reason}.")
    if out.metadata.get("note"):
        lines.append(f"Note: {out.metadata['note']}.")
    if aigi_panel.decode_note(out.metadata):
        lines.append(aigi_panel.decode_note(out.metadata))
    if out.metadata.get("weights"):
        lines.append(f"⚠️ Weights: **{out.metadata['weights']}** — random weights, not a real model's output.")
    if lay.description is not None:
        lines.append("\n**The file's description**")
        lines += [f"- **{it.name}**: {it.detail}" for it in lay.description.items]
        if lay.description.overall:
            lines.append(f"\n> {lay.description.overall}")
    return "\n".join(lines)
