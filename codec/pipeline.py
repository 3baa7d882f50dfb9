"""encode(image, target_bpp) -> bytes and decode(bytes) -> image: the whole codec.

    image ─▶ load_rgb ─▶ describe ─▶ Description ─▶ text coder ─▶ TEXT ─┐
                 │          └──▶ item names ─▶ CLIP Surgery ─▶ grids ─▶ MAPS ─┤  fixed cost first
                 └──▶ rate control (bytes left) ─▶ AV1 payload ─▶ PIXEL ──────┤
                                                            header + CRC ─────┴─▶ .misc bytes

    .misc bytes ─▶ unpack ─▶ DecodedLayers(lowres, description, maps, seed) ─▶ decoder ─▶ image

The target is a hard ceiling on the WHOLE file: header, every section's framing and the
checksum are counted before the pixel layer is given what is left. Every number reported
(bytes, bpp, bytes per layer) is measured on the bytes returned, never estimated.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import bitstream as bs
from .errors import ArgumentError, BitstreamError, BudgetError, CodecError
from .imageio import load_rgb
from .limits import max_pixels as pixel_limit
from .pixel import PixelChoice, Scorer, decode_pixels, encode_pixels, smallest_payload
from .pixel import section_type as pixel_section_type
from .realism.detail import pack_detail
from .records import DecodedLayers, DecodeResult, Description

Progress = Callable[[float, str], None]


@dataclass
class EncodeResult:
    data: bytes
    width: int
    height: int
    target_bpp: float
    pixel: PixelChoice
    description: Description | None = None
    maps: list[np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    recipe: Any = None  # the codec.aigi Recipe stored in the file's RECIPE section, if any
    loop: Any = None  # codec.realism.LoopChoice when the decoder was in the loop (realism set)

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return 8.0 * len(self.data) / (self.width * self.height)

    def info(self) -> dict[str, Any]:
        return info(self.data)


def budget_bytes(width: int, height: int, bpp: float) -> int:
    """Largest whole file, in bytes, at or below `bpp` bits per pixel."""
    return math.floor(bpp * width * height / 8 + 1e-9)


# ----------------------------------------------------------------------------- encode


def _semantic_sections(
    description: Description | None,
    maps: list[np.ndarray] | None,
    recipe=None,
    made_by: dict[str, str] | None = None,
) -> tuple[list[bs.Section], list[str]]:
    """TEXT (+ MAPS), and the models to name: the text coder, and who made each layer that
    is present (``made_by``: {"text": ..., "maps": ...}). With a recipe the paragraph is its
    prompt, coded by the prompt model, and a RECIPE section follows (its check byte a
    placeholder until the pixel layer is known); the RECIPE then says where the text came from."""
    sections: list[bs.Section] = []
    models: list[str] = []
    made_by = made_by or {}
    if description is not None and not description.is_empty():
        from . import textcoder

        model = textcoder.PROMPT_MODEL if recipe is not None else textcoder.MODEL_NAME
        sections.append(bs.Section(bs.SectionType.TEXT, textcoder.compress(description, model=model)))
        models.append(model)
        if recipe is not None:
            from .aigi.section import pack_recipe

            sections.append(bs.Section(bs.SectionType.RECIPE, pack_recipe(recipe, check_db=0.0)))
        else:
            models += _compact_maker(made_by.get("text"))
    if maps:
        from .maps import compress_grids

        sections.append(bs.Section(bs.SectionType.MAPS, compress_grids(maps)))
        models += _compact_maker(made_by.get("maps"))
    return sections, models


def _compact_maker(name: str | None) -> list[str]:
    """A layer's maker as the header names it: its one-byte id when it has one, else its
    kind's ("describe/hf:other"): a full name would cost ~30 bytes, 0.001 bpp at 512²."""
    if not name:
        return []
    if name in bs.MODEL_IDS:
        return [name]
    other = name.split(":", 1)[0] + ":other"
    return [other] if other in bs.MODEL_IDS else []


def _fixed_bytes(shell: bs.MiscFile, pixel_len: int) -> int:
    """Bytes of everything but the pixel payload, for a pixel payload of `pixel_len` bytes."""
    return (
        len(bs.header_bytes(shell))
        + sum(len(bs.section_bytes(s)) for s in shell.sections)
        + bs.section_overhead(pixel_len)
        + bs.CRC_BYTES
    )


