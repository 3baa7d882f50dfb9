"""AIGI sets and the regeneration demonstration.

    python -m bench.aigi build --models ID[,ID...] --prompts FILE --per-model N --out DIR
                               [--steps 30 --cfg 7 --sampler "DPM++ 2M" --size 512 --seed 0]
    python -m bench.aigi regen [--size 512] [--bpp 0.005 0.01] [--steps 4]

``build`` makes an AIGI-SCD-like set (MISC's AI-generated benchmark: 500 images from
mainstream text-to-image models) with diffusers: for every model (a from_pretrained hub id
or a local diffusers folder; ``tiny-random`` is a tiny RANDOM-WEIGHT pipeline for tests)
and each of its N prompts (taken in turn from FILE: one per line, or JSONL with "prompt"),
it generates one picture with a known seed and writes it as PNG with the recipe embedded
the way AUTOMATIC1111 writes it ('parameters' text chunk), so any tool (and this codec)
reads it back. DIR gets the images, ``manifest.json`` (one entry per image: path,
``source_kind`` = "aigi", model, prompt, seed and settings, weights "random" or
"pretrained"), and ``regen_models.json`` (model name → weights), which is what
MISC_REGEN_MODELS needs for a decoder to regenerate the set.
Then ``python -m bench run --data DIR ...`` tags every source natural / aigi from its
metadata, and ``python -m bench report`` splits the table by that tag.

``regen`` is the regeneration figure on tiny RANDOM-WEIGHT pipelines: generate, write
A1111 metadata, encode with the recipe at each target, decode by regeneration (same
weights) and by fallback (other weights); prints bytes, PSNR against the original and the
path taken. Random weights make structured noise, not AIGIs: this proves the plumbing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from codec.aigi import make_recipe, read_recipe
from codec.aigi.tiny import TINY_MODEL, save_tiny_txt2img
from codec.aigi.write import png_with_recipe

TINY = "tiny-random"
MAX_PER_MODEL = 10_000


def read_prompts(path: Path) -> list[str]:
    """One prompt per line, or JSONL records with a "prompt" (or "text"/"caption") field."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            rec = json.loads(line)
            line = (rec.get("prompt") or rec.get("text") or rec.get("caption") or "").strip()
        if line:
            out.append(line)
    if not out:
        raise ValueError(f"no prompts in {path}")
    return out


def _model_name(model: str) -> str:
    return TINY_MODEL if model == TINY else model.rstrip("/").split("/")[-1]


