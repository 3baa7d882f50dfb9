"""`python -m bench report RUN_DIR`: rate–quality curves, a markdown table and BD-rates.

    per_image.csv ─▶ mean per (codec, target) over the images that fit ─┬─▶ report.md (table)
    per_condition.csv (set metrics) ────────────────────────────────────┼─▶ curves/<metric>.png
                                                                        └─▶ BD-rate(anchor vs each codec)

A condition where only some images fit (e.g. JPEG at 0.005 bpp) has a mean over a
different, easier subset of images; it is drawn hollow and kept out of lines and BD-rates,
and the table says how many images fit.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bdrate import bd_rate
from .measure import display_name, is_no_reference, lower_is_better
from .run import BASE_COLUMNS

CODEC_ORDER = ["misc", "jpeg", "webp", "avif", "jxl"]
COLORS = {"misc": "tab:red", "jpeg": "tab:gray", "webp": "tab:blue", "avif": "tab:green", "jxl": "tab:purple"}


@dataclass
class Condition:
    codec: str
    target_bpp: float
    n_images: int = 0
    n_fit: int = 0
    real_bpp: float = math.nan
    encode_s: float = math.nan
    decode_s: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # images that have a value, per metric

    @property
    def complete(self) -> bool:
        return self.n_fit == self.n_images and self.n_fit > 0

    def complete_for(self, name: str) -> bool:
        """Every image fits and has this metric (a resumed run may not have filled it in yet)."""
        return self.complete and self.counts.get(name, self.n_fit) >= self.n_fit


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else math.nan


def _num(s: str | None) -> float | None:
    if s is None or s == "":
        return None
    try:
        return float(s)
    except ValueError:
        return None


def load(run_dir: Path) -> tuple[list[Condition], list[str], list[str], dict[str, Any]]:
    """Conditions with their means, the per-image and set metric names, and run.json."""
    run_dir = Path(run_dir)
    per_image = run_dir / "per_image.csv"
    if not per_image.is_file():
        raise FileNotFoundError(f"{per_image} not found: run `python -m bench run ... --out {run_dir}` first")
    with open(per_image, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        pair_names = [c for c in (reader.fieldnames or []) if c not in BASE_COLUMNS]
    summary = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    conds = _conditions(rows, pair_names)
    set_names: list[str] = []
    pc = run_dir / "per_condition.csv"
    if pc.is_file():
        with open(pc, newline="") as f:
            reader = csv.DictReader(f)
            set_names = [c for c in (reader.fieldnames or []) if c not in ("codec", "target_bpp", "n_images")]
            for r in reader:
                c = conds.get((r["codec"], float(r["target_bpp"])))
                if c is not None:
                    for n in set_names:
                        v = _num(r.get(n))
                        c.metrics[n] = math.nan if v is None else v
    order = {c: i for i, c in enumerate(CODEC_ORDER)}
    out = sorted(conds.values(), key=lambda c: (order.get(c.codec, 99), c.codec, c.target_bpp))
    return out, pair_names, set_names, summary


def _conditions(rows: list[dict[str, str]], pair_names: list[str]) -> dict[tuple[str, float], Condition]:
    """Means per (codec, target) over the rows given (all of them, or one source kind)."""
    groups: dict[tuple[str, float], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[(r["codec"], float(r["target_bpp"]))].append(r)
    conds: dict[tuple[str, float], Condition] = {}
    for (codec, bpp), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        c = Condition(codec, bpp, n_images=len(rs), n_fit=len(ok))
        c.real_bpp = _mean([_num(r["real_bpp"]) for r in ok])
        c.encode_s = _mean([_num(r["encode_s"]) for r in ok])
        c.decode_s = _mean([_num(r["decode_s"]) for r in ok])
        c.metrics = {n: _mean([_num(r.get(n)) for r in ok]) for n in pair_names}
        c.counts = {n: sum(_num(r.get(n)) is not None for r in ok) for n in pair_names}
        conds[(codec, bpp)] = c
    return conds


def split_by_source_kind(run_dir: Path) -> dict[str, list[Condition]]:
    """source_kind ("natural", "aigi") → its conditions, per-image metrics only (set metrics
    such as FD are computed over all sources of a condition, so they are not split)."""
    with open(Path(run_dir) / "per_image.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        pair_names = [c for c in (reader.fieldnames or []) if c not in BASE_COLUMNS]
    order = {c: i for i, c in enumerate(CODEC_ORDER)}
    out: dict[str, list[Condition]] = {}
    for kind in ("natural", "aigi"):
        sub = [r for r in rows if (r.get("source_kind") or "natural") == kind]
        conds = _conditions(sub, pair_names).values()
        out[kind] = sorted(conds, key=lambda c: (order.get(c.codec, 99), c.codec, c.target_bpp))
    return out


def _f(x: float, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _digits(name: str) -> int:
    n = name.lower()
    return 2 if n.startswith(("psnr", "niqe", "piqe", "brisque", "fid", "fd")) else 4


def _cell(c: Condition, name: str) -> str:
    if not c.n_fit:
        return "—"
    text = _f(c.metrics.get(name, math.nan), _digits(name))
    k = c.counts.get(name, c.n_fit)
    return f"{text} (n={k})" if 0 < k < c.n_fit else ("—" if k == 0 else text)


def markdown_table(conds: list[Condition], metric_names: list[str]) -> str:
    shown = [f"{display_name(n)} {'↓' if lower_is_better(n) else '↑'}" for n in metric_names]
    head = ["codec", "target bpp", "fit", "real bpp", *shown, "encode s/img", "decode s/img"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in conds:
        cells = [c.codec, f"{c.target_bpp:g}", f"{c.n_fit}/{c.n_images}", _f(c.real_bpp, 5)]
        cells += [_cell(c, n) for n in metric_names]
        cells += [_f(c.encode_s, 3), _f(c.decode_s, 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bd_rates(
    conds: list[Condition], metric_names: list[str], anchor: str
) -> dict[str, dict[str, float | str | None]]:
    """codec → metric → BD-rate (%) of `anchor` against that codec, complete conditions only.

    Where the quality ranges do not overlap there is no BD-rate; the cell then says which
    side is better at every rate ("anchor better"/"anchor worse"), or None (too few points).
    """
    by_codec: dict[str, list[Condition]] = defaultdict(list)
    for c in conds:
        if c.complete:
            by_codec[c.codec].append(c)
    out: dict[str, dict[str, float | str | None]] = {}
    for codec in by_codec:
        if codec == anchor:
            continue
        out[codec] = {}
        for n in metric_names:
            ref = [c for c in by_codec[codec] if c.complete_for(n)]
            test = [c for c in by_codec.get(anchor, []) if c.complete_for(n)]
            q_ref = [c.metrics.get(n, math.nan) for c in ref]
            q_test = [c.metrics.get(n, math.nan) for c in test]
            value: float | str | None = bd_rate(
                [c.real_bpp for c in ref], q_ref, [c.real_bpp for c in test], q_test,
                higher_is_better=not lower_is_better(n),
            )  # fmt: skip
            if value is None:
                value = _no_overlap(q_ref, q_test, lower_is_better(n), anchor)
            out[codec][n] = value
    return out


def _no_overlap(q_ref: list[float], q_test: list[float], lower: bool, anchor: str) -> str | None:
    a = [x for x in q_ref if math.isfinite(x)]
    b = [x for x in q_test if math.isfinite(x)]
    if len(a) < 2 or len(b) < 2:
        return None
    sign = -1.0 if lower else 1.0
    if min(sign * x for x in b) > max(sign * x for x in a):
        return f"no overlap: {anchor} better"
    if max(sign * x for x in b) < min(sign * x for x in a):
        return f"no overlap: {anchor} worse"
    return None


def plot_curves(conds: list[Condition], metric_names: list[str], out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    codecs = list(dict.fromkeys(c.codec for c in conds))
    files: dict[str, Path] = {}

    def draw(ax: Any, name: str) -> None:
        for codec in codecs:
            cs = [
                c
                for c in conds
                if c.codec == codec and c.n_fit and math.isfinite(c.metrics.get(name, math.nan))
            ]
            full = [c for c in cs if c.complete_for(name)]
            part = [c for c in cs if not c.complete_for(name)]
            color = COLORS.get(codec)
            if full:
                ax.plot(
                    [c.real_bpp for c in full],
                    [c.metrics[name] for c in full],
                    "o-",
                    color=color,
                    label=codec,
                )
            if part:
                ax.plot([c.real_bpp for c in part], [c.metrics[name] for c in part], "o", mfc="none", color=color,
                        label=f"{codec} (some images do not fit)" if not full else None)  # fmt: skip
        ax.set_xscale("log")
        targets = sorted({c.target_bpp for c in conds})
        ax.set_xticks(targets, [f"{t:g}" for t in targets])
        ax.minorticks_off()
        ax.set_xlabel("bits per pixel (whole file, mean)")
        arrow = "↓ better" if lower_is_better(name) else "↑ better"
        ax.set_ylabel(f"{display_name(name)} ({arrow})")
        ax.grid(True, which="both", alpha=0.3)

    for name in metric_names:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        draw(ax, name)
        ax.set_title(f"{display_name(name)} vs rate (hollow: not every image fits / has it)", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{_safe(name)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files[name] = path
    if metric_names:
        cols = min(3, len(metric_names))
        rows = math.ceil(len(metric_names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
        for ax, name in zip(axes.flat, metric_names, strict=False):
            draw(ax, name)
        for ax in list(axes.flat)[len(metric_names) :]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        path = out_dir / "all.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files["all"] = path
    return files


def _resolved(run_dir: Path) -> str:
    """The decoder(s) MISC actually used, from the per-image CSV (auto resolves at run time)."""
    with open(run_dir / "per_image.csv", newline="") as f:
        used = sorted({r["decoder"] for r in csv.DictReader(f) if r["codec"] == "misc" and r["decoder"]})
    return f" (used: {', '.join(f'`{u}`' for u in used)})" if used else ""


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def report(run_dir: Path, anchor: str = "misc") -> dict[str, Path]:
    """Write report.md and curves/*.png into `run_dir`; returns their paths."""
    run_dir = Path(run_dir)
    conds, pair_names, set_names, summary = load(run_dir)
    names = [
        n for n in [*pair_names, *set_names] if any(math.isfinite(c.metrics.get(n, math.nan)) for c in conds)
    ]
    curves = plot_curves(conds, names, run_dir / "curves")
    # No-reference scores need not rise with rate (a sharpening decoder scores well at any
    # rate), so a rate gap at equal NIQE/PIQE/BRISQUE means little: BD-rates use the others.
    bd_names = [n for n in names if not is_no_reference(n)]
    bds = bd_rates(conds, bd_names, anchor) if any(c.codec == anchor for c in conds) else {}

    md = [f"# Benchmark report: {summary.get('data', run_dir)}", ""]
    md.append(
        f"{summary.get('images', '?')} images; targets {', '.join(f'{c:g}' for c in sorted({c.target_bpp for c in conds}))} bpp; "
        f"MISC decoder `{summary.get('decoder', '?')}`{_resolved(run_dir)}. Rates are whole files (8·bytes/pixels). Means are over "
        "the images that fit; `fit` says how many. Times are seconds per image on this machine "
        "(classical encode = the whole quality × downsampling search)."
    )
    md += ["", "## Mean per codec and target", "", markdown_table(conds, names), ""]
    if bds:
        md += [f"## BD-rate of {anchor} against each codec (%)", "",
               "Bjøntegaard delta rate, PCHIP on log-rate over the shared quality range, computed on the "
               "mean curves of conditions where every image fits. Negative: "
               f"{anchor} needs fewer bits for the same quality. `no overlap`: the quality ranges do not "
               "overlap (one side is better at every rate); `—`: fewer than two complete points.", ""]  # fmt: skip
        md.append("| against | " + " | ".join(display_name(n) for n in bd_names) + " |")
        md.append("|" + "---|" * (len(bd_names) + 1))
        for codec, vals in bds.items():
            cells = [v if isinstance(v, str) else _f(v, 1) for v in (vals.get(n) for n in bd_names)]
            md.append(f"| {codec} | " + " | ".join(cells) + " |")
        md.append("")
    split = split_by_source_kind(run_dir)
    md += ["## Natural vs AI-generated sources", "",
           "The same means over the natural sources and over the AI-generated ones (`source_kind`, "
           "from each source's generation metadata; see docs/AIGI.md). Set metrics are not split.", ""]  # fmt: skip
    for kind, title in (("natural", "Natural sources"), ("aigi", "AI-generated sources")):
        split_names = [n for n in pair_names if n in names]
        md += [f"### {title}", ""]
        md += [markdown_table(split[kind], split_names) if split[kind] else f"(no {kind} sources in this run)", ""]
    md += ["## Curves", ""] + [f"![{display_name(n)}](curves/{p.name})" for n, p in curves.items()] + [""]
    metrics_info = summary.get("metrics", {})
    notes = []
    if metrics_info.get("source") == "bench stand-in":
        notes.append(
            "metrics/ was not installed: PSNR is bench's own stand-in; no other metric was computed."
        )
    for n, why in (metrics_info.get("unavailable") or {}).items():
        if n != "*":
            notes.append(f"`{n}` not computed: {why}")
    for c, said in (summary.get("codec_notes") or {}).items():
        notes += [f"`{c}` encoder: {n}" for n in said]
    for c, why in (summary.get("codec_unavailable") or {}).items():
        notes.append(f"codec `{c}` not run: {why}")
    if summary.get("errors"):
        notes.append(f"{len(summary['errors'])} items failed (see errors.log).")
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    path = run_dir / "report.md"
    path.write_text("\n".join(md))
    return {"report": path, **{f"curve:{k}": v for k, v in curves.items()}}