def pixel_budget(shell: bs.MiscFile, total_budget: int) -> int:
    """Largest pixel payload that keeps the whole file within `total_budget`."""
    n = total_budget - _fixed_bytes(shell, total_budget)
    # The length field may be shorter for the smaller payload; take back what that frees.
    while n >= 0 and n + 1 + _fixed_bytes(shell, n + 1) <= total_budget:
        n += 1
    return n


def encode(
    image,
    target_bpp: float,
    *,
    description: Description | None = None,
    maps: Sequence[np.ndarray] | None = None,
    describer=None,
    clip=None,
    map_size: int = 8,
    map_threshold: float = 0.35,
    decoder_hint: str = "auto",
    factors: Sequence[float] | None = None,
    scorer: Scorer | None = None,
    seed: int | None = None,
    max_pixels: int | None = None,
    progress: Progress | None = None,
    recipe=None,
    made_by: dict[str, str] | None = None,
    realism=None,
    perceptual=None,
    loop_decoder=None,
    loop_cache: dict | None = None,
) -> EncodeResult:
    """Code `image` into a .misc file of at most `target_bpp` bits per pixel.

    The semantic layers come from `description`/`maps` when given (e.g. edited in the
    demo), else from `describer`/`clip` when given; without either the file has no
    semantic layer and the result's notes say so. The header names who made each layer:
    ``made_by`` ({"text": "describe/...", "maps": "maps/..."}, e.g. from the demo), else
    the describer's and CLIP model's own names. When the semantic layers leave no room
    for the smallest pixel layer, the maps and then the text are dropped, and the notes
    say so; when even a bare pixel layer does not fit, BudgetError gives the minimum.

    ``recipe`` (a codec.aigi Recipe, e.g. ``read_recipe(file).recipe``): prompt-aware
    coding of an AI-generated image. Its prompt becomes the paragraph (a describer's items
    are kept), coded by the prompt text model, and its settings go to a RECIPE section with
    the regeneration check, so a decoder that has the generator can regenerate the image.

    ``realism`` (R from 0 = faithful to 1 = realistic, or a codec.realism.LoopConfig; None:
    off, the payload of best bicubic PSNR): the decoder the file is made for decodes the
    most promising payloads and the file keeps the one, with the detail level (REALISM
    section) and seed, that scores best under U(R) (docs/REALISM.md). ``perceptual``
    (reference, image) -> distance, lower is better (bench and demo pass DISTS; default: a
    numpy stand-in); ``loop_decoder``: an already loaded decoder (default: the hint's);
    ``loop_cache``: a dict shared by several encodes of one image (e.g. several R).
    """
    t0 = time.perf_counter()
    report = progress or (lambda f, msg: None)
    if not (isinstance(target_bpp, int | float) and math.isfinite(target_bpp) and target_bpp > 0):
        raise ArgumentError(f"target bpp must be a positive number, got {target_bpp!r}")
    report(0.0, "reading image")
    rgb, gray = load_rgb(image, max_pixels)
    w, h = rgb.size
    notes: list[str] = []

    made_by = dict(made_by or {})
    if description is None and describer is not None:
        report(0.05, f"describing with {getattr(describer, 'name', 'describer')}")
        description = describer.describe(rgb)
        made_by.setdefault("text", _made_by_describer(describer))
    if recipe is not None:
        description, recipe = _with_prompt(description, recipe, notes)
    if description is None or description.is_empty():
        description = None
        notes.append("no semantic layer: no description was given and no describer is configured")
    maps = list(maps) if maps is not None else None
    if maps is None and clip is not None and description is not None and description.items:
        report(0.3, "computing item maps")
        maps = clip.grids(rgb, [it.name for it in description.items], size=map_size, threshold=map_threshold)
        made_by.setdefault("maps", getattr(clip, "header_name", ""))
    if maps is not None:
        if description is None or len(maps) != len(description.items):
            raise CodecError("there must be exactly one map per described item")
    elif description is not None and description.items:
        notes.append("no map layer: no CLIP model and no painted maps")

    report(0.4, "coding text and maps")
    budget = budget_bytes(w, h, target_bpp)
    decoder_hint = resolve_decoder_hint(decoder_hint)
    loop_cfg = _loop_config(realism, decoder_hint, notes)
    if loop_cfg is not None and loop_cfg.seeds > 1 and seed is None:
        seed = 0  # one byte reserved, so that whichever seed wins the file keeps its size
    models = [m for m in [_decoder_model(decoder_hint)] if m]
    hint = _rate_hint(decoder_hint)
    smallest = functools.cache(lambda: smallest_payload(rgb))
    # What to try, richest first: everything, then without maps, then without text.
    attempts = [(description, maps)]
    if maps is not None:
        attempts.append((description, None))
    if description is not None:
        attempts.append((None, None))
    for desc_i, maps_i in attempts:
        sections, text_models = _semantic_sections(
            desc_i, maps_i, recipe if desc_i is not None else None, made_by
        )
        if loop_cfg is not None:  # placeholder of the final size: the detail level is one byte
            sections.append(bs.Section(bs.SectionType.REALISM, pack_detail(1.0)))
        shell = bs.MiscFile(w, h, sections, gray, seed, text_models + models)
        room = pixel_budget(shell, budget)
        if room <= 0 or room < smallest():
            if maps_i is not None:
                notes.append("maps dropped: the target leaves no room for them and a pixel layer")
            elif desc_i is not None:
                notes.append("text dropped: the target leaves no room for it and a pixel layer")
            continue
        report(0.5, "searching the pixel layer")
        choice = encode_pixels(
            rgb, room, factors=hint.get("factors") if factors is None else factors, scorer=scorer,
            fallback_factors=hint.get("fallback_factors") if factors is None else None,
        )
        looped = None
        if loop_cfg is not None:
            report(0.7, "decoding the most promising payloads")
            looped = _in_the_loop(rgb, choice, shell, desc_i, maps_i, decoder_hint, loop_cfg,
                                  perceptual, loop_decoder, loop_cache)  # fmt: skip
            choice = looped.pixel
        shell.sections.insert(0, bs.Section(pixel_section_type(choice.payload), choice.payload))
        kept_recipe = recipe if desc_i is not None else None
        if kept_recipe is not None:
            shell.sections = _with_check(shell.sections, kept_recipe, rgb, choice.payload)
        elif recipe is not None:
            notes.append("recipe dropped with the text: the target leaves no room for them and a pixel layer")
        data = bs.pack(shell)
        assert len(data) <= budget, (len(data), budget)
        if not choice.factors_hint_used:
            notes.append(f"the {decoder_hint} decoder's preferred downsampling did not fit; searched all factors")
        report(1.0, "done")
        return EncodeResult(
            data, w, h, target_bpp, choice,
            description=desc_i, maps=maps_i, notes=notes, seconds=time.perf_counter() - t0, recipe=kept_recipe,
            loop=looped,
        )
    bare = bs.MiscFile(w, h, [], gray, seed, models)
    minimum = smallest() + _fixed_bytes(bare, smallest())
    min_bpp = 8.0 * minimum / (w * h)
    raise BudgetError(
        f"{target_bpp:g} bpp ({budget} bytes for {w}x{h}) is below the smallest file this image can have: "
        f"{minimum} bytes = {min_bpp:.5f} bpp",
        minimum_bpp=min_bpp,
        minimum_bytes=minimum,
    )


