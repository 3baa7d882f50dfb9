"""Decoders compared on the same files: Real-ESRGAN restoration vs bicubic, and payload choices.

    kodak24 image ──codec.pipeline.encode(bpp, factors)──▶ .misc bytes (real file, whole size counted)
        └─ read_layers ──▶ bicubic | restore ──▶ PSNR / LPIPS-alex / DISTS, decode seconds, peak RSS

Payload conditions: ``best-psnr`` (rate control searches every downsampling factor and
keeps the best PSNR after bicubic), ``x4`` (RATE_HINTS["restore"]: only ↓4; when ↓4 does
not fit the encoder falls back to all factors and the row says so), and at 0.005 bpp
``x6`` / ``x8`` (what to do when ↓4 does not fit). All files are written with
decoder_hint="bicubic" so that the header is identical and only the payload differs.

Memory: the peak RSS during the decode minus the RSS just before it (VmHWM reset through
/proc/self/clear_refs), so it counts ncnn's buffers that Python cannot see but not the
loaded network itself; ``python -m bench.decoders memory`` gives a fresh process's peak.

    python -m bench.decoders kodak --out runs/decoders            # ~30-40 min on 2 cores
    python -m bench.decoders table runs/decoders/rows.jsonl        # markdown tables
    python -m bench.decoders tiny-diffusion                         # tiny RANDOM-weight decode times
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak24"
RATES = (0.005, 0.01, 0.02)


def conditions(bpp: float) -> dict[str, tuple[float, ...] | None]:
    out: dict[str, tuple[float, ...] | None] = {"best-psnr": None, "x4": (4,)}
    if bpp <= 0.005:
        out.update({"x6": (6,), "x8": (8,)})
    return out


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, extra peak RSS MiB above what the process held before the call)."""
    _reset_peak()
    before = _rss_mib()
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0, _peak_mib() - before


def run_kodak(folder: Path, out: Path, limit: int | None = None) -> Path:
    import metrics
    from codec.decode import BicubicDecoder, RestorationDecoder
    from codec.errors import BudgetError
    from codec.pipeline import encode, read_layers

    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    done = set()
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["image"], r["bpp"], r["condition"], r["decoder"]))
    decoders = {"bicubic": BicubicDecoder(), "restore": RestorationDecoder()}
    decoders["restore"].load()
    paths = sorted(folder.glob("*.png"))[:limit]
    with rows_path.open("a") as sink:
        for path in paths:
            ref = Image.open(path).convert("RGB")
            for bpp in RATES:
                decoded_cache: dict[tuple[str, str], dict] = {}
                for cond, factors in conditions(bpp).items():
                    if all((path.name, bpp, cond, d) in done for d in decoders):
                        continue
                    try:
                        enc = encode(ref, bpp, decoder_hint="bicubic", factors=factors, seed=0)
                    except BudgetError as exc:
                        for d in decoders:
                            row = {
                                "image": path.name,
                                "bpp": bpp,
                                "condition": cond,
                                "decoder": d,
                                "fits": False,
                                "error": str(exc),
                            }
                            sink.write(json.dumps(row) + "\n")
                        continue
                    digest = hashlib.sha1(enc.data).hexdigest()
                    layers = read_layers(enc.data)
                    for name, dec in decoders.items():
                        if (path.name, bpp, cond, name) in done:
                            continue
                        key = (digest, name)
                        if key not in decoded_cache:
                            result, secs, peak = measure(lambda dec=dec, layers=layers: dec.decode(layers))
                            scores = metrics.compute(ref, result.image, ["psnr", "lpips_alex", "dists"])
                            decoded_cache[key] = {
                                "seconds": secs,
                                "extra_peak_mib": peak,
                                **scores,
                                "passes": result.metadata.get("passes"),
                            }
                        row = {
                            "image": path.name,
                            "bpp": bpp,
                            "condition": cond,
                            "decoder": name,
                            "fits": True,
                            "bytes": enc.nbytes,
                            "real_bpp": enc.bpp,
                            "factor": enc.pixel.factor,
                            "lowres": list(enc.pixel.lowres_size),
                            "hint_used": enc.pixel.factors_hint_used,
                            "same_file_as_other_condition": sum(k[0] == digest for k in decoded_cache) > 1,
                            **decoded_cache[key],
                        }
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()
                print(f"{path.name} {bpp} done", file=sys.stderr, flush=True)
    return rows_path


