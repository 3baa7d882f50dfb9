"""The demo's steps as plain functions (no Gradio): describe, encode, decode, compare.

Each step calls the codec, bench or metrics exactly as the CLI and the benchmark do; the
demo only arranges their results on screen. ``Progress`` is ``(fraction, message)``.

    image ─describe─▶ Description ─(edit text, paint cells)─▶ encode ─▶ .misc bytes
    .misc bytes ─decode─▶ reconstruction ─┐
    image ─classical codecs at len(bytes)─┴─▶ metrics vs the image ─▶ table
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from bench.classical import encode_at_budget
from codec import pipeline
from codec.describe import DescribeConfig, get_describer, header_name, parse_description
from codec.realism import DEFAULT_REALISM  # noqa: F401 - the demo slider's default
from codec.records import Description
from demo.backends import Backends

Progress = Callable[[float, str], None]
MAP_SIZE = (8, 8)  # MISC's grid
CLASSICAL = ("webp", "jpeg", "avif")
FR_METRICS = ("psnr", "lpips_alex", "dists")
DEMO_MAX_PIXELS = 1024 * 1024  # what a shared CPU Space can decode in reasonable time


def _quiet(_f: float, _m: str) -> None:
    return None


def sub(progress: Progress, start: float, end: float) -> Progress:
    """A progress callback that maps a step's 0..1 into [start, end] of the whole run."""
    return lambda f, m: progress(start + (end - start) * min(max(f, 0.0), 1.0), m)


# ----------------------------------------------------------------------------- text


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
) -> Encoded:
    """codec.pipeline.encode with the demo's pixel limit; grids all empty → no map layer.
    ``made_by``: who made the text and the maps, for the file's header. ``realism``: the
    fidelity ↔ realism knob (codec.realism; None: off), scored with metrics' DISTS."""
    if grids is not None and not any(np.any(g) for g in grids):
        grids = None
    hint = decoder_hint if decoder_hint in ("restore", "bicubic", "diffusion") else "restore"
    result = pipeline.encode(
        image,
        float(bpp),
        description=description,
        maps=grids,
        decoder_hint=hint,
        max_pixels=DEMO_MAX_PIXELS,
        progress=progress,
        made_by=made_by,
        **_realism_options(realism, hint),
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


def compare(
    original: Image.Image,
    decoded: Decoded,
    nbytes: int,
    backends: Backends,
    progress: Progress = _quiet,
) -> Comparison:
    """MISC, its pixel layer alone, and classical codecs at the same file size, scored with
    the same metrics (metrics.compute_batch) against the original."""
    import metrics

    original = original.convert("RGB")
    w, h = original.size
    methods: list[tuple[str, Image.Image, int | None, str]] = [
        (
            f"MISC ({decoded.decoder})",
            decoded.image,
            nbytes,
            "RANDOM WEIGHTS: not a real model's output" if decoded.metadata.get("weights") else "",
        ),
        ("MISC pixel layer, bicubic", decoded.upsampled, nbytes, "same file, no model"),
    ]
    cmp = Comparison()
    for i, codec in enumerate(CLASSICAL):
        progress(0.3 * i / len(CLASSICAL), f"{codec.upper()} at {nbytes} bytes")
        try:
            r = encode_at_budget(original, nbytes, codec)
        except Exception as exc:  # a codec missing here: say so in the table
            cmp.rows.append({"method": codec.upper(), "bytes": None, "note": f"unavailable: {exc}"})
            continue
        if r is None:
            cmp.rows.append(
                {"method": codec.upper(), "bytes": None, "note": f"no file fits in {nbytes} bytes"}
            )
            continue
        note = f"{r.coded_size[0]}×{r.coded_size[1]} q{r.quality}, bicubic up"
        methods.append((codec.upper(), r.image, r.nbytes, note))
        cmp.images.append((r.image, f"{codec.upper()}: {r.nbytes} B ({note})"))
    names = list(FR_METRICS) + [
        n for n in backends.semantic_metrics() if n != "clip_t" or decoded.layers.description is not None
    ]
    texts = None
    if "clip_t" in names:
        overall = decoded.layers.description.overall or ", ".join(
            i.name for i in decoded.layers.description.items
        )
        texts = [overall] * len(methods)
    progress(
        0.35,
        f"metrics ({', '.join(metrics.METRICS[n].display_name for n in names)}) on {len(methods)} images",
    )
    scores = metrics.compute_batch(
        [original] * len(methods), [m[1] for m in methods], names, texts=texts, progress=False
    )
    cmp.metric_names = names
    missing = cmp.rows
    cmp.rows = []
    for (label, _img, n, note), s in zip(methods, scores, strict=True):
        cmp.rows.append(
            {"method": label, "bytes": n, "bpp": 8 * n / (w * h) if n else None, "note": note, **s}
        )
    cmp.rows += missing
    progress(1.0, "done")
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
