"""The benchmark's view of metrics/: which metrics run here, and one call per pair or set.

metrics/ owns every metric. This module only asks it what is available, splits the names
into per-image (full- and no-reference) and per-set (FID, FD-VGG16, KID...) metrics, and
keeps the reason for every metric that cannot run, so a run says what is missing instead
of silently leaving columns out.

Where metrics/ cannot be imported, PSNR is computed here as a clearly labelled stand-in
(``source == "bench stand-in"``), and nothing else.

Asking for every metric (no ``--metrics``) makes metrics/ try to load CLIP, which without
network retries the model hub for minutes unless ``HF_HUB_OFFLINE=1`` is set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

# Metrics where a lower value is better (for BD-rate and for the direction in the report).
LOWER_IS_BETTER_PREFIXES = ("lpips", "dists", "niqe", "piqe", "brisque", "fid", "fd", "kid", "mse")


def _info(name: str) -> Any | None:
    m = _metrics_module()
    if m is None or not hasattr(m, "info"):
        return None
    try:
        return m.info(name)
    except Exception:  # noqa: BLE001 - a name metrics/ does not know
        return None


def lower_is_better(name: str) -> bool:
    meta = _info(name)
    if meta is not None and hasattr(meta, "higher_is_better"):
        return not meta.higher_is_better
    n = name.lower().replace("-", "_")
    return n.startswith(LOWER_IS_BETTER_PREFIXES)


def is_no_reference(name: str) -> bool:
    meta = _info(name)
    if meta is not None and hasattr(meta, "kind"):
        return meta.kind == "no-reference"
    return name.lower().startswith(("niqe", "piqe", "brisque"))


def display_name(name: str) -> str:
    """How metrics/ prints a metric (e.g. fd_vgg16 → FD-VGG16, never FID)."""
    meta = _info(name)
    return str(getattr(meta, "display_name", name)) if meta is not None else name


@dataclass
class MetricPlan:
    """What a run measures, and why the rest is not measured."""

    pair: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    source: str = "metrics"

    def to_dict(self) -> dict[str, Any]:
        return {"pair": self.pair, "sets": self.sets, "unavailable": self.unavailable, "source": self.source}


def _metrics_module() -> Any | None:
    try:
        import metrics
    except Exception:  # noqa: BLE001 - metrics/ not there (yet) or broken: fall back, say so
        return None
    if all(hasattr(metrics, f) for f in ("compute", "compute_set", "available")):
        return metrics
    return None


def _is_set_metric(name: str, info: Any) -> bool:
    meta = _info(name)
    kind = getattr(meta, "kind", None)
    if kind is None and isinstance(info, dict):
        kind = info.get("kind") or info.get("type")
    if kind is not None:
        return str(kind).lower() in ("set", "set-level", "distribution")
    n = name.lower().replace("-", "_")
    return n.startswith(("fid", "fd_", "fd", "kid"))


def _availability(info: Any) -> tuple[bool, str]:
    if isinstance(info, tuple):  # metrics.available(): (is_available, reason)
        return bool(info[0]), "" if info[0] else str(info[1])
    if isinstance(info, bool):
        return info, "" if info else "not available"
    if isinstance(info, str):
        return False, info
    if info is None:
        return True, ""
    if isinstance(info, dict):
        ok = bool(info.get("available", True))
        return ok, str(info.get("reason", "")) if not ok else ""
    ok = bool(getattr(info, "available", True))
    return ok, str(getattr(info, "reason", "") or "") if not ok else ""


def plan(requested: Sequence[str] | None = None) -> MetricPlan:
    """The metrics a run will compute; `requested` None means every available one."""
    m = _metrics_module()
    if m is None:
        p = MetricPlan(pair=["psnr"], source="bench stand-in")
        p.unavailable["*"] = "metrics/ is not installed yet: only a stand-in PSNR computed by bench.measure"
        if requested:
            p.pair = [n for n in requested if n == "psnr"]
            for n in requested:
                if n != "psnr":
                    p.unavailable[n] = "metrics/ is not installed"
        return p
    try:
        avail = m.available(list(requested)) if requested else m.available()
    except Exception as e:  # noqa: BLE001 - e.g. an unknown name on the command line
        raise ValueError(f"metrics: {e}") from e
    items = avail.items() if isinstance(avail, dict) else ((n, True) for n in avail)
    p = MetricPlan()
    for name, info in items:
        if requested and name not in requested:
            continue
        ok, why = _availability(info)
        if ok and getattr(_info(name), "needs_text", False):
            p.unavailable[name] = "needs a caption per image; the benchmark has none"
        elif not ok:
            p.unavailable[name] = why or "not available"
        elif _is_set_metric(name, info):
            p.sets.append(name)
        else:
            p.pair.append(name)
    for n in requested or []:
        if n not in p.pair and n not in p.sets and n not in p.unavailable:
            p.unavailable[n] = "unknown to metrics/"
    return p


def _psnr(ref: Image.Image, dist: Image.Image) -> float:
    a = np.asarray(ref.convert("RGB"), dtype=np.float64)
    b = np.asarray(dist.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


# PSNR of identical images is infinite; JSON, CSV and means need a number, so it is written
# as this value (the usual convention), which no lossy reconstruction of 8-bit images reaches.
PSNR_IDENTICAL = 100.0


def _clean(values: dict[str, Any], names: Sequence[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for n in names:
        v = values.get(n)
        if hasattr(v, "value"):  # a result record rather than a bare number
            v = v.value
        try:
            x = float(v) if v is not None else None
        except (TypeError, ValueError):
            x = None
        if x == math.inf and n.lower().startswith("psnr"):
            x = PSNR_IDENTICAL  # a bit-exact reconstruction (e.g. an AIGI regenerated), not a missing value
        out[n] = x if x is not None and math.isfinite(x) else None
    return out


def compute_pair(
    p: MetricPlan, reference: Image.Image, distorted: Image.Image, names: Sequence[str] | None = None
) -> dict[str, float | None]:
    """The plan's per-image metrics (or only `names` of them: a resumed run fills gaps)."""
    wanted = [n for n in p.pair if names is None or n in names]
    if not wanted:
        return {}
    if p.source == "bench stand-in":
        return _clean({"psnr": _psnr(reference, distorted)}, wanted)
    m = _metrics_module()
    assert m is not None
    return _clean(m.compute(reference, distorted, names=wanted), wanted)


def compute_set(
    p: MetricPlan, references: Sequence[Image.Image], distorteds: Sequence[Image.Image]
) -> dict[str, float | None]:
    if not p.sets or len(references) < 2 or len(distorteds) < 2:  # a set of one has no spread
        return {n: None for n in p.sets}
    m = _metrics_module()
    assert m is not None
    try:
        values = m.compute_set(list(references), list(distorteds), names=list(p.sets), progress=False)
    except TypeError:  # a compute_set without the progress flag
        values = m.compute_set(list(references), list(distorteds), names=list(p.sets))
    return _clean(values, p.sets)
