"""The recipe of an AI-generated image: what a text-to-image run needs to make it again.

Every value that reaches a Recipe has been checked here (type, range, length), whatever
format it came from, so the rest of the codec can trust it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import RecipeError

MAX_PROMPT_CHARS = 8000  # the text coder holds 8192 characters per description
MAX_NAME_CHARS = 200  # sampler, scheduler, model name, model hash
MAX_SEED = 2**64 - 1  # ComfyUI seeds are 64-bit; A1111's are 32-bit
MAX_STEPS = 10_000
MAX_CFG = 100.0
MAX_SIDE = 16384
MAX_EXTRA = 32
_INT = re.compile(r"-?[0-9]{1,24}")  # ASCII digits only ('²' is a digit to str.isdigit)


@dataclass
class Recipe:
    """Prompt and settings of one generation; ``source`` names the format they came from."""

    source: str
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    sampler: str | None = None
    scheduler: str | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    model_hash: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def size(self) -> tuple[int, int] | None:
        return (self.width, self.height) if self.width and self.height else None

    def is_complete(self) -> bool:
        """Whether it names everything a regeneration needs (model, seed, steps, CFG, size)."""
        return (
            bool(self.prompt)
            and self.seed is not None
            and self.steps is not None
            and self.cfg_scale is not None
            and self.size is not None
            and bool(self.model or self.model_hash)
        )


@dataclass
class ReadResult:
    """What :func:`codec.aigi.read_recipe` found in a file.

    ``kind``: ``"recipe"`` (a recipe was read), ``"aigi"`` (marked as AI-generated, e.g. IPTC
    trainedAlgorithmicMedia or C2PA, but no recipe), ``"none"`` (no sign of generation: not
    an AIGI as far as the metadata says, or its metadata was stripped). ``problems`` lists the
    metadata that was refused, each with its reason (the rest was still read).
    """

    kind: str
    recipe: Recipe | None = None
    evidence: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    container: str = ""

    @property
    def is_aigi(self) -> bool:
        return self.kind in ("recipe", "aigi")

    def summary(self) -> str:
        if self.kind == "recipe" and self.recipe is not None:
            return f"AI-generated image with a recipe ({self.recipe.source})"
        if self.kind == "aigi":
            return "AI-generated image (" + "; ".join(self.evidence) + "), no recipe"
        return "not an AI-generated image as far as its metadata says (no recipe, no AI marker)"


# ----------------------------------------------------------------------------- checks


def check_text(value: Any, what: str, limit: int = MAX_PROMPT_CHARS) -> str:
    if not isinstance(value, str):
        raise RecipeError(f"{what} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise RecipeError(f"{what} has {len(value)} characters, above the limit {limit}")
    return value


def check_name(value: Any, what: str) -> str | None:
    if value is None:
        return None
    text = check_text(value, what, MAX_NAME_CHARS).strip()
    return text or None


def check_int(value: Any, what: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi]; integral floats and decimal strings are accepted, bools are not."""
    if isinstance(value, bool):
        raise RecipeError(f"{what} must be an integer, got a boolean")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise RecipeError(f"{what} must be an integer, got {value!r}")
        value = int(value)
    elif isinstance(value, str):
        s = value.strip()
        if not _INT.fullmatch(s):
            raise RecipeError(f"{what} must be an integer, got {value[:40]!r}")
        value = int(s)
    elif not isinstance(value, int):
        raise RecipeError(f"{what} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise RecipeError(f"{what} is {value}, outside {lo}..{hi}")
    return value


def check_float(value: Any, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise RecipeError(f"{what} must be a number, got a boolean")
    if isinstance(value, str):
        if len(value) > 32:
            raise RecipeError(f"{what} must be a number, got {value[:40]!r}")
        try:
            value = float(value.strip())
        except ValueError as e:
            raise RecipeError(f"{what} must be a number, got {value!r}") from e
    if not isinstance(value, int | float):
        raise RecipeError(f"{what} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise RecipeError(f"{what} is {value}, outside {lo:g}..{hi:g}")
    return value


def make_recipe(source: str, **fields: Any) -> Recipe:
    """A Recipe from raw values of any type, each checked; RecipeError names the bad one."""
    r = Recipe(source=source)
    where = f"{source}:"
    if fields.get("prompt") is not None:
        r.prompt = check_text(fields["prompt"], f"{where} prompt")
    if fields.get("negative_prompt") is not None:
        r.negative_prompt = check_text(fields["negative_prompt"], f"{where} negative prompt")
    if fields.get("seed") is not None:
        r.seed = check_int(fields["seed"], f"{where} seed", 0, MAX_SEED)
    if fields.get("steps") is not None:
        r.steps = check_int(fields["steps"], f"{where} steps", 1, MAX_STEPS)
    if fields.get("cfg_scale") is not None:
        r.cfg_scale = check_float(fields["cfg_scale"], f"{where} CFG scale", 0.0, MAX_CFG)
    for key in ("width", "height"):
        if fields.get(key) is not None:
            setattr(r, key, check_int(fields[key], f"{where} {key}", 1, MAX_SIDE))
    for key in ("sampler", "scheduler", "model", "model_hash"):
        setattr(r, key, check_name(fields.get(key), f"{where} {key.replace('_', ' ')}"))
    extra = fields.get("extra") or {}
    if len(extra) > MAX_EXTRA:
        raise RecipeError(f"{where} more than {MAX_EXTRA} extra settings")
    r.extra = {check_text(k, f"{where} setting name", MAX_NAME_CHARS): check_text(str(v), f"{where} setting {k}", 2000)
               for k, v in extra.items()}  # fmt: skip
    return r
