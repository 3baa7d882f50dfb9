"""python -m bench.bombs: what a decode bomb costs, through the CLI and the web API.

    real 64×48 file ─▶ header size edited to 2048², 8192², 16384×4096 (the largest the
    format allows), checksum recomputed ─▶ a few dozen bytes each
        ─▶ CLI: `python -m codec decode` in a child        ─▶ exit code, wall time, peak RSS
        ─▶ API: demo.api's /decode function in a child     ─▶ answer, wall time, peak RSS

Each decode runs in a fresh child process, so its peak RSS (``getrusage``: of the
reaped CLI child, or inside the API child) is its own. The API child
also reports its peak RSS after its imports, so the decode's own share is the
difference. ``--max-pixels`` raises the limit in both children, to show what the limit
saves (a refused bomb costs the same as an import; an accepted one what decoding costs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"2048": (2048, 2048), "8192": (8192, 8192), "max": (16384, 4096)}

API_CHILD = """
import json, resource, sys, time
from demo.api import _decode_api
from demo.backends import Backends

decode = _decode_api(Backends())
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
try:
    image, info = decode(sys.argv[1], sys.argv[2])
    json.dumps(info, ensure_ascii=False).encode("utf-8")
    answer = "decoded %dx%d" % image.size
except Exception as e:
    answer = "%s: %s" % (getattr(e, "title", None) or type(e).__name__, " ".join(str(getattr(e, "message", e)).split()))
seconds = time.perf_counter() - t
print(json.dumps({"answer": answer, "seconds": seconds, "import_rss_kb": base,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_bomb(width: int, height: int) -> bytes:
    """A real small file whose header says width×height, the checksum recomputed."""
    from PIL import Image

    from codec import bitstream as bs
    from codec.pipeline import encode

    data = encode(Image.new("RGB", (64, 48), (120, 80, 40)), 0.5, decoder_hint="bicubic").data
    return bs.pack(dataclasses.replace(bs.unpack(data), width=width, height=height))


def _env(max_pixels: int | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if max_pixels is not None:
        env["MISC_MAX_PIXELS"] = str(max_pixels)
    return env


def via_cli(path: Path, decoder: str, max_pixels: int | None, timeout: float) -> dict:
    """`python -m codec decode` in a child. Call it from a fresh process (measure_one
    does): the child's peak RSS is read as RUSAGE_CHILDREN, the largest of the reaped."""
    import resource

    out = path.with_suffix(".png")
    t = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "codec", "decode", str(path), "-o", str(out), "--decoder", decoder],
                           cwd=ROOT, env=_env(max_pixels), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"answer": f"still running after {timeout:g} s (killed)", "seconds": timeout, "peak_rss_kb": None}
    seconds = time.perf_counter() - t
    answer = (r.stderr.strip().splitlines() or [""])[-1] if r.returncode else "decoded " + out.name
    return {"answer": f"exit {r.returncode}: {answer}", "seconds": seconds,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}


def via_api(path: Path, decoder: str, max_pixels: int | None, timeout: float) -> dict:
    try:
        r = subprocess.run([sys.executable, "-c", API_CHILD, str(path), decoder], cwd=ROOT, env=_env(max_pixels),
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"answer": f"still running after {timeout:g} s (killed)", "seconds": timeout, "peak_rss_kb": None}
    lines = r.stdout.strip().splitlines()
    if r.returncode or not lines:
        return {"answer": f"child failed: {r.stderr.strip()[-300:]}", "seconds": None, "peak_rss_kb": None}
    return json.loads(lines[-1])


def measure_one(kind: str, path: Path, decoder: str, max_pixels: int | None, timeout: float) -> dict:
    """One measurement in a fresh process of its own (so RUSAGE_CHILDREN is this child's)."""
    code = (
        "import json, sys; from pathlib import Path; from bench.bombs import via_api, via_cli; "
        "f = via_cli if sys.argv[1] == 'cli' else via_api; "
        "mp = None if sys.argv[4] == '-' else int(sys.argv[4]); "
        "print(json.dumps(f(Path(sys.argv[2]), sys.argv[3], mp, float(sys.argv[5]))))"
    )
    r = subprocess.run([sys.executable, "-c", code, kind, str(path), decoder, "-" if max_pixels is None else
                        str(max_pixels), str(timeout)], cwd=ROOT, env=_env(None), capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def _mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bombs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="2048,8192,max", help="comma-separated: 2048, 8192, max (16384x4096)")
    ap.add_argument("--decoder", default="auto", help="decoder both paths ask for (default auto, as a visitor)")
    ap.add_argument("--max-pixels", type=int, default=None, help="raise the limit in the children (MISC_MAX_PIXELS)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before a decode is killed")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if not names or any(n not in SIZES for n in names):
        ap.error(f"--sizes takes {', '.join(SIZES)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="misc-bombs-") as tmp:
        for name in names:
            w, h = SIZES[name]
            path = Path(tmp) / f"bomb-{w}x{h}.misc"
            path.write_bytes(make_bomb(w, h))
            for kind in ("cli", "api"):
                row = {"file": f"{w}x{h} ({path.stat().st_size} B)", "path": kind,
                       **measure_one(kind, path, args.decoder, args.max_pixels, args.timeout)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    limit = args.max_pixels or "default (MISC_MAX_PIXELS or 1048576)"
    print(f"decoder {args.decoder}, pixel limit {limit}\n")
    print("| file | path | answer | seconds | peak RSS MB | RSS after imports MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        secs = "-" if r.get("seconds") is None else f"{r['seconds']:.3g}"
        print(f"| {r['file']} | {r['path']} | {r['answer'][:110]} | {secs} | {_mb(r.get('peak_rss_kb'))} | "
              f"{_mb(r.get('import_rss_kb'))} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
