"""The demo's steps as plain functions (no Gradio): describe, encode, decode, compare.

Each step calls the codec, bench or metrics exactly as the CLI and the benchmark do; the
demo only arranges their results on screen. ``Progress`` is ``(fraction, message)``.

    image ─describe─▶ Description ─(edit text, paint cells)─▶ encode ─▶ .misc bytes
    .misc bytes ─decode─▶ reconstruction ─┐
    image ─classical codecs at len(bytes)─┴─▶ metrics vs the image ─▶ table
"""

from __future__ import annotations

import functools
import html
import io
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.classical import encode_at_budget
from codec import pipeline
from codec.describe import DescribeConfig, get_describer, header_name, parse_description
from codec.errors import ImageInputError
from codec.imageio import MIN_SIDE, to_rgb8
from codec.realism import DEFAULT_REALISM  # noqa: F401 - the demo slider's default
from codec.realism.loop import LoopChoice
from codec.records import Description
from demo.backends import Backends, import_stacks

Progress = Callable[[float, str], None]
MAP_SIZE = (8, 8)  # MISC's grid
CLASSICAL = ("webp", "jpeg", "avif")
FR_METRICS = ("psnr", "lpips_alex", "dists")
DEMO_MAX_PIXELS = 1024 * 1024  # what a shared CPU Space can decode in reasonable time
# Above the demo's limit an upload may be downscaled, if decoding it costs at most this many
# pixels (a JPEG is decoded at 1/8 scale by its DCT, so even a 48 Mpx photo qualifies).
DOWNSCALE_MAX_PIXELS = 40_000_000


def _quiet(_f: float, _m: str) -> None:
    return None


def sub(progress: Progress, start: float, end: float) -> Progress:
    """A progress callback that maps a step's 0..1 into [start, end] of the whole run."""
    return lambda f, m: progress(start + (end - start) * min(max(f, 0.0), 1.0), m)


# ----------------------------------------------------------------------------- uploads


Source = str | os.PathLike | bytes


class UploadTooLarge(ImageInputError):
    """An upload above the demo's pixel limit; ``can_downscale``: decoding it to shrink it is affordable.

    Two wordings of what to do: the message (``str``) is for every caller, the API's
    included (pass a smaller image); ``page_message`` is the Demo tab's, which offers its
    Downscale button."""

    def __init__(self, message: str, width: int, height: int, can_downscale: bool, page_message: str | None = None):
        super().__init__(message)
        self.width, self.height, self.can_downscale = width, height, can_downscale
        self.page_message = page_message or message


