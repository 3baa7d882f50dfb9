"""Command line: ``python -m bench run ...`` and ``python -m bench report RUN_DIR``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _codecs(text: str) -> list[str]:
    names = [c.strip().lower() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no codec given")
    return names


def _realism(text: str) -> list[float | None]:
    from codec.cli import parse_realism

    values: list[float | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        v = parse_realism(part)
        values.append(None if v == "off" else v)
    if not values:
        raise argparse.ArgumentTypeError("no realism value given")
    return values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="code, decode and measure every image with every codec at every target")
    r.add_argument("--data", type=Path, required=True, help="folder of source images")
    r.add_argument("--bpp", type=float, nargs="+", required=True, help="target bits per pixel (whole file)")
    r.add_argument("--codecs", type=_codecs, default=_codecs("misc,jpeg,webp,avif,jxl"))
    r.add_argument("--out", type=Path, required=True, help="run folder (created; reused to resume)")
    r.add_argument("--decoder", default="auto", help="MISC decoder: auto, restore, bicubic, diffusion...")
    r.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    r.add_argument("--metrics", type=lambda s: [m.strip() for m in s.split(",") if m.strip()], default=None,
                   help="comma-separated metric names (default: every available one)")  # fmt: skip
    r.add_argument("--realism", type=_realism, default=None,
                   help="MISC's fidelity-realism knob, comma-separated values in [0, 1] (or 'off' for "
                        "today's encoder): one condition per value, named misc-r<R> ('off': misc)")  # fmt: skip
    r.add_argument("--full-alpha", action="store_true",
                   help="R = 0 conditions: the detail level from one more full decode (docs/REALISM.md)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--source-kind", choices=("auto", "natural", "aigi"), default="auto",
                   help="tag the sources natural or aigi (auto: from each file's generation metadata)")  # fmt: skip

    p = sub.add_parser("report", help="curves, markdown table and BD-rates of a run folder")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--anchor", default="misc", help="codec whose BD-rate is computed against the others")

    args = ap.parse_args(argv)
    if args.cmd == "run":
        from .run import RunConfig, run

        bad = [b for b in args.bpp if not b > 0]
        if bad:
            ap.error(f"--bpp must be > 0, got {bad}")
        cfg = RunConfig(
            data=args.data, out=args.out, bpps=list(args.bpp), codecs=args.codecs,
            decoder=args.decoder, limit=args.limit, metrics=args.metrics, source_kind=args.source_kind,
            realism=args.realism, full_alpha=args.full_alpha,
        )  # fmt: skip
        try:
            summary = run(cfg, progress=not args.quiet)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        brief = {k: summary[k] for k in ("images", "counts", "codec_unavailable")}
        brief["errors"] = len(summary["errors"])
        brief["metrics_unavailable"] = summary["metrics"]["unavailable"]
        print(json.dumps(brief, indent=1))
        return 1 if summary["errors"] else 0
    from .report import report

    try:
        paths = report(args.run_dir, anchor=args.anchor)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for k, v in paths.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
