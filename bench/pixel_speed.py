"""Wall time of the pixel layer's rate control, with and without the family threads.

    python -m bench.pixel_speed [--data DIR] [--bpp 0.005 0.01 0.02] [--limit N]

For every image and target, the pixel budget is the target's bytes less 80 (about what a
description and maps take), and codec.pixel.encode_pixels runs twice: serially
(MISC_ENCODE_THREADS=1) and with the default threads. Both must pick the same payload
(checked). Prints mean seconds per image, SVT-AV1 encodes per image and the chosen
bicubic PSNR per target. Wall time on a shared machine is an upper bound.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from PIL import Image

from codec.pixel import encode_pixels

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24"


def _timed(image: Image.Image, budget: int, threads: str | None) -> tuple[float, object]:
    old = os.environ.get("MISC_ENCODE_THREADS")
    if threads is None:
        os.environ.pop("MISC_ENCODE_THREADS", None)
    else:
        os.environ["MISC_ENCODE_THREADS"] = threads
    try:
        t0 = time.perf_counter()
        choice = encode_pixels(image, budget)
        return time.perf_counter() - t0, choice
    finally:
        if old is None:
            os.environ.pop("MISC_ENCODE_THREADS", None)
        else:
            os.environ["MISC_ENCODE_THREADS"] = old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--bpp", type=float, nargs="+", default=[0.005, 0.01, 0.02])
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    args = parser.parse_args(argv)
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})[
        : args.limit
    ]
    if not files:
        print(f"no images in {args.data}", file=sys.stderr)
        return 2
    print(f"{len(files)} images from {args.data}, {os.cpu_count()} CPUs")
    print("| bpp | serial s/image | threaded s/image | speed-up | encodes/image | bicubic PSNR |")
    print("|---|---|---|---|---|---|")
    for bpp in args.bpp:
        serial = threaded = encodes = quality = 0.0
        for path in files:
            image = Image.open(path).convert("RGB")
            budget = int(bpp * image.width * image.height / 8) - 80
            ts, a = _timed(image, budget, "1")
            tt, b = _timed(image, budget, None)
            if a.payload != b.payload:
                print(f"{path.name} at {bpp}: threaded and serial searches differ", file=sys.stderr)
                return 1
            serial, threaded = serial + ts, threaded + tt
            encodes, quality = encodes + a.candidates_tried, quality + a.score
        n = len(files)
        print(
            f"| {bpp:g} | {serial / n:.2f} | {threaded / n:.2f} | {serial / threaded:.2f}x "
            f"| {encodes / n:.0f} | {quality / n:.2f} dB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
