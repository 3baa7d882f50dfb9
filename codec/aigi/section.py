"""The RECIPE section (type 4): an AI image's generation settings in a few dozen bytes.

    varint flags      bit 0 the TEXT section's overall paragraph is the generation prompt
                      bit 1 seed · 2 steps · 3 CFG · 4 size · 5 sampler · 6 scheduler
                      bit 7 model name · 8 model hash · 9 negative prompt · 10 hash is hex
                      bit 11 regeneration check
    varint source     0 other, 1 a1111, 2 comfyui, 3 comfyui-workflow, 4 invokeai,
                      5 invokeai-legacy, 6 novelai
    [check]           1 byte: PSNR of the pixel layer against the source shrunk to the pixel
                      layer's size, in quarter dB (0..63.75 dB); a regenerated picture must
                      come close to it (codec.aigi.check) or the decoder falls back
    [seed]            varint (< 2^64)
    [steps]           varint (1..10000)
    [CFG]             varint 2·(100·cfg) when 100·cfg is a whole number, else 1 + float64 LE
    [size]            varint width, varint height
    [sampler]         varint: k ≥ 1 = SAMPLERS[k-1]; 0 = varint length + UTF-8 name
    [scheduler]       the same with SCHEDULERS
    [model name]      varint length + UTF-8
    [model hash]      varint length + UTF-8, or (bit 10) + bytes of a lower-case hex hash
    [negative prompt] the rest: arithmetic coded by the prompt text model (a description
                      whose paragraph is the negative prompt); no length, it ends the section

The positive prompt is not here: it is the TEXT section's paragraph (bit 0), so the
semantic layer and the recipe share it. The name tables below only ever grow (an index
once given keeps its name), so older files keep their meaning.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..bitstream import Reader, varint
from ..errors import BitstreamError, RecipeError
from ..records import Description
from .recipe import MAX_NAME_CHARS, MAX_SEED, MAX_SIDE, MAX_STEPS, Recipe, make_recipe

SOURCES = ("other", "a1111", "comfyui", "comfyui-workflow", "invokeai", "invokeai-legacy", "novelai")
SAMPLERS = (
    "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M", "DPM++ SDE",
    "DPM++ 2M SDE", "DPM++ 3M SDE", "DPM fast", "DPM adaptive", "LMS Karras", "DPM2 Karras",
    "DPM2 a Karras", "DPM++ 2S a Karras", "DPM++ 2M Karras", "DPM++ SDE Karras", "DPM++ 2M SDE Karras",
    "DDIM", "PLMS", "UniPC", "LCM", "Restart", "euler", "euler_ancestral", "heun", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_sde",
    "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "ddim", "uni_pc", "lcm", "ddpm", "k_lms", "k_euler",
    "k_euler_ancestral", "k_heun", "k_dpm_2", "k_dpm_2_ancestral", "plms", "euler_a", "dpmpp_2m_k",
    "DPM++ 2M SDE Heun", "deis", "unipc",
)  # fmt: skip
SCHEDULERS = (
    "Automatic", "Karras", "Exponential", "SGM Uniform", "Uniform", "Simple", "Normal", "DDIM", "Beta",
    "Align Your Steps", "KL Optimal", "normal", "karras", "exponential", "sgm_uniform", "simple",
    "ddim_uniform", "beta", "linear_quadratic", "kl_optimal",
)  # fmt: skip

F_PROMPT_IN_TEXT = 1
F_SEED, F_STEPS, F_CFG, F_SIZE, F_SAMPLER, F_SCHEDULER = 2, 4, 8, 16, 32, 64
F_MODEL, F_HASH, F_NEGATIVE, F_HEX_HASH, F_CHECK = 128, 256, 512, 1024, 2048
KNOWN_FLAGS = 4095
MAX_VARINT = 10


@dataclass
class RecipeSection:
    """What a RECIPE section holds: the recipe (prompt filled in from TEXT by the reader)."""

    recipe: Recipe
    prompt_in_text: bool = True
    check_db: float | None = None  # the pixel layer's PSNR at its own size (None: no check)


def _text(s: str) -> bytes:
    raw = s.encode("utf-8")
    return varint(len(raw)) + raw


def _name(s: str, table: tuple[str, ...]) -> bytes:
    return varint(table.index(s) + 1) if s in table else b"\x00" + _text(s)


def pack_recipe(recipe: Recipe, prompt_in_text: bool = True, check_db: float | None = None) -> bytes:
    """RECIPE section payload of a checked recipe (see the module docstring).

    The check byte has a fixed size, so an encoder can pack with a placeholder, pick the
    pixel layer for the bytes left, and pack again with the measured value.
    """
    from .. import textcoder

    flags = F_PROMPT_IN_TEXT if prompt_in_text else 0
    body = bytearray()
    if check_db is not None:
        flags |= F_CHECK
        body.append(max(0, min(255, round(4 * check_db))) if check_db == check_db else 255)
    if recipe.seed is not None:
        flags |= F_SEED
        body += varint(recipe.seed)
    if recipe.steps is not None:
        flags |= F_STEPS
        body += varint(recipe.steps)
    if recipe.cfg_scale is not None:
        flags |= F_CFG
        hundredths = recipe.cfg_scale * 100
        if hundredths == int(hundredths):
            body += varint(2 * int(hundredths))
        else:
            body += varint(1) + struct.pack("<d", recipe.cfg_scale)
    if recipe.size is not None:
        flags |= F_SIZE
        body += varint(recipe.width) + varint(recipe.height)
    if recipe.sampler:
        flags |= F_SAMPLER
        body += _name(recipe.sampler, SAMPLERS)
    if recipe.scheduler:
        flags |= F_SCHEDULER
        body += _name(recipe.scheduler, SCHEDULERS)
    if recipe.model:
        flags |= F_MODEL
        body += _text(recipe.model)
    if recipe.model_hash:
        flags |= F_HASH
        h = recipe.model_hash
        if len(h) % 2 == 0 and all(c in "0123456789abcdef" for c in h):
            flags |= F_HEX_HASH
            raw = bytes.fromhex(h)
            body += varint(len(raw)) + raw
        else:
            body += _text(h)
    if recipe.negative_prompt:
        flags |= F_NEGATIVE
        body += textcoder.compress(Description(overall=recipe.negative_prompt), model=textcoder.PROMPT_MODEL)
    source = SOURCES.index(recipe.source) if recipe.source in SOURCES else 0
    return varint(flags) + varint(source) + bytes(body)


class _Cursor(Reader):
    """The container's bounded reader, with 10-byte varints (64-bit seeds) and text fields."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data, "RECIPE section")

    def number(self, limit: int, what: str) -> int:
        return self.varint(limit, what, max_bytes=MAX_VARINT)

    def text(self, what: str) -> str:
        raw = self.take(self.number(4 * MAX_NAME_CHARS, f"{what} length"))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BitstreamError(f"RECIPE section: {what} is not valid UTF-8") from e

    def name(self, table: tuple[str, ...], what: str) -> str:
        k = self.number(len(table), what)
        return table[k - 1] if k else self.text(what)


