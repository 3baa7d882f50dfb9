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
import inspect
import logging
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from gradio import processing_utils
from PIL import Image

from codec.describe import FORMAT_HELP
from codec.errors import BitstreamError, BudgetError, CodecError, ImageInputError
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


log = logging.getLogger("misc.demo")
SLIDER_LABEL = "Original ◀ ▶ reconstruction"
UPLOAD_SLIDER_LABEL = "Pixel layer (bicubic) ◀ ▶ reconstruction (an uploaded file comes without its original)"


def _classical_label(codec: str) -> str:
    return f"{codec.upper()} at the same file size"


def uploaded_image(**kwargs: Any) -> gr.Image:
    """A gr.Image (type "filepath") that hands its handlers the uploaded file's path untouched.

    gr.Image opens (and converts) every upload with PIL before any handler runs: a text file
    renamed .png then fails with a generic error on every output, and a 79 KB PNG whose
    header says 9000×9000 costs seconds and gigabytes before the demo's limit is checked.
    Here the demo reads the header itself (session.inspect_upload) before decoding anything.
    (An instance's preprocess, not a subclass: Gradio writes a .pyi stub next to the module
    of every Component subclass.)"""
    image = gr.Image(type="filepath", image_mode=None, **kwargs)
    image.preprocess = types.MethodType(_path_only, image)  # type: ignore[method-assign]
    return image


def _path_only(self: gr.Image, payload: Any) -> str | None:
    if payload is None:
        return None
    if payload.url and payload.url.startswith("data:"):  # a pasted picture
        return processing_utils.save_base64_to_cache(payload.url, self.GRADIO_CACHE)
    if payload.path is None:
        raise ValueError("Image path is None.")
    return str(payload.path)


class Ask(Exception):
    """Something the visitor has to do first (pick an image, write a description): a message, not a fault."""


def _message(exc: BaseException) -> str:
    """One readable line (Markdown) for the message area; unexpected faults are logged in full."""
    if isinstance(exc, Ask):
        return f"ℹ️ {exc}"
    if isinstance(exc, gr.Error):
        title, text = exc.title or "Error", exc.message
    elif isinstance(exc, BudgetError):
        hint = f" Try at least {exc.minimum_bpp:.4f} bpp." if exc.minimum_bpp else ""
        title, text = "Target too low", f"{exc}.{hint}"
    elif isinstance(exc, ImageInputError):  # an upload too large: the page's wording (its Downscale button)
        title, text = "Image not accepted", getattr(exc, "page_message", str(exc))
    elif isinstance(exc, BitstreamError):
        title, text = "Not a readable .misc file", str(exc)
    elif isinstance(exc, CodecError):
        title, text = type(exc).__name__, str(exc)
    elif isinstance(exc, ValueError | OSError):
        title, text = "Bad input", f"{type(exc).__name__}: {exc}"
    else:
        log.exception("demo handler failed")
        title, text = "Something went wrong", f"{type(exc).__name__}: {exc} (the server log has the details)"
    return f"⚠️ **{title}**: {session.md_text(text)}"


def _guarded(message: Any, resets: Callable[[], dict] | None = None) -> Callable:
    """A handler whose failure shows in ``message`` (and as a toast) and leaves every other
    output as it was: no Error badge over the description box and the pictures. ``resets``:
    outputs to reset on failure all the same (a state that must not outlive a failed step).
    Handlers return {component: value}; generators yield it."""

    def failed(exc: BaseException) -> dict:
        text = _message(exc)
        if not isinstance(exc, Ask):
            gr.Warning(text.replace("**", ""))
        return {message: text, **(resets() if resets else {})}

    def deco(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*args: Any, **kwargs: Any) -> Any:
                try:
                    yield from fn(*args, **kwargs)
                except Exception as exc:
                    yield failed(exc)

            return gen

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                return failed(exc)

        return wrapped

    return deco


def _error_boundary(fn: Callable) -> Callable:
    """API endpoints: codec and input errors reach the client as one readable message, never a traceback."""

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