def _loop_config(realism, decoder_hint: str, notes: list[str]):
    """The LoopConfig for ``realism`` (None: off). The bicubic decoder has nothing to choose
    between: its picture is what rate control already scores."""
    if realism is None:
        return None
    from .realism import LoopConfig

    cfg = realism if isinstance(realism, LoopConfig) else LoopConfig(realism=realism)
    if decoder_hint == "bicubic":
        notes.append("realism has no effect with the bicubic decoder: its picture is what rate control scores")
        return None
    return cfg


def _in_the_loop(rgb, choice, shell, description, maps, decoder_hint, cfg, perceptual, decoder, cache):
    """Decoder-in-the-loop choice (codec.realism.loop); writes the chosen detail level and
    seed into ``shell`` (same sizes as the placeholders) and returns the LoopChoice."""
    from .realism import choose
    from .realism.detail import pack_detail as pack

    if decoder is None:
        decoder = _get_decoder(decoder_hint)
    layers = DecodedLayers(
        width=shell.width, height=shell.height, grayscale=shell.grayscale, seed=shell.seed or 0,
        models=list(shell.models), lowres=None, description=description, maps=maps,
    )  # fmt: skip
    looped = choose(rgb, choice, decoder, cfg, layers=layers, perceptual=perceptual, cache=cache)
    shell.sections = [bs.Section(s.type, pack(looped.alpha)) if s.type == bs.SectionType.REALISM else s
                      for s in shell.sections]  # fmt: skip
    if shell.seed is not None and looped.seed is not None:
        shell.seed = looped.seed
    return looped