def build(models: list[str], prompts: list[str], per_model: int, out: Path, *, steps: int = 30,
          cfg: float = 7.0, sampler: str = "DPM++ 2M", size: int = 512, seed: int = 0,
          progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Generate the set; returns the manifest (also written to out/manifest.json)."""
    from tqdm import tqdm

    from codec.decode.regen import generate, load_pipeline

    if not 1 <= per_model <= MAX_PER_MODEL:
        raise ValueError(f"--per-model must be 1..{MAX_PER_MODEL}")
    if size % 8:
        raise ValueError("--size must be a multiple of 8")
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    weights: dict[str, str] = {}
    bar = tqdm(total=len(models) * per_model, disable=not progress, unit="img", desc="aigi")
    for m_index, model in enumerate(models):
        name = _model_name(model)
        path = model
        if model == TINY:
            path = str(save_tiny_txt2img(out / "weights" / TINY_MODEL, seed=0))
        weights[name] = path
        pipe = load_pipeline(path)
        for i in range(per_model):
            prompt = prompts[(m_index * per_model + i) % len(prompts)]
            recipe = make_recipe(
                "a1111", prompt=prompt, seed=seed + m_index * per_model + i, steps=steps, cfg_scale=cfg,
                sampler=sampler, width=size, height=size, model=name,
            )  # fmt: skip
            t0 = time.perf_counter()
            image, gen = generate(pipe, recipe)
            file = out / f"{name}_{i:04d}.png"
            file.write_bytes(png_with_recipe(image, recipe))
            assert read_recipe(file).recipe == recipe  # what we wrote is what any reader gets back
            entries.append({
                "id": file.stem, "path": file.name, "source_kind": "aigi", "model": name, "weights_path": path,
                "weights": "random" if model == TINY else "pretrained", "prompt": prompt, "seed": recipe.seed,
                "steps": steps, "cfg_scale": cfg, "sampler": sampler, "scheduler": gen["scheduler"],
                "width": size, "height": size, "seconds": round(time.perf_counter() - t0, 2),
            })  # fmt: skip
            bar.update(1)
    bar.close()
    manifest = {"format": "misc-aigi-set/1", "images": entries, "models": weights,
                "note": "weights 'random': structured noise from a random-weight pipeline, not an AIGI"}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "regen_models.json").write_text(json.dumps(weights, indent=1) + "\n")
    return manifest


def regen_demo(size: int, bpps: list[float], steps: int) -> list[dict[str, Any]]:
    """The regeneration figure on tiny random-weight pipelines (see the module docstring)."""
    from codec import pipeline
    from codec.decode.regen import ModelMap, RegenConfig, generate, load_pipeline
    from codec.errors import BudgetError
    from codec.pixel import psnr

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        same = str(save_tiny_txt2img(Path(tmp) / "same", seed=0))
        other = str(save_tiny_txt2img(Path(tmp) / "other", seed=1))
        recipe = make_recipe(
            "a1111", prompt="a lighthouse on a cliff at dusk, volumetric fog, highly detailed, digital painting",
            negative_prompt="blurry, lowres", seed=1234, steps=steps, sampler="Euler a", cfg_scale=7,
            width=size, height=size, model=TINY_MODEL,
        )  # fmt: skip
        image, _ = generate(load_pipeline(same), recipe)
        read = read_recipe(png_with_recipe(image, recipe)).recipe
        for bpp in bpps:
            try:
                enc = pipeline.encode(image, bpp, recipe=read, decoder_hint="bicubic")
            except BudgetError as e:
                rows.append({"bpp": bpp, "error": str(e)})
                continue
            layers = pipeline.info(enc.data)["sections"]
            if "recipe" not in layers:
                rows.append({"bpp": bpp, "error": f"{enc.nbytes} bytes, no recipe: " + "; ".join(enc.notes)})
                continue
            for label, weights in (("same weights", same), ("other weights", other)):
                cfg = RegenConfig(models=ModelMap({TINY_MODEL: weights}))
                res = pipeline.decode(enc.data, decoder="bicubic", regen=cfg)
                r = res.metadata["regeneration"]
                rows.append({
                    "bpp": bpp, "bytes": enc.nbytes, "real_bpp": round(enc.bpp, 5),
                    "recipe_bytes": layers["recipe"]["bytes"], "text_bytes": layers["text"]["bytes"],
                    "pixel_bytes": layers["pixel_av1"]["bytes"], "decoder_weights": label, "path": r["path"],
                    "decoder": res.decoder, "psnr_vs_original": psnr(res.image, image),
                    "check_db": r.get("check_db"), "got_db": r.get("got_db"),
                })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.aigi", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="generate an AIGI set with recipes and a manifest")
    b.add_argument(
        "--models", required=True, help=f"comma-separated from_pretrained ids / local dirs; {TINY} for tests"
    )
    b.add_argument("--prompts", type=Path, required=True)
    b.add_argument("--per-model", type=int, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--steps", type=int, default=30)
    b.add_argument("--cfg", type=float, default=7.0)
    b.add_argument("--sampler", default="DPM++ 2M")
    b.add_argument("--size", type=int, default=512)
    b.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("regen", help="regeneration on tiny random-weight pipelines: bytes, PSNR, fallback")
    r.add_argument("--size", type=int, default=512)
    r.add_argument("--bpp", type=float, nargs="+", default=[0.003, 0.005, 0.01])
    r.add_argument("--steps", type=int, default=4)
    a = ap.parse_args(argv)
    if a.cmd == "build":
        try:
            models = [m.strip() for m in a.models.split(",") if m.strip()]
            man = build(models, read_prompts(a.prompts), a.per_model, a.out, steps=a.steps, cfg=a.cfg,
                        sampler=a.sampler, size=a.size, seed=a.seed)  # fmt: skip
        except (ValueError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{len(man['images'])} images, manifest {a.out / 'manifest.json'}; regenerate with "
              f"MISC_REGEN_MODELS={a.out / 'regen_models.json'}")  # fmt: skip
        if any(e["weights"] == "random" for e in man["images"]):
            print("random weights: the images are structured noise, not AIGIs (plumbing only)")
        return 0
    rows = regen_demo(a.size, a.bpp, a.steps)
    print(f"regeneration at {a.size}x{a.size}, tiny pipelines with RANDOM WEIGHTS (noise, not AIGIs)")
    print(
        f"{'target':>7} {'bytes':>5} {'bpp':>7} {'recipe':>6} {'text':>4} {'pixel':>5}  {'decoder has':<13} {'path':<11} {'PSNR vs original':>16}  check/got dB"
    )
    for x in rows:
        if "error" in x:
            print(f"{x['bpp']:>7g}  {x['error']}")
            continue
        p = x["psnr_vs_original"]
        ps = "inf (bit-exact)" if p == float("inf") else f"{p:.2f} dB"
        print(f"{x['bpp']:>7g} {x['bytes']:>5} {x['real_bpp']:>7.5f} {x['recipe_bytes']:>6} {x['text_bytes']:>4} "
              f"{x['pixel_bytes']:>5}  {x['decoder_weights']:<13} {x['path']:<11} {ps:>16}  {x['check_db']}/{x['got_db']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