def _picture(path: str | None) -> Image.Image | None:
    """The input picture, or None when there is none or it is not accepted (its handler says why)."""
    if not path:
        return None
    try:
        return session.load_upload(path)
    except ImageInputError:
        return None


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


def _description_lines(d: Any) -> list[str]:
    """A description as Markdown: text escaped (a LoRA tag ``<lora:x:1>`` shows as written)."""
    lines = [f"- **{session.md_text(it.name)}**: {session.md_text(it.detail)}" for it in d.items]
    if d.overall:
        lines.append(f"\n> {session.md_text(d.overall)}")
    return lines


def _encode_report(
    enc: session.Encoded, random_layers: list[str] | None = None, cuts: list[str] | None = None
) -> str:
    r, info = enc.result, enc.info
    lines = [
        f"**{r.nbytes} bytes = {r.bpp:.5f} bpp** (target {r.target_bpp:g} bpp = {enc.target_bytes} bytes; "
        f"{r.width}×{r.height}) · pixel layer {info.get('pixel_layer_size', ['?', '?'])[0]}×"
        f"{info.get('pixel_layer_size', ['?', '?'])[1]} · encoded in {r.seconds:.1f} s",
    ]
    d = enc.description
    if d is not None:
        lines.append("\n**Description in the file**")
        lines += _description_lines(d)
        lines.append(f"\nItem maps in the file: {'yes' if enc.grids else 'none'}")
    if cuts:
        lines.append("\n**Cut to the limits** (every word costs bits):")
        lines += [f"- {session.md_text(c)}" for c in cuts]
    loop = enc.result.loop
    if loop is not None:
        lines.append("\n" + session.realism_line(loop))
    made = info.get("made_by") or {}
    if made:
        lines.append("\nMade by: " + " · ".join(f"{k}: `{session.safe_text(str(v))}`" for k, v in made.items()))
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
        refused_state = gr.State("")  # why the last upload was not taken (Encode repeats it)
        big_state = gr.State(None)  # path of an upload above the limit that can be downscaled
        note_state = gr.State("")  # what the next accepted picture's message says (after a downscale)
        # The item that map clicks paint: the picker's value, kept on the server. Handlers read it
        # here rather than take the picker as an input: an input is the picker's value when the
        # event was triggered, and Gradio refuses (with an Error toast) one that is no longer among
        # the choices when the event runs, as happens to the picture check that decoding an
        # uploaded .misc file triggers together with the new text (so new items).
        chosen = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                image_in = uploaded_image(
                    label="Image",
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
                enc_msg = gr.Markdown(elem_id="demo-message")
                downscale_btn = gr.Button("Downscale", visible=False, size="sm", elem_id="demo-downscale")
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
        dec_msg = gr.Markdown(elem_id="demo-decode-message")
        with gr.Row():
            slider = gr.ImageSlider(label=SLIDER_LABEL, type="pil", format="png", elem_id="demo-slider")
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
                    label=_classical_label(c),
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

        # Everything a decode put on screen: cleared when the file changes, so nothing from
        # an earlier file stays up unmarked next to the new one.
        decode_outputs = [slider, pixel_img, metrics_df, *classical, dec_info, decoded_state]

        def cleared_decode(note: str = "") -> dict:
            return {
                slider: gr.update(value=None, label=SLIDER_LABEL),
                pixel_img: None,
                metrics_df: None,
                **{
                    img: gr.update(value=None, label=_classical_label(c))
                    for img, c in zip(classical, session.CLASSICAL, strict=True)
                },
                dec_info: note,
                decoded_state: None,
            }

        new_file_note = "_A new file was encoded: press **2 · Decode** to see it decoded and compared._"
        aigi_panel.build(image_in, bpp, decoder, realism, {"text": text, "budget": budget, "enc_info": enc_info,
                                                  "misc_file": misc_file, "data_state": data_state,
                                                  "orig_state": orig_state,
                                                  "new_file": (lambda: cleared_decode(new_file_note), decode_outputs)})  # fmt: skip
        with gr.Accordion("Backends: which are active, and how to enable the others", open=False):
            status_md = gr.Markdown(value=backends.status_markdown, elem_id="demo-status")
            refresh_btn = gr.Button("Refresh", size="sm")

        # ---------------------------------------------------------------- handlers
        def redraw(path, txt, pt, selected):
            names = _names(txt)
            sel = selected if selected in names else (names[0] if names else None)
            image = _picture(path)
            picture = gr.skip() if image is None else _overlay(image, names, pt, sel)
            return gr.update(choices=names, value=sel), picture, sel

        @_guarded(enc_msg)
        def on_image(path, txt, pt, selected, note):
            """A new picture: check its header before anything decodes it; refuse it with the reason."""
            if not path:
                return {enc_msg: gr.skip()}  # cleared (or refused just now: its message stays)
            try:
                head = session.inspect_upload(path)
                session.load_upload(path)  # decodes (and caches) what the header announced
            except session.UploadTooLarge as exc:
                return {
                    enc_msg: _message(exc),
                    image_in: None,
                    map_img: None,
                    refused_state: str(exc),
                    big_state: path if exc.can_downscale else None,
                    downscale_btn: gr.update(
                        visible=exc.can_downscale,
                        value="Downscale to {}×{}".format(*session.fit_size(exc.width, exc.height)),
                    ),
                }
            except ImageInputError as exc:
                return {enc_msg: _message(exc), image_in: None, map_img: None, refused_state: str(exc),
                        big_state: None, downscale_btn: gr.update(visible=False)}  # fmt: skip
            _items, picture, _sel = redraw(path, txt, pt, selected)  # the item list is the text's (text.change)
            return {
                map_img: picture,
                enc_msg: note or f"Image {head.width}×{head.height} ({head.format}) ready: press **1 · Encode**.",
                refused_state: "",
                big_state: None,
                note_state: "",
                downscale_btn: gr.update(visible=False),
            }

        @_guarded(enc_msg)
        def do_downscale(path):
            if not path:
                raise Ask("Upload an image first.")
            head = session.read_header(path)
            small = session.downscale_upload(path)
            note = (
                f"Downscaled from {head.width}×{head.height} to {small.width}×{small.height} "
                f"(the demo codes at most {session.DEMO_MAX_PIXELS:,} pixels): press **1 · Encode**."
            )
            return {image_in: small, note_state: note, enc_msg: note, big_state: None,
                    downscale_btn: gr.update(visible=False)}  # fmt: skip

        @_guarded(enc_msg)
        def toggle(path, txt, pt, selected, evt: gr.SelectData):
            names = _names(txt)
            image = _picture(path)
            if image is None or not names:
                raise Ask(
                    "Write a description with at least one 'item: detail' line (or Encode with a "
                    "describer) first; then pick an item and click cells."
                )
            picked = selected
            if selected not in names:
                selected = names[0]
            x, y = evt.index[0], evt.index[1]
            w, h = image.size
            r, c = cell_at(x, y, w, h, *session.MAP_SIZE)
            pt = dict(pt or {})
            grid = np.array(pt.get(selected, session.empty_grid().astype(int).tolist()), bool)
            grid[r, c] = not grid[r, c]
            pt[selected] = grid.astype(int).tolist()
            return {painted: pt, map_img: _overlay(image, names, pt, selected), chosen: selected,
                    item_sel: gr.skip() if selected == picked else gr.update(value=selected)}  # fmt: skip

        def set_all(value: bool):
            def fn(path, txt, pt, selected):
                names = _names(txt)
                pt = dict(pt or {})
                if selected in names:
                    pt[selected] = np.full(session.MAP_SIZE, int(value)).tolist()
                image = _picture(path)
                return pt, gr.skip() if image is None else _overlay(image, names, pt, selected)

            return fn

        @_guarded(enc_msg)
        def do_encode(path, rate, spec, txt, src, dec, pt, made, refused, real=None, progress=gr.Progress()):
            if not path:
                raise Ask(
                    f"The last upload was not taken: {refused}" if refused else "Pick an example or upload an image first."
                )
            image = session.load_upload(path)
            p = _progress(progress)
            desc, text_maker = session.describe(image, spec, txt or "", session.sub(p, 0.0, 0.3), backends)
            cuts = session.cut_report(txt or "", desc, *image.size) if spec == "manual" else []
            names = [it.name for it in desc.items] if desc else []
            made = dict(made or {})
            if spec == "manual" and made.get("text") and made["text"][0] == (txt or ""):
                text_maker = made["text"][1]  # a model's text, not edited since
            if src == "clip" and names:
                if backends.clip is None and not backends.full:
                    raise Ask("CLIP Surgery is not available here (see Backends below); paint the maps instead.")
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
            random_layers = [
                x
                for x, used in (
                    ("describer", text_maker not in ("", session.MANUAL_TEXT)),
                    ("maps", maps_maker != session.PAINTED_MAPS),
                )
                if used and x in backends.random_layers()
            ]
            done = f"Encoded: **{enc.result.nbytes} bytes**."
            if cuts:
                done += (
                    " Your description was **cut to the limits** (every word costs bits; details under "
                    "the bit budget): " + "; ".join(session.md_text(c) for c in cuts) + "."
                )
            return {
                made_state: made,
                text: gr.update(value=new_txt),
                describer: gr.update(value="manual" if enc.description else spec),  # next Encode reads the edited text
                maps_src: gr.update(value="painted"),  # ... and the (edited) cells
                item_sel: gr.update(choices=names, value=sel),
                chosen: sel,
                map_img: _overlay(image, names, new_pt, sel),
                painted: new_pt,
                budget: budget_bar(enc.info, enc.target_bytes),
                enc_info: _encode_report(enc, random_layers, cuts),
                misc_file: _file_for(enc.result.data, f"image-{enc.result.nbytes}B"),
                data_state: enc.result.data,
                orig_state: image,
                enc_msg: done,
                **cleared_decode(new_file_note),
            }

        @_guarded(dec_msg, resets=lambda: {decoded_state: None})
        def do_decode(data, original, dec, progress=gr.Progress()):
            if data is None:
                raise Ask("Encode an image first (or upload a .misc file below).")
            out = aigi_panel.decode(data, dec, backends, _progress(progress))
            before = original if original is not None else out.upsampled
            label = SLIDER_LABEL + (" (RANDOM WEIGHTS)" if out.metadata.get("weights") else "")
            return {
                **cleared_decode(),
                slider: gr.update(value=(before, out.image), label=label),
                pixel_img: out.upsampled,
                dec_info: _decode_report(out, len(data)),
                decoded_state: out,
                dec_msg: "Decoded; comparing with classical codecs at the same file size (rows appear as they finish)…"
                if original is not None
                else "",
            }

        @_guarded(dec_msg)
        def do_compare(decoded, data, original, progress=gr.Progress()):
            """Second step of Decode: classical codecs at the same size and the metrics, one row at a time."""
            if decoded is None or data is None or original is None:
                yield {dec_msg: gr.skip()}
                return
            shown: set[str] = set()
            for cmp in session.compare_steps(original, decoded, len(data), backends, _progress(progress)):
                heads, rows = session.table(cmp)
                update: dict = {metrics_df: pd.DataFrame(rows, columns=heads)}
                for pic, cap in cmp.images:
                    codec = cap.split(":")[0]
                    if codec not in shown:
                        shown.add(codec)
                        update[classical[session.CLASSICAL.index(codec.lower())]] = gr.update(value=pic, label=cap)
                for row in cmp.rows:
                    if row.get("bytes") is None and row["method"] not in shown:
                        shown.add(row["method"])
                        idx = session.CLASSICAL.index(row["method"].lower())
                        update[classical[idx]] = gr.update(value=None, label=f"{row['method']}: {row['note']}")
                yield update
            yield {dec_msg: ""}

        @_guarded(dec_msg, resets=lambda: {decoded_state: None})
        def do_decode_upload(blob, dec, progress=gr.Progress()):
            if not blob:
                raise Ask("Choose a .misc file first.")
            data = bytes(blob)
            p = _progress(progress)
            out = aigi_panel.decode(data, dec, backends, p)
            lay = out.layers
            names = [it.name for it in lay.description.items] if lay.description else []
            grids = lay.maps or [None] * len(names)
            info = session.pipeline.info(data)
            return {
                **cleared_decode(),
                slider: gr.update(value=(out.upsampled, out.image), label=UPLOAD_SLIDER_LABEL),
                pixel_img: out.upsampled,
                metrics_df: pd.DataFrame(
                    [["no original: metrics need the image the file was made from"]], columns=["note"]
                ),
                dec_info: _decode_report(out, len(data)),
                decoded_state: out,
                map_img: overlay_maps(out.image, [session.safe_text(n) for n in names], grids, None, session.MAP_SIZE),
                budget: budget_bar(info),
                enc_info: f"**Uploaded file: {len(data)} bytes = {info['bpp']:.5f} bpp** ({lay.width}×{lay.height}); "
                "its maps are drawn over the reconstruction.",
                misc_file: None,
                data_state: data,
                orig_state: None,
                image_in: None,
                text: session.safe_text(session.description_text(lay.description)),  # what this file says
                enc_msg: "",
                dec_msg: "",
            }

        hide = {"api_visibility": "undocumented"}
        # The events that read or change the item list and the painted cells run one at a time,
        # in the order they were triggered: a map click toggles its cell in the cells as the
        # clicks before it left them (so quick clicks compose, none is lost), and the picture
        # check of a new image, started before the text was typed, cannot overwrite the item
        # list the text made. Each is quick (an overlay drawn on the picture), so none shows a
        # progress overlay: one over the map picture would take the clicks meant for the picture.
        maps_queue = {"concurrency_id": "demo-maps", "concurrency_limit": 1, "show_progress": "hidden"}
        image_in.change(
            on_image,
            [image_in, text, painted, chosen, note_state],
            [enc_msg, image_in, map_img, refused_state, big_state, note_state, downscale_btn],
            api_name="check_image",
            **maps_queue,
            **hide,
        )
        downscale_btn.click(
            do_downscale, [big_state], [image_in, note_state, enc_msg, big_state, downscale_btn], **hide
        )
        text.change(
            redraw,
            [image_in, text, painted, chosen],
            [item_sel, map_img, chosen],
            trigger_mode="always_last",
            **maps_queue,
            **hide,
        )
        def reselect(path, txt, pt, selected):
            image = _picture(path)
            return selected, gr.skip() if image is None else _overlay(image, _names(txt), pt, selected)

        # The one event with the picker as an input: its value has just changed, to one of the choices.
        item_sel.change(reselect, [image_in, text, painted, item_sel], [chosen, map_img], **maps_queue, **hide)
        # "multiple": a click while the previous one is still being drawn is queued, not dropped
        # (Gradio's default for .select, "once", ignores it).
        map_img.select(toggle, [image_in, text, painted, chosen], [painted, map_img, chosen, item_sel, enc_msg],
                       trigger_mode="multiple", **maps_queue, **hide)  # fmt: skip
        clear_btn.click(set_all(False), [image_in, text, painted, chosen], [painted, map_img], **maps_queue, **hide)
        fill_btn.click(set_all(True), [image_in, text, painted, chosen], [painted, map_img], **maps_queue, **hide)
        encode_btn.click(
            do_encode,
            [image_in, bpp, describer, text, maps_src, decoder, painted, made_state, refused_state, realism],
            [
                made_state,
                text,
                describer,
                maps_src,
                item_sel,
                chosen,
                map_img,
                painted,
                budget,
                enc_info,
                misc_file,
                data_state,
                orig_state,
                enc_msg,
                *decode_outputs,
            ],
            **hide,
        )
        decode_btn.click(
            do_decode, [data_state, orig_state, decoder], [*decode_outputs, dec_msg], **hide
        ).success(
            do_compare,
            [decoded_state, data_state, orig_state],
            [metrics_df, *classical, dec_msg],
            show_progress="minimal",
            **hide,
        )
        upload_btn.click(
            do_decode_upload,
            [upload, decoder],
            [*decode_outputs, map_img, budget, enc_info, misc_file, data_state, orig_state, image_in, text, enc_msg,
             dec_msg],  # fmt: skip
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
        lines += _description_lines(lay.description)
    return "\n".join(lines)