@dataclass(frozen=True)
class UploadHeader:
    """What an uploaded file's header says, read before a single pixel is decoded."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decode_cost(self) -> int:
        """Pixels a decode to downscale must produce (JPEG's draft mode decodes at 1/8)."""
        if self.format in ("JPEG", "MPO"):
            return -(-self.width // 8) * -(-self.height // 8)
        return self.pixels


def fit_size(width: int, height: int, max_pixels: int = DEMO_MAX_PIXELS) -> tuple[int, int]:
    """The largest size with the same aspect ratio within ``max_pixels``."""
    if width * height <= max_pixels:
        return width, height
    scale = (max_pixels / (width * height)) ** 0.5
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    while w * h > max_pixels:  # float rounding
        w, h = (w - 1, h) if w >= h else (w, h - 1)
    return w, h


def _limit_words(max_pixels: int) -> str:
    side = int(max_pixels**0.5)
    return f"{max_pixels:,} pixels (e.g. {side}×{side})"


def read_header(path: Source, max_pixels: int = DEMO_MAX_PIXELS) -> UploadHeader:
    """Format and size from the header alone (PIL opens lazily; nothing is decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(_fp(path)) as im:
                return UploadHeader(im.format or "?", im.width, im.height)
    except Image.DecompressionBombError as e:  # PIL refuses the header itself above ~179 Mpx
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found.group(1)):,} pixels" if found else "far too many pixels"
        found_too_many = f"The image has {size}; the demo codes at most {_limit_words(max_pixels)}."
        raise UploadTooLarge(
            f"{found_too_many} Pass a copy downscaled to at most {max_pixels:,} pixels.",
            0,
            0,
            False,
            page_message=f"{found_too_many} It is too large to downscale here: downscale it before uploading.",
        ) from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(
            "This file is not an image the demo can read (it is neither PNG, JPEG, WebP nor another "
            "format Pillow opens). Upload a photograph or pick an example."
        ) from e


def inspect_upload(path: Source, max_pixels: int = DEMO_MAX_PIXELS) -> UploadHeader:
    """Check an upload from its header alone: an image, of a size the demo codes. Raises
    ImageInputError (not an image, too small) or UploadTooLarge, whose message says the
    limit in pixels and whether the demo can downscale the picture."""
    head = read_header(path, max_pixels)
    if head.width < MIN_SIDE or head.height < MIN_SIDE:
        raise ImageInputError(
            f"The image is {head.width}×{head.height}: each side must be at least {MIN_SIDE} pixels."
        )
    if head.pixels > max_pixels:
        w, h = fit_size(head.width, head.height, max_pixels)
        affordable = head.decode_cost <= DOWNSCALE_MAX_PIXELS
        found = (
            f"The image is {head.width}×{head.height} = {head.pixels:,} pixels; the demo codes at most "
            f"{_limit_words(max_pixels)}."
        )
        smaller = f"a copy downscaled to at most {w}×{h} (the same aspect ratio)"
        if affordable:
            on_page = f"Press **Downscale to {w}×{h}** to code a smaller copy."
            anywhere = f"Pass {smaller} instead."
        else:
            on_page = "It is too large to downscale here: downscale it before uploading."
            anywhere = f"It is too large for the demo to downscale: pass {smaller} instead."
        raise UploadTooLarge(
            f"{found} {anywhere}",
            head.width,
            head.height,
            affordable,
            page_message=f"{found} {on_page}",
        )
    return head


def _fp(source: Source) -> Any:
    """What Image.open reads: the path, or the bytes afresh each time."""
    return io.BytesIO(source) if isinstance(source, bytes | bytearray) else source


def _load(source: Source, max_pixels: int) -> Image.Image:
    inspect_upload(source, max_pixels)
    try:
        with Image.open(_fp(source)) as im:
            im.load()
            rgb, _gray = to_rgb8(im)
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(f"The image is truncated or corrupt: {e}") from e
    return rgb


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, _mtime_ns: int, _size: int, max_pixels: int) -> Image.Image:
    return _load(path, max_pixels)


def load_upload(source: Source, max_pixels: int = DEMO_MAX_PIXELS) -> Image.Image:
    """An upload (a path or its bytes) as 8-bit RGB, its header checked first
    (``inspect_upload``); the last few paths are kept, as map clicks re-read the same picture."""
    if isinstance(source, bytes | bytearray):
        return _load(source, max_pixels)
    st = os.stat(source)
    return _load_cached(str(source), st.st_mtime_ns, st.st_size, max_pixels)


def downscale_upload(path: str | os.PathLike, max_pixels: int = DEMO_MAX_PIXELS) -> Image.Image:
    """An upload above the limit, shrunk to fit it (aspect kept), if decoding it is affordable."""
    head = read_header(path, max_pixels)
    if head.decode_cost > DOWNSCALE_MAX_PIXELS:
        inspect_upload(path, max_pixels)  # raises the message that says so
    size = fit_size(head.width, head.height, max_pixels)
    try:
        with warnings.catch_warnings(), Image.open(path) as im:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.draft("RGB", size)  # JPEG: decode at a reduced scale; other formats ignore it
            im.load()
            rgb, _gray = to_rgb8(im)
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(f"The image is truncated or corrupt: {e}") from e
    return rgb.resize(size, Image.Resampling.LANCZOS) if rgb.size != size else rgb


# ----------------------------------------------------------------------------- safe text


def safe_text(text: str) -> str:
    """Text that JSON and the browser accept: a lone surrogate (a file's TEXT layer may hold
    one) becomes U+FFFD; a valid surrogate pair becomes its character."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def md_text(text: str) -> str:
    """A file's text for Markdown: safe, with ``&``, ``<`` and ``>`` escaped, so a LoRA tag such
    as ``<lora:x:1>`` shows as written instead of vanishing as an HTML tag."""
    return html.escape(safe_text(text), quote=False)


def json_safe(value: Any) -> Any:
    """``value`` with every string (keys included) passed through ``safe_text``."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


# ----------------------------------------------------------------------------- text


def realism_line(loop: LoopChoice) -> str:
    """The encode report's line on the decoder-in-the-loop choice (the Encode tab and the AIGI
    panel alike): the fidelity ↔ realism setting, the detail level kept, the decodes it cost."""
    seed = "" if loop.seed is None else f"; seed {loop.seed}"
    return (f"Fidelity ↔ realism: **R = {loop.realism:g}**, detail level {loop.alpha:g}{seed} "
            f"(the encoder ran the decoder {loop.decodes} time(s) on candidates).")


def description_text(d: Description | None) -> str:
    """A description in the manual describer's line format (the editable text box)."""
    if d is None:
        return ""
    lines = [f"{it.name}: {it.detail}".rstrip(": ").rstrip() if it.detail else it.name for it in d.items]
    return "\n".join(lines) + ("\n\n" if lines else "") + d.overall


def read_text(text: str) -> Description | None:
    """The text box → a Description (the manual describer's parser and limits), or None."""
    if not text or not text.strip():
        return None
    d = parse_description(text, DescribeConfig())
    return None if d.is_empty() else d


# The same reader with no limits: what the person wrote, to say what the limits cut.
_UNLIMITED = DescribeConfig(max_items=10_000, name_words=10_000, detail_words=10_000, overall_max_words=10**6)


def _words(text: str) -> int:
    return len(text.split())


def cut_report(text: str, kept: Description | None, width: int, height: int) -> list[str]:
    """What the description limits (``DescribeConfig``) cut from the text a person typed, and
    what the cut text would have cost in the file: one line per cut, [] when nothing was."""
    if not text or not text.strip() or kept is None:
        return []
    config = DescribeConfig()
    full = parse_description(text, _UNLIMITED)
    lines: list[str] = []
    names = [it.name.casefold() for it in kept.items]
    dropped = [it.name for it in full.items if " ".join(it.name.split()[: config.name_words]).casefold() not in names]
    if len(full.items) > config.max_items and dropped:
        lines.append(
            f"items after the first {config.max_items} dropped: " + ", ".join(f"'{n}'" for n in dropped)
        )
    by_name = {" ".join(it.name.split()[: config.name_words]).casefold(): it for it in full.items}
    for it in kept.items:
        src = by_name.get(it.name.casefold())
        if src is None:
            continue
        if _words(src.name) > config.name_words:
            lines.append(f"name '{src.name}' cut to {config.name_words} words: '{it.name}'")
        if _words(src.detail) > _words(it.detail):
            lines.append(
                f"detail of '{it.name}' cut from {_words(src.detail)} to {_words(it.detail)} words "
                f"(at most {config.detail_words})"
            )
    if _words(full.overall) > _words(kept.overall):
        lines.append(
            f"paragraph cut from {_words(full.overall)} to {_words(kept.overall)} words "
            f"(at most {config.overall_cap})"
        )
    if lines:
        from codec import textcoder

        try:
            extra = len(textcoder.compress(full)) - len(textcoder.compress(kept))
        except Exception:  # the cost is a courtesy: a text the coder refuses is reported elsewhere
            extra = None
        if extra and extra > 0:
            lines.append(
                f"the uncut text would have cost {extra} more bytes = {8 * extra} bits "
                f"(+{8 * extra / (width * height):.5f} bpp at {width}×{height})"
            )
    return lines


MANUAL_TEXT, PAINTED_MAPS = "describe/manual", "maps/painted"  # header names of a person's layers


def describe(
    image: Image.Image, spec: str, text: str, progress: Progress = _quiet, backends: Backends | None = None
) -> tuple[Description | None, str]:
    """Run the chosen describer: (description, header name of its maker).

    "manual" reads the text box, "none" gives no description; a model ("hf", "openai") is
    the one ``backends`` keeps loaded (downloaded on first use under the full profile)."""
    if spec == "none":
        return None, ""
    if spec == "manual":
        return (
            (get_describer("manual", text=text).describe(image), MANUAL_TEXT) if text.strip() else (None, "")
        )
    progress(0.0, f"describing the image with {spec}")
    if backends is not None:
        return backends.describe(image, spec, progress)
    d = get_describer(spec)
    return d.describe(image), header_name(d) or ""


# ----------------------------------------------------------------------------- maps


def empty_grid() -> np.ndarray:
    return np.zeros(MAP_SIZE, bool)


def grids_for(names: Sequence[str], painted: dict[str, list[list[int]]]) -> list[np.ndarray]:
    """One grid per item, from the cells painted under each item's name (empty if none)."""
    return [np.asarray(painted[n], bool) if n in painted else empty_grid() for n in names]


def grids_to_json(names: Sequence[str], grids: Sequence[np.ndarray]) -> dict[str, list[list[int]]]:
    return {n: np.asarray(g, bool).astype(int).tolist() for n, g in zip(names, grids, strict=True)}


def parse_maps_json(text: str | None, names: Sequence[str]) -> list[np.ndarray] | None:
    """API maps argument: JSON {item name: 8×8 0/1 rows} or [[rows] per item]; '' → None."""
    if not text or not text.strip():
        return None
    raw = json.loads(text)
    if isinstance(raw, dict):
        grids = [np.asarray(raw.get(n, empty_grid()), bool) for n in names]
    else:
        grids = [np.asarray(g, bool) for g in raw]
    if len(grids) != len(names):
        raise ValueError(f"{len(grids)} maps for {len(names)} described items")
    for g in grids:
        if g.ndim != 2 or g.size == 0:
            raise ValueError("each map must be a 2-D grid of 0/1 (rows of cells)")
    return grids


# ----------------------------------------------------------------------------- encode


@dataclass
class Encoded:
    result: pipeline.EncodeResult
    info: dict[str, Any]
    target_bytes: int
    description: Description | None
    grids: list[np.ndarray] | None


def encode(
    image: Image.Image,
    bpp: float,
    description: Description | None,
    grids: Sequence[np.ndarray] | None,
    decoder_hint: str,
    progress: Progress = _quiet,
    made_by: dict[str, str] | None = None,
    realism: float | None = None,
    recipe: Any = None,
) -> Encoded:
    """codec.pipeline.encode with the demo's pixel limit; grids all empty → no map layer.
    ``made_by``: who made the text and the maps, for the file's header. ``realism``: the
    fidelity ↔ realism knob (codec.realism; None: off), scored with metrics' DISTS.
    ``recipe``: an AI-generated image's recipe (prompt-aware coding, codec.aigi)."""
    if grids is not None and not any(np.any(g) for g in grids):
        grids = None
    hint = decoder_hint if decoder_hint in ("restore", "bicubic", "diffusion") else "restore"
    options = _realism_options(realism, hint)
    result = pipeline.encode(
        image,
        float(bpp),
        description=description,
        maps=grids,
        decoder_hint=hint,
        max_pixels=DEMO_MAX_PIXELS,
        progress=progress,
        made_by=made_by,
        recipe=recipe,
        **options,
    )
    if realism is not None and not options:
        result.notes.append(
            f"realism {float(realism):g} not applied: with the diffusion decoder and no GPU each candidate "
            "would be a diffusion run (minutes), so the encoder kept rate control's pixel layer"
        )
    return Encoded(
        result,
        pipeline.info(result.data),
        pipeline.budget_bytes(result.width, result.height, bpp),
        result.description,
        result.maps,
    )


def _realism_options(realism: float | None, hint: str = "restore") -> dict[str, Any]:
    """The encoder's decoder-in-the-loop options for the demo's slider (docs/REALISM.md);
    none for diffusion without CUDA (each candidate would be a diffusion run on the CPU)."""
    if realism is None or (hint == "diffusion" and not _cuda()):
        return {}
    options: dict[str, Any] = {"realism": float(realism)}
    if realism > 0:
        from metrics.api import compute

        options["perceptual"] = lambda ref, img: float(compute(ref, img, ["dists"])["dists"])
    return options


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ----------------------------------------------------------------------------- decode


@dataclass
class Decoded:
    image: Image.Image
    upsampled: Image.Image  # the pixel layer alone, bicubic to full size
    decoder: str
    metadata: dict[str, Any]
    layers: Any  # codec.records.DecodedLayers


def decode(data: bytes, decoder_name: str, backends: Backends, progress: Progress = _quiet) -> Decoded:
    progress(0.0, "reading the file")
    layers = pipeline.read_layers(data)
    progress(0.05, f"loading the {decoder_name} decoder")
    decoder = backends.decoder(decoder_name, sub(progress, 0.05, 0.1))
    out = backends.run_decode(decoder_name, layers, sub(progress, 0.1, 1.0))
    size = (layers.width, layers.height)
    up = layers.lowres.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    meta = dict(out.metadata)
    meta.setdefault("decoder_reason", getattr(decoder, "reason", ""))
    return Decoded(out.image.convert("RGB"), up, out.decoder, meta, layers)


# ----------------------------------------------------------------------------- compare


@dataclass
class Comparison:
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per method
    images: list[tuple[Image.Image, str]] = field(default_factory=list)  # classical decodes, captions
    metric_names: list[str] = field(default_factory=list)


def compare_steps(
    original: Image.Image,
    decoded: Decoded,
    nbytes: int,
    backends: Backends,
    progress: Progress = _quiet,
) -> Iterator[Comparison]:
    """MISC, its pixel layer alone, and classical codecs at the same file size, scored with
    the same metrics (metrics.compute_batch) against the original. Yields the comparison so
    far after each step: MISC's two rows first, then one row per classical codec as it
    finishes, so a page can show each row as soon as it exists."""
    import_stacks()  # metrics import torch's stacks: not while another thread does (see there)
    import metrics

    original = original.convert("RGB")
    w, h = original.size
    names = list(FR_METRICS) + [
        n for n in backends.semantic_metrics() if n != "clip_t" or decoded.layers.description is not None
    ]
    text = None
    if "clip_t" in names:
        d = decoded.layers.description
        text = d.overall or ", ".join(i.name for i in d.items)
    cmp = Comparison(metric_names=names)
    shown = ", ".join(metrics.METRICS[n].display_name for n in names)

    def scored(label: str, image: Image.Image, n: int, note: str) -> dict[str, Any]:
        s = metrics.compute_batch([original], [image], names, texts=None if text is None else [text], progress=False)
        return {"method": label, "bytes": n, "bpp": 8 * n / (w * h), "note": note, **s[0]}

    steps = 1 + len(CLASSICAL)
    progress(0.0, f"MISC: {shown}")
    weights = "RANDOM WEIGHTS: not a real model's output" if decoded.metadata.get("weights") else ""
    cmp.rows.append(scored(f"MISC ({decoded.decoder})", decoded.image, nbytes, weights))
    cmp.rows.append(scored("MISC pixel layer, bicubic", decoded.upsampled, nbytes, "same file, no model"))
    yield cmp
    for i, codec in enumerate(CLASSICAL, start=1):
        progress(i / steps, f"{codec.upper()} at {nbytes} bytes")
        try:
            r = encode_at_budget(original, nbytes, codec)
        except Exception as exc:  # a codec missing here: say so in the table
            cmp.rows.append({"method": codec.upper(), "bytes": None, "note": f"unavailable: {exc}"})
        else:
            if r is None:
                cmp.rows.append({"method": codec.upper(), "bytes": None, "note": f"no file fits in {nbytes} bytes"})
            else:
                note = f"{r.coded_size[0]}×{r.coded_size[1]} q{r.quality}, bicubic up"
                cmp.rows.append(scored(codec.upper(), r.image, r.nbytes, note))
                cmp.images.append((r.image, f"{codec.upper()}: {r.nbytes} B ({note})"))
        yield cmp
    progress(1.0, "done")


def compare(
    original: Image.Image,
    decoded: Decoded,
    nbytes: int,
    backends: Backends,
    progress: Progress = _quiet,
) -> Comparison:
    """The whole comparison at once (the last of ``compare_steps``)."""
    cmp = Comparison()
    for cmp in compare_steps(original, decoded, nbytes, backends, progress):  # noqa: B007
        pass
    return cmp


def table(cmp: Comparison) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows for a Dataframe: numbers rounded, direction shown in the header."""
    import metrics

    heads = ["method", "bytes", "bpp"]
    for n in cmp.metric_names:
        m = metrics.METRICS[n]
        heads.append(f"{m.display_name} {'↑' if m.higher_is_better else '↓'}")
    heads.append("note")
    rows = []
    for r in cmp.rows:
        row = [r["method"], r.get("bytes") or "—", f"{r['bpp']:.4f}" if r.get("bpp") else "—"]
        for n in cmp.metric_names:
            v = r.get(n)
            row.append("—" if v is None else (f"{v:.2f}" if n in ("psnr", "clip_t") else f"{v:.4f}"))
        row.append(r.get("note", ""))
        rows.append(row)
    return heads, rows
