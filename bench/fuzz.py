"""python -m bench.fuzz --cases N: attack the decoder with damaged .misc files.

    seed files ─▶ mutate(case i) ─▶ bytes ─▶ worker process: decode ─▶ outcome class
                                             └─ watchdog: no answer in --timeout s ─▶ hang (worker killed)

The seed files are real files written by codec.pipeline.encode (pixel layer, text, maps,
a recipe, grayscale, a seed). Most mutations recompute the checksum, so they get past
it to the field parsers, the text and map coders, the recipe parser and dav1d; a few do
not, to keep the checksum itself honest. Case i is the same bytes on every run (its
random generator is seeded with "SEED:i"), so ``--first`` replays one.

Every case runs in a worker process with a per-case watchdog, because the failures
worth finding are the ones an in-process loop cannot survive: a decoder that never
returns, or one that takes the process down. Outcome classes:

    ok        decoded to an image, and everything the demo's /decode would send is
              valid UTF-8 JSON
    refused   a typed CodecError: what a bad file must get
    untyped   any other exception: a bug (the edge must say what is wrong, typed)
    hang      no answer within --timeout seconds: the worker is killed and replaced
    crash     the worker died (a signal, an abort)

Inputs of the last three classes are saved to --out as ``<class>-<case>.misc``. The exit
status is 1 when any case is in those classes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

CLASSES = ("ok", "refused", "untyped", "hang", "crash")
FAILURES = ("untyped", "hang", "crash")
KINDS = ("raw", "header", "pixel", "text", "maps", "recipe", "body", "sections")
# Pixel sections get the most cases: dav1d is the one part not written in Python.
WEIGHTS = (1, 2, 6, 3, 2, 1, 3, 2)
DEFAULT_TIMEOUT = 20.0
READY_TIMEOUT = 300.0


# ----------------------------------------------------------------------------- seed files


def seed_files() -> list[bytes]:
    """A handful of real files covering every section and header field."""
    import numpy as np
    from PIL import Image

    from codec.aigi.recipe import Recipe
    from codec.obu import with_raw_pixels
    from codec.pipeline import encode
    from codec.records import Description, Item

    rng = np.random.default_rng(11)

    def picture(w: int, h: int) -> Image.Image:
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1)
        noise = rng.integers(0, 40, (h, w, 3))
        return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")

    desc = Description(
        [Item("red barn", "weathered wooden walls"), Item("sky", "pale blue, thin clouds")],
        "A red barn under a pale sky. Café au lait \u2014 \u00e9t\u00e9 \u65e5\u672c.",
    )
    grid_a = np.zeros((8, 8), bool)
    grid_a[3:8, 1:5] = True
    grid_b = np.zeros((8, 8), bool)
    grid_b[0:3, :] = True
    recipe = Recipe(source="a1111", prompt="a red barn, oil painting", seed=1234, steps=20, cfg_scale=7.0,
                    width=96, height=80, sampler="Euler a", model="sd15")
    return [
        encode(picture(96, 80), 0.2, description=desc, maps=[grid_a, grid_b], decoder_hint="bicubic").data,
        encode(picture(120, 64), 0.1, seed=7, decoder_hint="restore").data,
        encode(picture(64, 64).convert("L"), 0.3, decoder_hint="bicubic").data,
        encode(picture(96, 80), 0.3, description=Description([], ""), recipe=recipe, decoder_hint="bicubic").data,
        encode(picture(160, 96), 0.05, description=desc, decoder_hint="bicubic").data,
        # a file from before the compact pixel form (raw AV1 OBUs: codec.obu)
        with_raw_pixels(encode(picture(112, 72), 0.1, decoder_hint="bicubic").data),
    ]


# ----------------------------------------------------------------------------- mutations


def _recrc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def _damage(buf: bytes, rng: random.Random) -> bytes:
    """One to a few random edits of `buf`: bit flips, byte sets, a cut, an insertion, a splice."""
    d = bytearray(buf)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(6)
        if op == 0 and d:
            for _ in range(rng.randint(1, 4)):
                d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        elif op == 1 and d:
            d[rng.randrange(len(d))] = rng.choice((0, 0xFF, 0x80, 0x7F, rng.randrange(256)))
        elif op == 2 and d:
            d = d[: rng.randrange(len(d))]
        elif op == 3:
            pos = rng.randrange(len(d) + 1)
            d[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 4 and len(d) > 2:
            a, b = sorted(rng.sample(range(len(d)), 2))
            d[a:b] = d[a:b] * rng.randint(2, 4)  # a repeated run (OBU and varint loops)
        elif op == 5 and d:
            a = rng.randrange(len(d))
            d[a:] = bytes(rng.randrange(256) for _ in range(len(d) - a))
    return bytes(d)


def _section_with(f, type_: int, payload: bytes):
    from codec import bitstream as bs

    return [bs.Section(s.type, payload) if s.type == type_ else s for s in f.sections]


def _pack_unchecked(f) -> bytes:
    """bitstream.pack without its validation: a writer that breaks the rules."""
    from codec import bitstream as bs

    return _recrc(bs.header_bytes(f) + b"".join(bs.section_bytes(s) for s in f.sections))


def mutate(seeds: list[bytes], case: int, seed: int = 0) -> tuple[str, bytes]:
    """Case `case`'s mutation kind and bytes: the same on every run."""
    import dataclasses

    from codec import bitstream as bs

    rng = random.Random(f"{seed}:{case}")
    data = rng.choice(seeds)
    kind = rng.choices(KINDS, WEIGHTS)[0]
    f = bs.unpack(data)
    if kind == "raw":  # the checksum is left as it is: it must refuse these
        return kind, _damage(data, rng)
    if kind == "body":
        return kind, _recrc(_damage(data[:-4], rng))
    if kind == "header":
        big = (1, 2, 7, 8, 9, 1023, 1024, 1025, 2048, 4096, 8192, 16383, 16384, 16385, 2**20)
        field_ = rng.randrange(4)
        if field_ == 0:
            f = dataclasses.replace(f, width=rng.choice(big), height=rng.choice(big))
        elif field_ == 1:
            f = dataclasses.replace(f, seed=rng.choice((0, 1, 2**31, 2**32 - 1)))
        elif field_ == 2:
            f = dataclasses.replace(f, models=rng.sample(sorted(bs.KNOWN_MODELS.values()), rng.randint(1, 3)))
        else:
            f = dataclasses.replace(f, grayscale=not f.grayscale)
        return kind, _recrc(_damage(_pack_unchecked(f)[:-4], rng) if rng.random() < 0.3 else _pack_unchecked(f)[:-4])
    if kind == "sections":
        secs = list(f.sections)
        op = rng.randrange(4)
        if op == 0 and secs:
            secs.pop(rng.randrange(len(secs)))
        elif op == 1:
            rng.shuffle(secs)
        elif op == 2 and secs:
            s = rng.choice(secs)
            secs.append(bs.Section(rng.choice((s.type, rng.randrange(1, 64))), s.payload))
        else:
            other = bs.unpack(rng.choice(seeds))  # a layer from another file
            if other.sections:
                s = rng.choice(other.sections)
                secs = [x for x in secs if x.type != s.type] + [s]
        return kind, _pack_unchecked(dataclasses.replace(f, sections=secs))
    pixel = next(s.type for s in f.sections if s.type in bs.PIXEL_TYPES)  # raw or compact form
    type_ = {"pixel": pixel, "text": bs.SectionType.TEXT, "maps": bs.SectionType.MAPS,
             "recipe": bs.SectionType.RECIPE}[kind]
    payload = f.section(type_)
    if payload is None:  # this seed has no such layer: damage the pixel layer instead
        kind, type_, payload = "pixel", pixel, f.section(pixel)
    return kind, _pack_unchecked(dataclasses.replace(f, sections=_section_with(f, type_, _damage(payload, rng))))