def unpack_recipe(data: bytes, prompt: str = "") -> RecipeSection:
    """Inverse of pack_recipe; ``prompt`` is the TEXT paragraph (used when flag bit 0 is set)."""
    from .. import textcoder

    c = _Cursor(bytes(data))
    flags = c.number(KNOWN_FLAGS, "flags")
    source = SOURCES[c.number(len(SOURCES) - 1, "source")]
    f: dict = {"prompt": prompt if flags & F_PROMPT_IN_TEXT else ""}
    check_db = c.take(1)[0] / 4 if flags & F_CHECK else None
    if flags & F_SEED:
        f["seed"] = c.number(MAX_SEED, "seed")
    if flags & F_STEPS:
        f["steps"] = c.number(MAX_STEPS, "steps")
    if flags & F_CFG:
        v = c.number(2 * 100 * 100, "CFG")
        f["cfg_scale"] = (
            struct.unpack("<d", c.take(8))[0] if v == 1 else (v // 2) / 100 if v % 2 == 0 else None
        )
        if f["cfg_scale"] is None:
            raise BitstreamError("RECIPE section: malformed CFG field")
    if flags & F_SIZE:
        f["width"] = c.number(MAX_SIDE, "width")
        f["height"] = c.number(MAX_SIDE, "height")
    if flags & F_SAMPLER:
        f["sampler"] = c.name(SAMPLERS, "sampler")
    if flags & F_SCHEDULER:
        f["scheduler"] = c.name(SCHEDULERS, "scheduler")
    if flags & F_MODEL:
        f["model"] = c.text("model name")
    if flags & F_HASH:
        if flags & F_HEX_HASH:
            f["model_hash"] = c.take(c.number(64, "model hash length")).hex()
        else:
            f["model_hash"] = c.text("model hash")
    rest = c.data[c.pos :]
    if flags & F_NEGATIVE:
        neg = textcoder.decompress(rest, model=textcoder.PROMPT_MODEL)
        if neg.items:
            raise BitstreamError("RECIPE section: the negative prompt carries items")
        f["negative_prompt"] = neg.overall
    elif rest:
        raise BitstreamError(f"RECIPE section has {len(rest)} trailing bytes")
    try:
        recipe = make_recipe(source, **f)
    except RecipeError as e:
        raise BitstreamError(f"RECIPE section holds an invalid recipe: {e}") from e
    return RecipeSection(recipe, bool(flags & F_PROMPT_IN_TEXT), check_db)
