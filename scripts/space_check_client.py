"""Drives a running app as a Space visitor would, through gradio_client (scripts/space_check.sh).

    python scripts/space_check_client.py --url http://127.0.0.1:7860/ --password ADMIN --work DIR

1. encode an example photograph (endpoint /encode), decode the file (endpoint /decode) with
   the Real-ESRGAN restoration decoder, and score the result with LPIPS-alex, DISTS and NIQE
   (metrics fetch their parameters on first use);
2. log in as admin (POST /study-admin/login: the password goes to that route only, and the
   session cookie rides along with the API calls), create a tiny study from a manifest
   through the Admin API (/admin_create_from_path, /admin_open), start a rating session
   (/study_start) and cast one vote on the pair it showed (/study_vote_left); the Admin's
   progress (/admin_refresh) must then count one vote, and the API info must not hold
   the password.
Prints one line per step with its time; exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DESCRIPTION = "astronaut: woman in an orange suit\n\nA portrait of an astronaut in front of a flag."
# One item map (8x8 cells): the astronaut fills the lower left of the picture.
MAPS = json.dumps({"astronaut": [[int(row >= 1 and col <= 5) for col in range(8)] for row in range(8)]})


def say(message: str) -> None:
    print(f"[space_check] {message}", flush=True)


def round_trip(client, work: Path) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    import metrics
    from demo.examples import example_image

    original = example_image("astronaut").resize((256, 256), Image.Resampling.LANCZOS)
    src = work / "astronaut256.png"
    original.save(src)
    t0 = time.monotonic()
    misc_path, info = client.predict(
        handle_file(str(src)), 0.02, DESCRIPTION, MAPS, "restore", api_name="/encode"
    )
    t1 = time.monotonic()
    data = Path(misc_path).read_bytes()
    if len(data) != info["total_bytes"] or len(data) > info["target_bytes"]:
        raise SystemExit(
            f"encode: file of {len(data)} B, info says {info['total_bytes']} / {info['target_bytes']}"
        )
    png_path, dinfo = client.predict(handle_file(misc_path), "restore", api_name="/decode")
    t2 = time.monotonic()
    decoded = Image.open(png_path).convert("RGB")
    if decoded.size != original.size:
        raise SystemExit(f"decode: size {decoded.size}, expected {original.size}")
    say(
        f"round trip: encode {t1 - t0:.1f} s -> {len(data)} B ({8 * len(data) / (256 * 256):.4f} bpp, "
        f"sections {', '.join(info['sections'])}); decode {t2 - t1:.1f} s with {dinfo.get('decoder', '?')}; "
        f"total {t2 - t0:.1f} s"
    )
    t3 = time.monotonic()
    scores = metrics.compute(
        np.asarray(original), np.asarray(decoded), ["psnr", "lpips_alex", "dists", "niqe"]
    )
    say(
        "metrics of the decoded image (this fresh venv; LPIPS/DISTS/NIQE parameters fetched on first use into the empty MISC_CACHE_DIR): "
        + ", ".join(f"{metrics.METRICS[k].display_name} {v:.3f}" for k, v in scores.items())
        + f" ({time.monotonic() - t3:.1f} s)"
    )


def study_vote(url: str, password: str, work: Path) -> None:
    import httpx
    from gradio_client import Client

    from study.auth import COOKIE, LOGIN_PATH
    from tests.study_helpers import write_images_manifest

    manifest = write_images_manifest(work / "bench", sources=2, codecs=2, size=32)
    t0 = time.monotonic()
    r = httpx.post(url.rstrip("/") + LOGIN_PATH, data={"password": password}, timeout=60)
    if r.status_code != 200 or COOKIE not in r.cookies:
        raise SystemExit(f"admin login: HTTP {r.status_code} {r.text[:200]}")
    client = Client(url, verbose=False, headers={"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"})
    _, status = client.predict("space check", "balanced", 4, 0, str(manifest), "quality", False, "none", "",
                               api_name="/admin_create_from_path")  # fmt: skip
    found = re.search(r"Created study (\d+)", str(status))
    if not found:
        raise SystemExit(f"admin_create_from_path: {status!r}")
    sid = found.group(1)
    client.predict(sid, api_name="/admin_open")
    started = client.predict(sid, True, "", "", "", "", {}, api_name="/study_start")
    trial = started[1]  # the pair the session was shown (outputs without the states: store, trial, ...)
    if not str(trial).isdigit():
        raise SystemExit(f"study_start showed no pair: {started!r}")
    client.predict(trial, "", api_name="/study_vote_left")
    _, progress = client.predict(sid, api_name="/admin_refresh")
    votes = re.search(r"votes (\d+)", str(progress))
    if not votes or int(votes.group(1)) != 1:
        raise SystemExit(f"after one vote the Admin says: {progress!r}")
    info = httpx.get(url.rstrip("/") + "/gradio_api/info", params={"all_endpoints": "true"}, timeout=60).text
    if password in info:
        raise SystemExit("the admin password appears in the API info")
    say(f"study: logged in, created study {sid} from a manifest, opened it, one session, one vote counted "
        f"({time.monotonic() - t0:.1f} s): {progress}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    from gradio_client import Client

    client = Client(args.url, verbose=False)
    round_trip(client, args.work)
    study_vote(args.url, args.password, args.work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
