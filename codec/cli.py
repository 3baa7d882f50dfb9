"""python -m codec encode | decode | info

Every failure a user can cause (a bad image, a corrupt file, a target below the minimum,
a missing model) ends as one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import BudgetError, CodecError

EXIT_INPUT = 2  # bad input or arguments
EXIT_BUDGET = 3  # the target rate is below what is possible
EXIT_MODEL = 4  # a model could not be loaded


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m codec", description="MISC semantic image codec")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="image -> .misc file")
    e.add_argument("input", type=Path)
    e.add_argument("-o", "--output", type=Path, required=True)
    e.add_argument(
        "--bpp", type=float, default=0.02, help="target bits per pixel for the whole file (default 0.02)"
    )
    e.add_argument("--describer", default="none", help="none | openai | hf:MODEL | manual (with --text)")
    e.add_argument(
        "--text", default=None, help="description for --describer manual (JSON or 'name: detail' lines)"
    )
    e.add_argument("--items", type=int, default=None, help="number of items the describer may name")
    e.add_argument(
        "--clip", default=None, help="open_clip model for item maps, e.g. ViT-B-16 or ViT-B-16:openai"
    )
    e.add_argument("--map-size", type=int, default=8)
    e.add_argument("--map-threshold", type=float, default=0.35)
    e.add_argument(
        "--decoder",
        default="auto",
        help="decoder the pixel layer is tuned for: auto (the best available here) | diffusion | upscale | restore | bicubic",
    )
    e.add_argument("--seed", type=int, default=None)
    e.add_argument(
        "--realism", type=parse_realism, default=None,
        help="0 (faithful) .. 1 (realistic), or off: the decoder decodes the most promising pixel "
        "payloads and the file keeps the best under this balance (docs/REALISM.md; default "
        f"{_default_realism():g}; no effect with --decoder bicubic)",
    )
    e.add_argument(
        "--seeds", type=int, default=None,
        help="seeds a stochastic decoder (diffusion, upscale) tries while encoding; the file keeps the best "
        "at no extra byte (default: 4 with a CUDA GPU, 1 on CPU)",
    )
    e.add_argument(
        "--full-alpha", action="store_true",
        help="at --realism 0, decode the chosen payload in full once more and store the detail level of least "
        "squared error over the whole picture (+0.1 dB on Kodak24 at 0.01 bpp, one more full decode; "
        "docs/REALISM.md)",
    )
    e.add_argument(
        "--profile",
        choices=("auto", "full", "offline"),
        default=None,
        help="full: the VLM describes, CLIP Surgery maps, pixel layer for the diffusion decoder "
        "(models downloaded on first use); auto: full with a GPU and the hub or a warm cache; "
        "explicit --describer/--clip/--decoder win (default: offline, i.e. only those flags)",
    )
    e.add_argument("--max-pixels", type=int, default=None,
                   help="largest picture to code (default: MISC_MAX_PIXELS, else 1048576)")
    e.add_argument("--recipe", choices=("auto", "off"), default="auto",
                   help="auto: an AI image's generation recipe (PNG text, EXIF, ComfyUI...) is coded prompt-aware")

    d = sub.add_parser("decode", help=".misc file -> PNG")
    d.add_argument("input", type=Path)
    d.add_argument("-o", "--output", type=Path, required=True)
    d.add_argument("--decoder", default="auto", help="auto | diffusion | upscale | restore | bicubic")
    d.add_argument(
        "--profile",
        choices=("auto", "full", "offline"),
        default=None,
        help="full: decoder auto means diffusion, its weights downloaded when missing",
    )
    d.add_argument("--max-pixels", type=int, default=None,
                   help="refuse files whose picture is larger, before decoding (default: MISC_MAX_PIXELS, else 1048576)")

    i = sub.add_parser("info", help="print what a .misc file holds, as JSON")
    i.add_argument("input", type=Path)
    return p


def _default_realism() -> float:
    from .realism import DEFAULT_REALISM

    return DEFAULT_REALISM


def parse_realism(text: str) -> float | str:
    """One ``--realism`` value: a number from 0 to 1, or "off" (also bench's list items)."""
    if text.strip().lower() == "off":
        return "off"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"realism is a number from 0 to 1 or 'off', not {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"realism must be from 0 (faithful) to 1 (realistic), got {text}")
    return value


def _loop_config(args):
    """--realism/--seeds as the encoder's LoopConfig (None: off). A diffusion or upscale
    file on a CPU: off unless asked for (each proxy decode is a diffusion run); with CUDA,
    4 seeds by default (docs/REALISM.md)."""
    from .realism import DEFAULT_REALISM, LoopConfig

    if args.realism == "off":
        if args.seeds not in (None, 1) or args.full_alpha:
            raise CodecError("--seeds and --full-alpha need the decoder in the loop: drop --realism off")
        return None
    from .pipeline import resolve_decoder_hint

    seeds = args.seeds
    generative = resolve_decoder_hint(args.decoder) in ("diffusion", "upscale")
    cuda = False
    if generative:
        import torch

        cuda = torch.cuda.is_available()
    if generative and not cuda and args.realism is None and seeds in (None, 1):
        return None  # by default off: on a CPU each proxy decode is a diffusion run (minutes)
    if seeds is None:
        seeds = 4 if cuda else 1
    try:
        return LoopConfig(realism=DEFAULT_REALISM if args.realism is None else args.realism, seeds=seeds,
                          full_alpha=args.full_alpha)  # fmt: skip
    except ValueError as e:
        raise CodecError(str(e)) from e


def _read(path: Path) -> bytes:
    from .bitstream import read_file

    if not path.is_file():
        raise CodecError(f"no such file: {path}")
    return read_file(path)


def _profile(requested: str | None) -> str:
    """The resolved profile (offline | full) for --profile, saying on stderr why."""
    if requested in (None, "offline"):
        return "offline"
    from .profile import probe, resolve

    plan = resolve(requested, probe())
    print(plan.summary(), file=sys.stderr)
    return plan.profile


def _encode(args) -> dict:
    from .pipeline import encode

    full = _profile(args.profile) == "full"
    if full and args.describer == "none":
        from .describe import DescribeConfig, load_full_describer

        cfg = DescribeConfig(max_items=args.items) if args.items is not None else DescribeConfig()
        args.describer, preset = "full", load_full_describer(cfg, progress=_stderr_progress)
    else:
        preset = None
    if full and not args.clip:
        args.clip = "full"
    if full and args.decoder == "auto":
        args.decoder = "diffusion"
    describer = preset
    if preset is None and args.describer and args.describer != "none":
        from .describe import DescribeConfig, get_describer

        cfg = DescribeConfig(max_items=args.items) if args.items is not None else DescribeConfig()
        extra = {"text": args.text} if args.describer.startswith("manual") else {}
        describer = get_describer(args.describer, config=cfg, **extra)
    clip = None
    if args.clip == "full":
        from .maps import load_clip_surgery
        from .profile import clip_spec

        clip = load_clip_surgery(*clip_spec(), fetch=True, progress=_stderr_progress)
    elif args.clip:
        from .maps import ClipSurgery

        name, _, tag = args.clip.partition(":")
        clip = ClipSurgery.from_pretrained(name, pretrained=tag or "openai")
    recipe = None
    if args.recipe == "auto":
        from .aigi import read_recipe
        from .errors import RecipeError

        try:
            recipe = read_recipe(args.input).recipe
        except RecipeError:
            recipe = None  # not a format that carries a recipe: coded as any image
    result = encode(
        args.input,
        args.bpp,
        describer=describer,
        clip=clip,
        map_size=args.map_size,
        map_threshold=args.map_threshold,
        decoder_hint=args.decoder,
        seed=args.seed,
        max_pixels=args.max_pixels,
        recipe=recipe,
        realism=_loop_config(args),
    )
    _write_atomic(args.output, result.data)
    out = {
        "output": str(args.output),
        "bytes": result.nbytes,
        "bpp": round(result.bpp, 6),
        "target_bpp": args.bpp,
        "seconds": round(result.seconds, 3),
    }
    if result.notes:
        out["notes"] = result.notes
    if result.recipe is not None:
        out["recipe"] = f"{result.recipe.source} recipe coded prompt-aware"
    if result.loop is not None:
        out["realism"] = {"R": result.loop.realism, "detail": result.loop.alpha,
                          "factor": result.pixel.factor, "seed": result.loop.seed, "decodes": result.loop.decodes}
    return out


def _decode(args) -> dict:
    from .pipeline import decode

    profile = _profile(args.profile)
    extra = (
        {"profile": "full", "progress": _stderr_progress}
        if profile == "full" and isinstance(args.decoder, str)
        else {}
    )
    result = decode(_read(args.input), decoder=args.decoder, max_pixels=args.max_pixels, **extra)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".part")
    result.image.save(tmp, format="PNG")
    os.replace(tmp, args.output)
    out = {"output": str(args.output), "decoder": result.decoder, "size": list(result.image.size)}
    if result.metadata.get("decoder_reason"):
        out["decoder_reason"] = result.metadata["decoder_reason"]
    if result.metadata.get("weights"):
        out["weights"] = result.metadata["weights"]
    if result.metadata.get("regeneration"):
        out["regeneration"] = result.metadata["regeneration"]
    return out


def _stderr_progress(fraction: float, message: str) -> None:
    """Downloads and loading, one line each on stderr (stdout stays the JSON answer)."""
    if message.startswith(("downloading", "loading")) and (fraction == 0 or fraction >= 0.9):
        print(f"{message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "encode":
            out = _encode(args)
        elif args.command == "decode":
            out = _decode(args)
        else:
            from .pipeline import info

            out = info(_read(args.input))
    except BudgetError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUDGET
    except CodecError as e:
        from .errors import ModelUnavailableError

        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_MODEL if isinstance(e, ModelUnavailableError) else EXIT_INPUT
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    print(json.dumps(out, indent=2))
    return 0
