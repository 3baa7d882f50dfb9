"""read_recipe(file) -> ReadResult: the recipe of an AI-generated image, or why there is none.

    bytes ─▶ containers (PNG chunks, JPEG segments, WebP chunks; bounded) ─▶ entries
    entries ─▶ A1111 'parameters' / EXIF UserComment ─┐
            ─▶ ComfyUI 'prompt', then 'workflow'      ├─▶ first that parses: the recipe
            ─▶ InvokeAI, NovelAI                      ┘   (the others' refusals: problems)
            ─▶ XMP DigitalSourceType, C2PA, Software ─▶ evidence that it is AI-generated

By default one malformed entry does not hide a good one (its refusal goes to ``problems``);
``strict=True`` raises the first refusal instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import RecipeError
from .containers import MAX_FILE_BYTES, Entry, file_entries
from .formats import (
    parse_a1111,
    parse_comfyui_prompt,
    parse_comfyui_workflow,
    parse_invokeai,
    parse_invokeai_legacy,
    parse_novelai,
    xmp_ai_markers,
)
from .recipe import ReadResult, Recipe

GENERATOR_SOFTWARE = ("novelai", "comfyui", "stable diffusion", "automatic1111", "invokeai", "midjourney",
                      "dall-e", "dall·e", "firefly", "fooocus", "forge", "draw things")  # fmt: skip


def _bytes_of(source: bytes | str | os.PathLike) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    path = Path(source)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise RecipeError(f"cannot read {path}: {e.strerror}") from e
    if size > MAX_FILE_BYTES:
        raise RecipeError(f"{path} is {size} bytes, above the {MAX_FILE_BYTES}-byte limit for metadata")
    return path.read_bytes()


def recipe_from_entries(entries: list[Entry], problems: list[str]) -> Recipe | None:
    text = {e.key: e.value for e in entries if e.kind == "text"}
    exif = {e.key: e.value for e in entries if e.kind == "exif"}
    attempts = []
    if "parameters" in text:
        attempts.append(("PNG 'parameters'", lambda: parse_a1111(text["parameters"])))
    if "prompt" in text:
        attempts.append(("PNG 'prompt' (ComfyUI)", lambda: parse_comfyui_prompt(text["prompt"])))
    if "workflow" in text:
        attempts.append(("PNG 'workflow' (ComfyUI)", lambda: parse_comfyui_workflow(text["workflow"])))
    if "invokeai_metadata" in text:
        attempts.append(("PNG 'invokeai_metadata'", lambda: parse_invokeai(text["invokeai_metadata"])))
    if "sd-metadata" in text:
        attempts.append(
            ("PNG 'sd-metadata' (InvokeAI 2)", lambda: parse_invokeai_legacy(text["sd-metadata"]))
        )
    if "Comment" in text and text.get("Software", "").strip().lower().startswith("novelai"):
        attempts.append(("PNG 'Comment' (NovelAI)",
                         lambda: parse_novelai(text["Comment"], text.get("Source"), text.get("Description"))))  # fmt: skip
    if exif.get("UserComment", "").strip():
        attempts.append(("EXIF UserComment", lambda: parse_a1111(exif["UserComment"])))
    recipe = None
    for where, attempt in attempts:
        try:
            r = attempt()
        except RecipeError as e:
            problems.append(f"{where}: {e}")
            continue
        if recipe is None:
            recipe = r
    return recipe


def read_recipe(source: bytes | str | os.PathLike, strict: bool = False) -> ReadResult:
    """The recipe and AI markers of a PNG, JPEG or WebP file (bytes or a path).

    Raises RecipeError only for a file that cannot be walked at all (not one of these
    formats, truncated structure, a bomb), or with ``strict=True`` for any refused entry.
    """
    container, entries = file_entries(_bytes_of(source))
    problems: list[str] = []
    recipe = recipe_from_entries(entries, problems)
    if strict and problems:
        raise RecipeError(problems[0])
    evidence: list[str] = []
    if recipe is not None:
        evidence.append(f"generation parameters ({recipe.source})")
    for e in entries:
        if e.kind == "xmp":
            for v in xmp_ai_markers(e.value):
                evidence.append(f"XMP IPTC DigitalSourceType {v}")
        elif e.kind == "c2pa":
            evidence.append(f"C2PA manifest present ({e.key}, not verified)")
        elif e.key in ("Software", "Make", "Source") and any(
            g in e.value.lower() for g in GENERATOR_SOFTWARE
        ):
            evidence.append(f"{e.key} says {e.value[:60]!r}")
    kind = "recipe" if recipe is not None else ("aigi" if evidence else "none")
    return ReadResult(kind=kind, recipe=recipe, evidence=evidence, problems=problems, container=container)
