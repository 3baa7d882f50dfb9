"""Validation table: our metrics against published / reference-implementation values.

    python -m metrics.validate            # prints a markdown table, exits 1 on a failed target
    python -m metrics.validate --csv out.csv

Images: the five TID2013 pairs of pyiqa's ResultsCalibra (fetched from the pyiqa 0.1.16
wheel into the metrics cache on first use, or by ``python -m metrics.fetch calibration``;
never committed: non-commercial licence).
References:
- "pyiqa-csv": the official-implementation rows of pyiqa's ResultsCalibra/
  calibration_summary.csv (official LPIPS / DISTS code; MATLAB SSIM, MS-SSIM, NIQE,
  PIQE on rgb2gray; skimage PSNR), printed there with 4 decimals (PSNR, PIQE: 2).
- "skimage": the reference implementation run here, for an exact comparison.
- "brisque pkg": brisque==0.2.0 itself (libsvm-official 3.36, its numpy-2 bug patched with
  .item()), run once on these images; values recorded below.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from .fetch import calibration_pairs, fetch_calibration

# Official-implementation values from pyiqa's ResultsCalibra/calibration_summary.csv.
PYIQA_REFERENCE: dict[str, dict[str, float]] = {
    "psnr": {"I03": 21.11, "I04": 20.99, "I06": 27.01, "I08": 23.30, "I19": 21.62},
    "ssim": {"I03": 0.6993, "I04": 0.9978, "I06": 0.9989, "I08": 0.9669, "I19": 0.6519},
    "ms_ssim": {"I03": 0.6733, "I04": 0.9996, "I06": 0.9998, "I08": 0.9566, "I19": 0.8462},
    "lpips_alex": {"I03": 0.7237, "I04": 0.2572, "I06": 0.0508, "I08": 0.0521, "I19": 0.4253},
    "dists": {"I03": 0.4742, "I04": 0.1424, "I06": 0.0682, "I08": 0.0287, "I19": 0.3123},
    "niqe": {"I03": 15.7536, "I04": 3.6549, "I06": 3.2355, "I08": 3.1840, "I19": 8.6352},
    "piqe": {"I03": 100.0, "I04": 21.62, "I06": 35.86, "I08": 41.15, "I19": 76.95},
}
# brisque==0.2.0's own scores of the distorted images (see module docstring).
BRISQUE_PKG_REFERENCE = {
    "I03": 102.34472596009127,
    "I04": 0.8408628695832192,
    "I06": 0.7470003570401502,
    "I08": 8.83515242798373,
    "I19": 89.88874645342318,
}
# Allowed |ours - reference|: the targets, plus the reference's printed rounding.
TOLERANCE = {
    ("lpips_alex", "pyiqa-csv"): 1e-3,
    ("dists", "pyiqa-csv"): 1e-3,
    ("niqe", "pyiqa-csv"): 0.1,
    ("psnr", "pyiqa-csv"): 0.005,
    ("ssim", "pyiqa-csv"): 5e-5,
    ("piqe", "pyiqa-csv"): 0.005,
    ("psnr", "skimage"): 1e-9,
    ("ssim", "skimage"): 1e-9,
    ("brisque_pypi", "brisque pkg"): 1e-6,
}


@dataclass
class Row:
    metric: str
    pair: str
    ours: float
    reference: float
    diff: float
    source: str
    tolerance: float | None  # None: reported, no target

    @property
    def passed(self) -> bool | None:
        return None if self.tolerance is None else self.diff <= self.tolerance


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def validation_rows(metrics_to_check: list[str] | None = None) -> list[Row]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from . import api
    from .images import matlab_rgb2gray

    pairs = calibration_pairs() or (fetch_calibration() and calibration_pairs())
    wanted = metrics_to_check or [*PYIQA_REFERENCE, "brisque_pypi"]
    rows: list[Row] = []
    names = [n for n in wanted if api.available([n])[n][0]]
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise RuntimeError(f"metrics unavailable for validation: {missing}: {api.available(missing)}")

    def add(metric: str, pair: str, ours: float, ref: float, source: str) -> None:
        rows.append(Row(metric, pair, ours, ref, abs(ours - ref), source, TOLERANCE.get((metric, source))))

    for name, ref_path, dist_path in pairs:
        ref, dist = _load(ref_path), _load(dist_path)
        values = api.compute(ref, dist, names)
        for metric in names:
            if metric in PYIQA_REFERENCE:
                add(metric, name, values[metric], PYIQA_REFERENCE[metric][name], "pyiqa-csv")
        if "psnr" in names:
            add("psnr", name, values["psnr"], peak_signal_noise_ratio(ref, dist, data_range=255), "skimage")
        if "ssim" in names:
            sk = structural_similarity(
                matlab_rgb2gray(ref),
                matlab_rgb2gray(dist),
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255,
            )
            add("ssim", name, values["ssim"], sk, "skimage")
        if "brisque_pypi" in names:
            add("brisque_pypi", name, values["brisque_pypi"], BRISQUE_PKG_REFERENCE[name], "brisque pkg")
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| metric | pair | ours | reference | abs diff | reference source | target | ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = "report only" if r.tolerance is None else f"<= {r.tolerance:g}"
        ok = "" if r.passed is None else ("yes" if r.passed else "NO")
        lines.append(
            f"| {r.metric} | {r.pair} | {r.ours:.6f} | {r.reference:.6f} | {r.diff:.2e} | {r.source} | {target} | {ok} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", help="also write the rows to this CSV file")
    parser.add_argument("--metrics", nargs="*", help="subset of metric names")
    args = parser.parse_args(argv)
    rows = validation_rows(args.metrics)
    print(markdown(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[*asdict(rows[0]), "passed"])
            writer.writeheader()
            for r in rows:
                writer.writerow({**asdict(r), "passed": r.passed})
    failed = [r for r in rows if r.passed is False]
    print(
        f"\n{len(rows) - len(failed)} of {len(rows)} rows within target"
        + (f"; failed: {len(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