def _with_prompt(description: Description | None, recipe, notes: list[str]):
    """The description whose paragraph is the recipe's prompt (a describer's items kept)."""
    from .aigi.recipe import Recipe

    if not isinstance(recipe, Recipe):
        raise CodecError(f"recipe must be a codec.aigi Recipe, got {type(recipe).__name__}")
    if not recipe.prompt.strip():
        notes.append("recipe has no prompt: coded as a natural image")
        return description, None
    items = description.items if description is not None else []
    if description is not None and description.overall.strip():
        notes.append("the description's paragraph was replaced by the generation prompt")
    return Description(items=list(items), overall=recipe.prompt), recipe


def _with_check(sections: list[bs.Section], recipe, rgb, pixel_payload: bytes) -> list[bs.Section]:
    """The RECIPE section again, its check byte now measured on the chosen pixel layer (same size)."""
    from .aigi.check import check_psnr
    from .aigi.section import pack_recipe

    check = check_psnr(rgb, decode_pixels(pixel_payload))
    packed = pack_recipe(recipe, check_db=check)
    return [bs.Section(s.type, packed) if s.type == bs.SectionType.RECIPE else s for s in sections]


def _made_by_describer(describer) -> str:
    from .describe import header_name

    return header_name(describer) or ""


def resolve_decoder_hint(decoder_hint: str) -> str:
    """'auto' means the decoder a receiver with this machine's models would use:
    diffusion when its weights are here, restoration otherwise."""
    from .decode import available_decoders, check_name

    check_name(decoder_hint)
    if decoder_hint != "auto":
        return decoder_hint
    status = available_decoders()
    return next((name for name in ("diffusion", "restore") if status.get(name, (False,))[0]), "bicubic")


def _rate_hint(decoder_hint: str) -> dict:
    try:
        from .decode import RATE_HINTS
    except ImportError:
        return {}
    return dict(RATE_HINTS.get(decoder_hint, {}))


def _decoder_model(decoder_hint: str) -> str | None:
    return {"restore": "restore/realesrgan-x4plus", "diffusion": "diffusion/sd15-controlnet-tile"}.get(decoder_hint)


# ----------------------------------------------------------------------------- decode


def pixel_section(f: bs.MiscFile) -> tuple[bytes | None, bool]:
    """(payload, compact?) of the file's pixel section (raw PIXEL_AV1 or PIXEL_AV1_COMPACT)."""
    compact = f.section(bs.SectionType.PIXEL_AV1_COMPACT)
    return (compact, True) if compact is not None else (f.section(bs.SectionType.PIXEL_AV1), False)


def read_layers(data: bytes, max_pixels: int | None = None) -> DecodedLayers:
    """Parse a file and decode its layers (everything but the final decoder).

    ``max_pixels`` (None: the process's limit, codec.limits) is checked on the header's
    size before anything is decoded: PixelLimitError, since a few bytes can name 8192²."""
    f = bs.unpack(data, max_pixels=pixel_limit(max_pixels))
    payload, compact = pixel_section(f)
    if payload is None:
        raise BitstreamError("the file has no pixel section")
    lowres = decode_pixels(payload, expect_max_side=max(f.width, f.height), max_pixels=f.width * f.height,
                           compact=compact)  # fmt: skip
    description = None
    text = f.section(bs.SectionType.TEXT)
    if text is not None:
        from . import textcoder

        model = next((m for m in f.models if m in textcoder.TEXT_MODELS), None)
        if model is None:
            named = [m for m in f.models if m.startswith("text/")]
            raise BitstreamError(
                f"the text was coded with model {named[0] if named else '(unnamed)'}, "
                f"but this decoder has {', '.join(textcoder.TEXT_MODELS)}"
            )
        description = textcoder.decompress(text, model=model)
    recipe = None
    raw_recipe = f.section(bs.SectionType.RECIPE)
    if raw_recipe is not None:
        from .aigi.section import unpack_recipe

        recipe = unpack_recipe(raw_recipe, prompt=description.overall if description is not None else "")
    detail = None
    raw_detail = f.section(bs.SectionType.REALISM)
    if raw_detail is not None:
        from .realism.detail import unpack_detail

        detail = unpack_detail(raw_detail)
    maps = None
    raw_maps = f.section(bs.SectionType.MAPS)
    if raw_maps is not None:
        from .maps import decompress_grids

        maps = decompress_grids(raw_maps)
        if description is None or len(maps) != len(description.items):
            raise BitstreamError("the maps section does not match the described items")
    return DecodedLayers(
        width=f.width, height=f.height, grayscale=f.grayscale, seed=f.seed or 0, models=list(f.models),
        lowres=lowres, description=description, maps=maps, recipe=recipe, detail=detail,
    )