def table(rows_path: Path) -> str:
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["bpp"], r["condition"], r["decoder"])].append(r)
    lines = [
        "| bpp | payload | decoder | images fit | mean bytes | factors used | PSNR dB | LPIPS-alex | DISTS | decode s (median) | extra peak RSS MiB (max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (bpp, cond, dec), rs in sorted(groups.items()):
        fit = [r for r in rs if r["fits"]]
        if not fit:
            lines.append(f"| {bpp} | {cond} | {dec} | 0/{len(rs)} | | | | | | | |")
            continue
        mean = lambda k, fit=fit: statistics.fmean(r[k] for r in fit)  # noqa: E731
        factors = defaultdict(int)
        for r in fit:
            factors[f"÷{r['factor']:g}"] += 1
        fstr = ", ".join(f"{k}×{v}" for k, v in sorted(factors.items()))
        lines.append(
            f"| {bpp} | {cond} | {dec} | {len(fit)}/{len(rs)} | {mean('bytes'):.0f} | {fstr} | {mean('psnr'):.2f} | "
            f"{mean('lpips_alex'):.3f} | {mean('dists'):.3f} | {statistics.median(r['seconds'] for r in fit):.2f} | "
            f"{max(r['extra_peak_mib'] for r in fit):.0f} |"
        )
    return "\n".join(lines)


def _median_decode_seconds(decoder, layers, repeats: int) -> float:  # noqa: ANN001
    """Median wall time of ``decoder.decode(layers)`` after one warm-up decode."""
    decoder.decode(layers)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        decoder.decode(layers)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tiny_diffusion(size: int = 64, steps: tuple[int, ...] = (20,), repeats: int = 3) -> str:
    """Decode time of the diffusion decoder with tiny RANDOM-weight components (plumbing only)."""
    import numpy as np
    import torch

    from codec.decode.diffusion import DiffusionConfig, DiffusionDecoder
    from codec.decode.sd_pipeline import MapGuidedControlNetPipeline
    from codec.decode.tiny import tiny_components
    from codec.records import DecodedLayers, Description, Item

    pipe = MapGuidedControlNetPipeline(**tiny_components())
    img = Image.open(KODAK / "kodim01.png").convert("RGB").resize((size, size))
    left = np.zeros((8, 8), bool)
    left[:, :4] = True
    layers = DecodedLayers(
        size,
        size,
        False,
        1,
        [],
        img.resize((size // 4, size // 4)),
        Description([Item("house", "red brick"), Item("sky", "blue")], "a house under the sky"),
        [left, ~left],
    )
    lines = [
        f"tiny RANDOM-weight components (not quality), {size}x{size}, CPU fp32, torch threads={torch.get_num_threads()}",
        f"| mode | steps | seconds (median of {repeats}) |",
        "|---|---|---|",
    ]
    for mode in ("global", "regional", "multistage"):
        for n in steps:
            dec = DiffusionDecoder(
                pipe, DiffusionConfig(mode=mode, steps=n, strength=1.0), models=("tiny-random-weights",)
            )
            lines.append(f"| {mode} | {n} | {_median_decode_seconds(dec, layers, repeats):.3f} |")
    lines.append(_tiny_upscale(layers, steps, repeats))
    return "\n".join(lines)


def _tiny_upscale(layers, steps: tuple[int, ...], repeats: int) -> str:  # noqa: ANN001
    """The x4-upscaler decoder on the same layers, tiny RANDOM weights (maps ignored)."""
    from codec.decode.tiny import RANDOM_LABEL, tiny_upscaler_components
    from codec.decode.upscale import UpscaleDecoder

    rows = []
    for n in steps:
        dec = UpscaleDecoder.from_components(tiny_upscaler_components(), f"tiny ({RANDOM_LABEL})", steps=n)
        rows.append(f"| upscale (x4 upscaler, one prompt) | {n} | {_median_decode_seconds(dec, layers, repeats):.3f} |")
    return "\n".join(rows)


_CHILD = """
import resource, sys, time
from codec.decode import get_decoder
from codec.pipeline import read_layers
layers = read_layers(open(sys.argv[1], "rb").read())
dec = get_decoder(sys.argv[2])
t0 = time.perf_counter()
dec.decode(layers)
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def fresh_process_memory(image: Path, bpp: float, factors: tuple[float, ...] | None = (4,)) -> str:
    """Peak RSS of a fresh process that loads a decoder and decodes one file (python included)."""
    import subprocess
    import tempfile

    from codec.pipeline import encode

    enc = encode(Image.open(image).convert("RGB"), bpp, decoder_hint="bicubic", factors=factors, seed=0)
    lines = [
        f"{image.name} at {bpp} bpp ({enc.nbytes} B, ÷{enc.pixel.factor:g}); fresh process per decoder",
        "| decoder | decode s | peak RSS MiB (whole process) |",
        "|---|---|---|",
    ]
    with tempfile.NamedTemporaryFile(suffix=".misc") as f:
        f.write(enc.data)
        f.flush()
        for name in ("bicubic", "restore"):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, f.name, name],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            secs, peak = out.stdout.split()[-2:]
            lines.append(f"| {name} | {float(secs):.2f} | {float(peak):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.decoders", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kodak")
    k.add_argument("--folder", type=Path, default=KODAK)
    k.add_argument("--out", type=Path, default=Path("runs/decoders"))
    k.add_argument("--limit", type=int, default=None)
    t = sub.add_parser("table")
    t.add_argument("rows", type=Path)
    td = sub.add_parser("tiny-diffusion")
    td.add_argument("--steps", type=int, nargs="+", default=[20])
    td.add_argument("--repeats", type=int, default=3)
    m = sub.add_parser("memory")
    m.add_argument("--image", type=Path, default=KODAK / "kodim01.png")
    m.add_argument("--bpp", type=float, default=0.01)
    m.add_argument("--factor", type=float, default=4)
    a = p.parse_args(argv)
    if a.cmd == "kodak":
        rows = run_kodak(a.folder, a.out, a.limit)
        print(table(rows))
    elif a.cmd == "table":
        print(table(a.rows))
    elif a.cmd == "memory":
        print(fresh_process_memory(a.image, a.bpp, (a.factor,)))
    else:
        print(tiny_diffusion(steps=tuple(a.steps), repeats=a.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
