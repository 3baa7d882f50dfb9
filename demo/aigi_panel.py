"""The Demo tab's panel for AI-generated images: show the recipe, encode prompt-aware, regenerate.

    [AIGI file (PNG/JPEG/WebP)] ─read_recipe─▶ recipe table, or "not an AIGI / no recipe" + why
        ─Encode with the recipe─▶ the prompt becomes the description, the settings a RECIPE
          section; the bit budget shows the recipe's bytes; the file goes to the tab's Decode
    Decode (the tab's button) ─▶ ``decode``: a file with a recipe is first regenerated when
        MISC_REGEN_MODELS maps its model to weights here; the report says which path was taken

ui.py calls ``build`` once inside the tab, and uses ``decode`` / ``decode_note`` in its
decode handlers; everything AIGI-specific lives here.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from codec import pipeline
from codec.aigi import read_recipe
from codec.aigi.recipe import ReadResult
from codec.errors import CodecError, ImageInputError
from demo import session
from demo.figures import budget_bar

MAX_UPLOAD_BYTES = 32 * 1024 * 1024


def recipe_markdown(found: ReadResult) -> str:
    """What the file's metadata says, for people: the recipe, the AI markers, what was refused."""
    lines = [f"**{found.summary()}**"]
    r = found.recipe
    if r is not None:
        rows = [("prompt", r.prompt), ("negative prompt", r.negative_prompt), ("model", r.model),
                ("model hash", r.model_hash), ("seed", r.seed), ("steps", r.steps), ("sampler", r.sampler),
                ("scheduler", r.scheduler), ("CFG scale", r.cfg_scale),
                ("size", f"{r.width}×{r.height}" if r.size else None)]  # fmt: skip
        lines += ["", "| setting | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in rows if v not in (None, "")]
        lines.append("")
        lines.append(regen_status(r))
    if found.evidence and r is None:
        lines += ["", "Evidence: " + "; ".join(found.evidence)]
    if found.problems:
        lines += ["", "Metadata refused (the rest was read):"] + [f"- {p}" for p in found.problems]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """A table cell: pipes escaped, line breaks (A1111 BREAK lines) as spaces, long text cut."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 600 else text[:600] + " …"


def regen_status(recipe: Any) -> str:
    from codec.decode.regen import ENV, ModelMap, _weights_here

    try:
        models = ModelMap.from_env()
        target = models.resolve(recipe.model, recipe.model_hash)
    except CodecError as e:
        return f"Regeneration: unavailable ({e})."
    if not recipe.is_complete():
        return "Regeneration: the recipe is incomplete (it needs prompt, seed, steps, CFG, size and a model)."
    if target is None:
        return f"Regeneration: no weights are mapped to this model here (set `{ENV}`); decoding falls back."
    if not models.is_explicit(target) and not _weights_here(target):
        return f"Regeneration: the model is `{target}`, whose weights are not on this machine (set `{ENV}`); decoding falls back."
    return f"Regeneration: the model maps to `{target}`; decoding tries it first and checks it against the pixel layer."


def decode_note(metadata: dict[str, Any]) -> str:
    """One line for the decode report: regenerated or fell back, and why."""
    regen = metadata.get("regeneration")
    if not regen:
        return ""
    random = f" **{regen['random_weights'].capitalize()}.**" if regen.get("random_weights") else ""
    if regen.get("path") == "regenerated":
        return (f"**Regenerated** from the recipe with `{regen.get('weights')}` ({regen.get('scheduler')}, "
                f"{regen.get('steps')} steps): {regen.get('got_db')} dB from the pixel layer (the source: "
                f"{regen.get('check_db')} dB).{random}")  # fmt: skip
    return f"**Regeneration not used**, decoded by `{regen.get('decoder')}`: {regen.get('reason')}.{random}"


def decode(data: bytes, decoder_name: str, backends: Any, progress: session.Progress) -> session.Decoded:
    """session.decode, except that a file with a recipe is regenerated first (when it can be)."""
    layers = pipeline.read_layers(data)
    if layers.recipe is None:
        return session.decode(data, decoder_name, backends, progress)
    from codec.decode.regen import RegenerationDecoder

    progress(0.05, "regenerating from the recipe (or falling back)")
    out = RegenerationDecoder(fallback=lambda: backends.decoder(decoder_name)).decode(
        layers, progress=session.sub(progress, 0.1, 1.0)
    )
    up = layers.lowres.convert("RGB").resize((layers.width, layers.height), Image.Resampling.BICUBIC)
    return session.Decoded(out.image.convert("RGB"), up, out.decoder, dict(out.metadata), layers)


def build(image_in: Any, bpp: Any, decoder: Any, realism: Any, outputs: dict[str, Any]) -> None:
    """The panel; the tab's image, rate, decoder and realism inputs; ``outputs``: the tab's text,
    budget, enc_info, misc_file, data_state, orig_state, and new_file: (function, outputs) that
    clears the decode of an earlier file."""
    with gr.Accordion("AI-generated image: read its recipe, code it prompt-aware", open=False,
                      elem_id="demo-aigi"):  # fmt: skip
        gr.Markdown(
            "Upload a picture from Stable Diffusion (AUTOMATIC1111, Forge, ComfyUI, InvokeAI, NovelAI) with its "
            "generation metadata (PNG text, EXIF, XMP). Its prompt becomes the file's description and its "
            "settings a RECIPE section of a few dozen bytes; a decoder that has the generator regenerates it."
        )
        file_in = gr.File(label="AI-generated image (PNG, JPEG or WebP, as the generator saved it)",
                          file_types=[".png", ".jpg", ".jpeg", ".webp"], type="binary", elem_id="demo-aigi-file")  # fmt: skip
        recipe_md = gr.Markdown(elem_id="demo-aigi-recipe")
        encode_btn = gr.Button("Encode with the recipe (prompt-aware)", elem_id="demo-aigi-encode")
        recipe_state = gr.State(None)

        def show(blob):
            if not blob:
                return "", None, gr.skip()
            data = bytes(blob)
            if len(data) > MAX_UPLOAD_BYTES:
                raise gr.Error(f"The file is {len(data)} bytes; the demo reads at most {MAX_UPLOAD_BYTES}.")
            try:
                found = read_recipe(data)
                image = session.load_upload(data)
            except (CodecError, ImageInputError) as e:
                raise gr.Error(str(e)) from e
            return recipe_markdown(found), found.recipe, image

        def encode(image, rate, dec, real, recipe, progress=gr.Progress()):
            if image is None or recipe is None:
                raise gr.Error("Upload an AI-generated image with a recipe first.")
            try:
                image = session.load_upload(image)  # the tab's picture box hands over a path
                # the tab's decoder and fidelity ↔ realism slider apply here too
                enc = session.encode(image, float(rate), None, None, dec, lambda f, m: progress(f, desc=m),
                                     realism=None if real is None else float(real), recipe=recipe)  # fmt: skip
            except CodecError as e:
                raise gr.Error(str(e)) from e
            result, info = enc.result, enc.info
            rb = info["sections"].get("recipe", {}).get("bytes", 0)
            tb = info["sections"].get("text", {}).get("bytes", 0)
            report = (f"**{result.nbytes} bytes = {result.bpp:.5f} bpp**, of which the prompt {tb} B and the recipe "
                      f"{rb} B. " + " ".join(result.notes))  # fmt: skip
            if result.loop is not None:
                report += " " + session.realism_line(result.loop)
            path = session_file(result.data)
            text = session.description_text(result.description) if result.description else ""
            return (text, budget_bar(info, pipeline.budget_bytes(result.width, result.height, float(rate))), report,
                    path, result.data, image.convert("RGB"))  # fmt: skip

        hide = {"api_visibility": "undocumented"}
        # explicit api names: a handler's default name ("encode") would take the tab's API endpoint's
        file_in.change(show, [file_in], [recipe_md, recipe_state, image_in], api_name="aigi_recipe", **hide)
        encode_btn.click(
            encode, [image_in, bpp, decoder, realism, recipe_state],
            [outputs["text"], outputs["budget"], outputs["enc_info"], outputs["misc_file"], outputs["data_state"],
             outputs["orig_state"]], api_name="aigi_encode", **hide,
        ).success(outputs["new_file"][0], None, outputs["new_file"][1], **hide)  # fmt: skip


def session_file(data: bytes) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="aigi-", suffix=".misc", delete=False) as f:
        f.write(data)
        return f.name