# ----------------------------------------------------------------------------- one case


def run_case(data: bytes) -> tuple[str, str]:
    """Decode `data` as the CLI's decode and info and the demo's /decode do; (class, detail)."""
    from codec.decode import get_decoder
    from codec.errors import CodecError
    from codec.pipeline import info, read_layers

    try:
        layers = read_layers(data)
        image = get_decoder("bicubic").decode(layers).image
        answer = {
            "size": list(image.size),
            "info": info(data),
            "description": layers.description.to_dict() if layers.description else None,
            "recipe": repr(layers.recipe),
        }
        json.dumps(answer, ensure_ascii=False).encode("utf-8")  # what /decode sends
    except CodecError as e:  # numbers out, so that alike refusals count together
        return "refused", f"{type(e).__name__}: {re.sub(r'(?<![A-Za-z])[0-9]+', 'N', ' '.join(str(e).split()))[:90]}"
    except Exception as e:  # noqa: BLE001 - the point is to see anything else
        return "untyped", f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return "ok", ""


def _worker() -> int:
    """Read length-prefixed cases on stdin, answer one JSON line each on stdout."""
    import av

    av.logging.set_level(av.logging.PANIC)
    from codec import textcoder
    from codec.textcoder.tables import tables_for

    for model in textcoder.TEXT_MODELS:
        tables_for(model)
    import codec.aigi.section  # noqa: F401
    import codec.maps  # noqa: F401

    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    inp = sys.stdin.buffer
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return 0
        (n,) = struct.unpack("<I", head)
        cls, detail = run_case(inp.read(n))
        out.write(json.dumps([cls, detail]).encode() + b"\n")
        out.flush()


