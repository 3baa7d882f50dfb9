"""Measurements behind codec.realism (docs/REALISM.md).

    python -m bench.realism proxy --data DIR --bpp 0.01 --limit 4 --out runs/realism-proxy
        every candidate payload the loop would consider × every detail level α, decoded
        twice (proxy crop and full picture) and scored with DISTS; prints the Spearman rank
        correlation of U(R) proxy vs full, per image (candidates × α) and pooled
    python -m bench.realism speed --data DIR --bpp 0.01 --limit 3
        encode seconds of today's encoder (realism off) and of the loop's settings at 512²,
        and what each buys (full decode: PSNR, DISTS)
    python -m bench.realism table RUN_DIR [--common]
        the issue's table from a `bench run --realism` folder (+ BD-rate on PSNR vs WebP)

The perceptual term is metrics' DISTS (bench may import metrics; codec may not).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image


def dists_scorer():
    """metrics' DISTS as the loop's ``perceptual`` callable."""
    from metrics.api import compute

    return lambda ref, img: float(compute(ref, img, ["dists"])["dists"])


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _images(data: Path, limit: int | None, names: list[str] | None) -> list[Path]:
    from .run import list_images

    files = list_images(data)
    if names:
        files = [f for f in files if f.stem in names]
    return files[:limit] if limit else files


def proxy(args) -> dict:
    from codec.decode import get_decoder
    from codec.pipeline import encode
    from codec.realism import texture_distance
    from codec.realism.loop import decode_region
    from codec.records import DecodedLayers

    dec = get_decoder(args.decoder)
    perceptual = dists_scorer()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / f"proxy_{args.bpp:g}.jsonl"
    done = set()
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["image"], r["factor"], r["family"]))
    with open(rows_path, "a") as f:
        for path in _images(args.data, args.limit, args.images):
            rgb = Image.open(path).convert("RGB")
            enc = encode(rgb, args.bpp, decoder_hint=args.decoder)
            layers = DecodedLayers(rgb.width, rgb.height, False, 0, [], None)
            for rank, cand in enumerate(enc.pixel.alternatives[: args.candidates]):
                if (path.stem, cand.factor, cand.family) in done:
                    continue
                row = {"image": path.stem, "bpp": args.bpp, "rank": rank, "factor": cand.factor,
                       "family": cand.family, "bytes": len(cand.payload), "bicubic_psnr": cand.score}  # fmt: skip
                for name, crop in [*((f"proxy{c:g}", c) for c in args.crop), ("full", 1.0)]:
                    t = time.perf_counter()
                    region = decode_region(rgb, cand.payload, dec, layers, crop, 0)
                    row[f"{name}_decode_s"] = time.perf_counter() - t
                    row[name] = {}
                    for a in args.alphas:
                        img = _blend(region, a)
                        row[name][str(a)] = {
                            "psnr": _psnr(img, region.reference), "dists": perceptual(region.reference, img),
                            "texture": texture_distance(region.reference, img), "bicubic_psnr": region.bicubic_db,
                        }  # fmt: skip
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(path.stem, rank, cand.factor, cand.family, flush=True)
    return summarize_proxy(rows_path)


def _blend(region, alpha):
    from codec.realism.detail import apply_detail

    return apply_detail(region.decoded, region.bicubic, alpha)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    from codec.realism.score import psnr

    return psnr(np.asarray(a), np.asarray(b))


def summarize_proxy(rows_path: Path, realisms=(0.0, 0.5, 1.0)) -> dict:
    """Per proxy crop and R: Spearman of U(R), proxy vs full, over candidates × α within each
    image (median over images); over candidates alone at the α nearest the prior; pooled
    over everything (each image's mean removed); and the regret: how much full-decode U
    the proxy's top pick loses against the full decode's own best (dB-equivalent)."""
    from codec.realism.loop import prior_alpha
    from codec.realism.score import utility

    rows = [json.loads(x) for x in Path(rows_path).read_text().splitlines()]
    by_image: dict[str, list] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    proxies = sorted(k for k in rows[0] if k.startswith("proxy") and not k.endswith("_s")) if rows else []
    result: dict = {"images": sorted(by_image), "rows": len(rows), "proxies": {}}
    for px in proxies:
        out = result["proxies"][px] = {"decode_s_median": float(np.median([r[f"{px}_decode_s"] for r in rows])),
                                       "full_decode_s_median": float(np.median([r["full_decode_s"] for r in rows]))}  # fmt: skip
        for R in realisms:
            def u(m, R=R):
                return utility(R, m["psnr"], m["dists"] if R > 0 else None, m["bicubic_psnr"]).utility

            per_image, per_cand, pooled_p, pooled_f, regret = [], [], [], [], []
            for rs in by_image.values():
                alphas = list(rs[0]["full"])
                p = [u(r[px][a]) for r in rs for a in alphas]
                fu = [u(r["full"][a]) for r in rs for a in alphas]
                if len(p) > 2:
                    per_image.append(spearman(p, fu))
                a0 = min(alphas, key=lambda a: abs(float(a) - prior_alpha(R)))
                if len(rs) > 2:
                    per_cand.append(spearman([u(r[px][a0]) for r in rs], [u(r["full"][a0]) for r in rs]))
                pooled_p += list(np.array(p) - np.mean(p))
                pooled_f += list(np.array(fu) - np.mean(fu))
                regret.append(max(fu) - fu[int(np.argmax(p))])
            out[f"R={R:g}"] = {
                "spearman_candidates_x_alpha_median": float(np.median(per_image)) if per_image else None,
                "spearman_candidates_at_prior_alpha_median": float(np.median(per_cand)) if per_cand else None,
                "spearman_pooled": spearman(pooled_p, pooled_f) if len(pooled_p) > 2 else None,
                "regret_mean": float(np.mean(regret)),
            }
    full = [m for r in rows for m in r["full"].values()]
    if full and "texture" in full[0]:  # the codec's built-in stand-in against DISTS (within images)
        per = []
        for rs in by_image.values():
            ms = [m for r in rs for m in r["full"].values()]
            per.append(spearman([m["texture"] for m in ms], [m["dists"] for m in ms]))
        result["texture_vs_dists_spearman_median"] = float(np.median(per))
    return result


def speed(args) -> list[dict]:
    """Encode seconds at 512² (each source resized) and what they buy: realism off vs the
    loop at several settings, each file decoded in full and measured (PSNR, DISTS)."""
    from codec.decode import get_decoder
    from codec.pipeline import decode, encode
    from codec.realism import LoopConfig
    from metrics.api import compute

    dec = get_decoder(args.decoder)
    dec.load() if hasattr(dec, "load") else None
    perceptual = dists_scorer() if args.perceptual == "dists" else None
    settings = [("off", None)] + [
        (f"R={R:g} N={n} crop={c:g}", LoopConfig(realism=R, candidates=n, crop=c))
        for R in args.realism for n, c in args.settings
    ]
    rows = []
    for path in _images(args.data, args.limit, args.images):
        rgb = Image.open(path).convert("RGB").resize((512, 512), Image.Resampling.BICUBIC)
        for name, cfg in settings:
            t = time.perf_counter()
            enc = encode(rgb, args.bpp, decoder_hint=args.decoder, realism=cfg, perceptual=perceptual, loop_decoder=dec)
            enc_s = time.perf_counter() - t
            img = decode(enc.data, decoder=dec).image
            m = compute(rgb, img, ["psnr", "dists"])
            rows.append({"image": path.stem, "setting": name, "encode_s": round(enc_s, 2),
                         "loop_decodes": enc.loop.decodes if enc.loop else 0, **m})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(args) -> str:
    """Markdown table of a `bench run --realism` folder: per condition and target, the mean
    of each metric and of encode/decode seconds over the images that finished; how many
    images lose more than 1 dB against their own file's bicubic decode; BD-rate on PSNR of
    each MISC condition against WebP (mean real bpp, mean PSNR per target)."""
    from codec.pipeline import read_layers
    from codec.realism.score import psnr

    from .bdrate import bd_rate

    out = Path(args.run)
    rows = [json.loads(p.read_text()) for p in sorted((out / "items").glob("*/*/*.json"))]
    rows = [r for r in rows if r.get("status") == "ok"]
    if args.common:  # only images every condition of a target finished (paired comparison)
        have: dict = {}
        for r in rows:
            have.setdefault(r["target_bpp"], {}).setdefault(r["image"], set()).add(r["codec"])
        conds = {b: set().union(*v.values()) for b, v in have.items()}
        rows = [r for r in rows if have[r["target_bpp"]][r["image"]] == conds[r["target_bpp"]]]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["codec"], r["target_bpp"]), []).append(r)
    names = [n for n in ("psnr", "ms_ssim", "lpips_alex", "dists", "niqe") if all(n in r["metrics"] for r in rows)]
    lines = ["| codec | bpp | n | real bpp | " + " | ".join(names) + " | encode s | decode s | >1 dB below own bicubic |",
             "|" + "---|" * (len(names) + 7)]  # fmt: skip
    curves: dict = {}
    for (codec, bpp), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        mean = {n: float(np.mean([r["metrics"][n] for r in rs])) for n in names}
        below = ""
        if codec.startswith("misc"):
            count = 0
            for r in rs:
                src = Image.open(r["source_path"]).convert("RGB")
                low = read_layers((out / r["bits"]).read_bytes()).lowres
                bic = psnr(np.asarray(low.resize(src.size, Image.Resampling.BICUBIC)), np.asarray(src))
                count += r["metrics"]["psnr"] < bic - 1.0
            below = f"{count}/{len(rs)}"
        bpp_mean = float(np.mean([r["real_bpp"] for r in rs]))
        curves.setdefault(codec, []).append((bpp_mean, mean["psnr"], len(rs)))
        lines.append(
            f"| {codec} | {bpp:g} | {len(rs)} | {bpp_mean:.4f} | "
            + " | ".join(f"{mean[n]:.3f}" if n != "psnr" else f"{mean[n]:.2f}" for n in names)
            + f" | {np.mean([r['encode_s'] for r in rs]):.1f} | {np.mean([r['decode_s'] for r in rs]):.1f} | {below} |"
        )
    if "webp" in curves:
        w = sorted(curves["webp"])
        lines += ["", "| codec | BD-rate on PSNR vs WebP (%) | targets |", "|---|---|---|"]
        for codec, pts in sorted(curves.items()):
            if codec.startswith("misc") and len(pts) >= 2:
                pts = sorted(pts)
                bd = bd_rate([p[0] for p in w], [p[1] for p in w], [p[0] for p in pts], [p[1] for p in pts])
                lines.append(f"| {codec} | {'no overlap' if bd is None else f'{bd:+.1f}'} | {len(pts)} |")
    return "\n".join(lines)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv=None) -> int:
    from codec.realism.loop import ALPHAS

    ap = argparse.ArgumentParser(prog="python -m bench.realism", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="markdown table of a bench run --realism folder")
    t.add_argument("run", type=Path)
    t.add_argument("--common", action="store_true", help="only images every condition of a target finished")
    for name in ("proxy", "speed"):
        p = sub.add_parser(name)
        p.add_argument("--data", type=Path, required=True)
        p.add_argument("--bpp", type=float, default=0.01)
        p.add_argument("--limit", type=int, default=None)
        p.add_argument("--images", type=lambda s: s.split(","), default=None, help="image stems, comma-separated")
        p.add_argument("--decoder", default="restore")
    sub.choices["proxy"].add_argument("--out", type=Path, required=True)
    sub.choices["proxy"].add_argument("--candidates", type=int, default=4)
    sub.choices["proxy"].add_argument("--crop", type=_floats, default=[0.3, 0.5], help="proxy crops (side fractions)")
    sub.choices["proxy"].add_argument("--alphas", type=_floats, default=list(ALPHAS), help="detail levels scored")
    sub.choices["proxy"].add_argument("--summary-only", action="store_true")
    sub.choices["speed"].add_argument("--realism", type=lambda s: [float(x) for x in s.split(",")], default=[0.5])
    sub.choices["speed"].add_argument("--perceptual", choices=("dists", "builtin"), default="dists")
    sub.choices["speed"].add_argument(
        "--settings", type=lambda s: [(int(n), float(c)) for n, c in (x.split(":") for x in s.split(","))],
        default=[(1, 0.3), (3, 0.3), (3, 0.5), (3, 1.0)], help="candidates:crop pairs, e.g. 1:0.3,3:0.5")
    args = ap.parse_args(argv)
    if args.cmd == "table":
        print(table(args))
    elif args.cmd == "proxy":
        if args.summary_only:
            print(json.dumps(summarize_proxy(args.out / f"proxy_{args.bpp:g}.jsonl"), indent=1))
        else:
            print(json.dumps(proxy(args), indent=1))
    else:
        speed(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
