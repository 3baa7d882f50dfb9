"""Install-time fetch of the two things pip cannot install directly.

1. NIQE's pristine model, ``basicsr/metrics/niqe_pris_params.npz`` inside the
   basicsr==1.4.2 sdist. basicsr cannot be pip-installed here (heavy build deps), so we
   ``pip download`` the sdist (--no-build-isolation: nothing is built) and extract that
   one member, checking its SHA-256.
2. pyiqa's calibration images (five TID2013 pairs in ``ResultsCalibra/``), used only to
   validate our metrics against pyiqa's published reference values. pyiqa is under a
   non-commercial licence, so the images are not committed: they are taken from the
   pyiqa==0.1.16 wheel into this folder's ignored ``data/`` at validation time.

    python -m metrics.fetch            # both
    python -m metrics.fetch niqe       # only the NIQE parameters

Everything goes through pip, the ordinary client of PyPI.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
NIQE_FILE = DATA_DIR / "niqe_pris_params.npz"
NIQE_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
CALIB_DIR = DATA_DIR / "pyiqa_calibration"
CALIB_NAMES = ("I03", "I04", "I06", "I08", "I19")
PYIQA_WHEEL_SHA256 = "42bbcf1c274a8b53f040a3ec5ec304a15b7725afb5a85b81050e9cc7e6d09ed4"


class FetchError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pip_download(args: list[str], dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    files = [p for p in dest.iterdir() if p.is_file()]
    if proc.returncode != 0 or not files:
        raise FetchError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return files[0]


def fetch_niqe(force: bool = False) -> Path:
    """Put niqe_pris_params.npz into metrics/data/ (verified by SHA-256)."""
    if NIQE_FILE.is_file() and not force and _sha256(NIQE_FILE) == NIQE_SHA256:
        return NIQE_FILE
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = _pip_download(["basicsr==1.4.2", "--no-binary", "basicsr", "--no-build-isolation"], Path(tmp))
        with tarfile.open(sdist, "r:gz") as tar:
            member = tar.getmember("basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz")
            if not member.isfile():
                raise FetchError("niqe_pris_params.npz in the sdist is not a regular file")
            data = tar.extractfile(member).read()
    if hashlib.sha256(data).hexdigest() != NIQE_SHA256:
        raise FetchError("niqe_pris_params.npz has an unexpected SHA-256; refusing it")
    NIQE_FILE.write_bytes(data)
    return NIQE_FILE


def calibration_pairs() -> list[tuple[str, Path, Path]]:
    """[(name, reference path, distorted path)] if fetched, else []."""
    pairs = [
        (n, CALIB_DIR / "ref_dir" / f"{n}.bmp", CALIB_DIR / "dist_dir" / f"{n}.bmp") for n in CALIB_NAMES
    ]
    return pairs if all(r.is_file() and d.is_file() for _, r, d in pairs) else []


def fetch_calibration(force: bool = False) -> Path:
    """Extract pyiqa 0.1.16's ResultsCalibra/{ref_dir,dist_dir}/*.bmp into metrics/data/."""
    if calibration_pairs() and not force:
        return CALIB_DIR
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download(["pyiqa==0.1.16", "--only-binary", ":all:"], Path(tmp))
        if _sha256(wheel) != PYIQA_WHEEL_SHA256:
            raise FetchError("pyiqa wheel has an unexpected SHA-256; refusing it")
        with zipfile.ZipFile(wheel) as zf:
            for name in CALIB_NAMES:
                for sub in ("ref_dir", "dist_dir"):
                    target = CALIB_DIR / sub / f"{name}.bmp"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(f"ResultsCalibra/{sub}/{name}.bmp"))
    return CALIB_DIR


def main(argv: list[str] | None = None) -> int:
    what = (argv if argv is not None else sys.argv[1:]) or ["niqe", "calibration"]
    for item in what:
        if item == "niqe":
            print(f"NIQE parameters: {fetch_niqe()}")
        elif item == "calibration":
            print(f"pyiqa calibration images: {fetch_calibration()}")
        else:
            print(f"unknown item {item!r} (niqe, calibration)", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