# ----------------------------------------------------------------------------- the pool


@dataclass
class Report:
    cases: int = 0
    counts: Counter = field(default_factory=Counter)
    by_kind: dict[str, Counter] = field(default_factory=dict)
    details: Counter = field(default_factory=Counter)  # (class, refusal type or exception)
    saved: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, case: int, kind: str, cls: str, detail: str) -> None:
        self.cases += 1
        self.counts[cls] += 1
        self.by_kind.setdefault(kind, Counter())[cls] += 1
        self.details[(cls, detail)] += 1

    @property
    def failures(self) -> int:
        return sum(self.counts[c] for c in FAILURES)

    def table(self) -> str:
        lines = [f"{self.cases} cases in {self.seconds:.0f} s", "",
                 "| kind | " + " | ".join(CLASSES) + " |", "|---|" + "---|" * len(CLASSES)]
        for kind in KINDS:
            if kind in self.by_kind:
                lines.append(f"| {kind} | " + " | ".join(str(self.by_kind[kind][c]) for c in CLASSES) + " |")
        lines.append("| **all** | " + " | ".join(str(self.counts[c]) for c in CLASSES) + " |")
        lines += ["", "most frequent answers:"]
        for (cls, detail), n in self.details.most_common(15):
            lines.append(f"  {n:7d}  {cls:8s} {detail}")
        if self.saved:
            lines += ["", "saved failing inputs:", *(f"  {p}" for p in self.saved[:20])]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "cases": self.cases, "seconds": round(self.seconds, 1), "counts": {c: self.counts[c] for c in CLASSES},
            "by_kind": {k: {c: v[c] for c in CLASSES} for k, v in self.by_kind.items()},
            "saved": self.saved,
        }


class _Worker:
    """One worker process; restarted after a hang or a crash."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.buf = b""

    def start(self) -> None:
        root = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fuzz", "--worker"], cwd=root, env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.buf = b""
        if self._line(READY_TIMEOUT) != b"ready":
            self.stop()
            raise RuntimeError("a fuzz worker did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
        self.proc = None

    def _line(self, timeout: float) -> bytes | None:
        """The next line from the worker; None on timeout, b"" when it died."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return b""
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def run(self, data: bytes, timeout: float) -> tuple[str, str]:
        if self.proc is None:
            self.start()
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            line = b""
        else:
            line = self._line(timeout)
        if line is None:
            self.stop()
            return "hang", f"no answer in {timeout:g} s"
        if line == b"":
            code = self.proc.wait()
            self.stop()
            name = signal.Signals(-code).name if code < 0 else f"exit {code}"
            return "crash", name
        cls, detail = json.loads(line)
        return cls, detail


def run(
    cases: int, seed: int = 0, jobs: int = 2, timeout: float = DEFAULT_TIMEOUT, out: Path | None = None,
    first: int = 0, progress=None,
) -> Report:
    """Run cases first..first+cases-1 over `jobs` workers; failing inputs saved to `out`."""
    seeds = seed_files()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    report = Report()
    lock = threading.Lock()
    todo = iter(range(first, first + cases))
    t0 = time.perf_counter()

    def slot() -> None:
        worker = _Worker(env)
        try:
            while True:
                with lock:
                    case = next(todo, None)
                if case is None:
                    return
                kind, data = mutate(seeds, case, seed)
                cls, detail = worker.run(data, timeout)
                with lock:
                    report.add(case, kind, cls, detail)
                    if cls in FAILURES and out is not None:
                        out.mkdir(parents=True, exist_ok=True)
                        path = out / f"{cls}-{seed}-{case}.misc"
                        path.write_bytes(data)
                        report.saved.append(f"{path} ({kind}: {detail})")
                    if progress is not None:
                        progress(report)
        finally:
            worker.stop()

    threads = [threading.Thread(target=slot, daemon=True) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0, help="mutation seed (case i of seed s is always the same)")
    ap.add_argument("--first", type=int, default=0, help="index of the first case (to replay or resume)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per case before it is a hang")
    ap.add_argument("--out", type=Path, default=Path("fuzz-failures"), help="where failing inputs are saved")
    ap.add_argument("--json", type=Path, default=None, help="also write the counts as JSON here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return _worker()
    if args.cases < 1 or args.jobs < 1 or not args.timeout > 0:
        ap.error("--cases and --jobs must be at least 1 and --timeout positive")
    every = max(1, args.cases // 20)

    def progress(r: Report) -> None:
        if r.cases % every == 0:
            c = r.counts
            print(f"{r.cases}/{args.cases}: " + ", ".join(f"{k} {c[k]}" for k in CLASSES), file=sys.stderr, flush=True)

    report = run(args.cases, args.seed, args.jobs, args.timeout, args.out, args.first, progress)
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