def decode(
    data: bytes, decoder="auto", progress: Progress | None = None, regen=None, max_pixels: int | None = None,
    **decoder_config,
) -> DecodeResult:
    """Decode a .misc file to a full-size image with the chosen (or best available) decoder.

    A file with a RECIPE section is first regenerated when ``regen`` (a
    codec.decode.regen.RegenConfig; None: from MISC_REGEN_MODELS; False: never) maps its
    model to loadable weights; the chosen decoder is the fallback when the regenerated
    picture disagrees with the pixel layer. ``result.metadata["regeneration"]`` says which.
    ``max_pixels``: see read_layers; a larger file is refused before any work.
    """
    if isinstance(decoder, str):
        from .decode import check_name

        check_name(decoder)
    layers = read_layers(data, max_pixels)
    if layers.recipe is not None and regen is not False:
        from .decode.regen import RegenerationDecoder

        def fallback():
            return _get_decoder(decoder, **decoder_config) if isinstance(decoder, str) else decoder

        return RegenerationDecoder(fallback=fallback, config=regen).decode(layers, progress=progress)
    if isinstance(decoder, str):
        decoder = _get_decoder(decoder, **decoder_config)
    result = decoder.decode(layers, progress=progress)
    if layers.detail is not None and layers.detail != 1.0:
        from .realism.detail import apply_detail

        result.image = apply_detail(result.image, layers.lowres, layers.detail)
        result.metadata["detail"] = layers.detail  # the REALISM section's level (docs/REALISM.md)
    return result


def _get_decoder(name: str, **config):
    from .decode import get_decoder

    return get_decoder(name, **config)


# ----------------------------------------------------------------------------- info


def made_by(models: Sequence[str]) -> dict[str, str]:
    """Which model made each layer, from the header's model names (provenance only)."""
    prefixes = {"text": ("describe/",), "maps": ("maps/",), "decoder_hint": ("diffusion/", "restore/", "upscale/")}
    return {layer: next((m for m in models if m.startswith(p)), "") for layer, p in prefixes.items()
            if any(m.startswith(p) for m in models)}


def info(data: bytes) -> dict[str, Any]:
    """What `python -m codec info` prints: sizes per layer, measured on the bytes."""
    f = bs.unpack(data)
    lay = bs.layout(data)
    total = len(data)
    px = f.width * f.height
    sections = {
        name: {"bytes": s["payload_bytes"] + s["framing_bytes"], "bits": 8 * (s["payload_bytes"] + s["framing_bytes"]),
               "payload_bytes": s["payload_bytes"], "bpp": 8 * (s["payload_bytes"] + s["framing_bytes"]) / px,
               **({"form": s["form"]} if "form" in s else {})}
        for name, s in lay["sections"].items()
    }
    out: dict[str, Any] = {
        "width": f.width,
        "height": f.height,
        "total_bytes": total,
        "bpp": 8 * total / px,
        "header_bytes": lay["header_bytes"],
        "checksum_bytes": lay["checksum_bytes"],
        "overhead_bytes": lay["header_bytes"] + lay["checksum_bytes"] + sum(s["framing_bytes"] for s in lay["sections"].values()),
        "sections": sections,
        "models": f.models,
        "made_by": made_by(f.models),
        "seed": f.seed,
        "grayscale": f.grayscale,
        "format_version": f.version,
    }
    payload, compact = pixel_section(f)
    if payload:
        # info reports any header, but decodes no pixel layer larger than a decode would
        lowres = decode_pixels(payload, max(f.width, f.height), max_pixels=min(f.width * f.height, pixel_limit()),
                               compact=compact)  # fmt: skip
        out["pixel_layer_size"] = list(lowres.size)
    if not f.section(bs.SectionType.TEXT):
        out["semantic_layer"] = "none"
    return out
