"""Load the text coder's shipped tables (data/misc-text-en-1.npz), once per process.

The file is checked against the SHA-256 that this version of the coder was built with: a
table that differs would decode every file into garbage, so it must fail loudly instead.
"""

from __future__ import annotations

import hashlib
import json
import threading
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codec.errors import ModelUnavailableError
from codec.textcoder.alphabet import BASE_SIZE

DATA_DIR = Path(__file__).resolve().parent / "data"
TABLE_FILE = DATA_DIR / "misc-text-en-1.npz"
TABLE_SHA256 = "2240bf29c31e840986399c2b337500c40bc51cf9f4dc6323ac3e04b2065545d7"
ORDER0_CAP = 4095

# Every text model this decoder knows: name -> (table file, the SHA-256 it was built with).
# A model's tables never change; new tables are a new model name and a new id in
# codec/bitstream.py, so files written with an older model keep decoding.
MODELS: dict[str, tuple[Path, str]] = {
    "text/misc-text-en-1": (TABLE_FILE, TABLE_SHA256),
    "text/misc-prompt-en-1": (
        DATA_DIR / "misc-prompt-en-1.npz",
        "142ece33b123eccdbfca01bfbf9d9ca327b13128bc0f00ba7bc90139a67ca799",
    ),
}


@dataclass
class Tables:
    meta: dict
    cm_order0: np.ndarray  # int64[BASE_SIZE], scaled to ORDER0_CAP
    cm_keys: np.ndarray  # uint32, sorted
    cm_ptr: np.ndarray  # int64
    cm_sym: np.ndarray  # int64
    cm_cnt: np.ndarray  # int64
    vocab: list[str]
    uni: np.ndarray  # int64 per word
    uni_cum: np.ndarray  # int64, len V+1
    wm_ptr: np.ndarray  # int64, len V+2 (last prev is '<s>')
    wm_next: np.ndarray  # int64
    wm_q: np.ndarray  # int64
    wm_rest: np.ndarray  # int64, per prev
    index: dict[str, int] = field(default_factory=dict)
    _prefix_cache: dict = field(default_factory=dict)
    _succ_cache: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def start_index(self) -> int:
        return len(self.vocab)

    def prefix(self, p: str):
        """(lo, hi, exact, bounds[27], uni_children[26], uni_exact) for words starting with p."""
        hit = self._prefix_cache.get(p)
        if hit is not None:
            return hit
        vocab = self.vocab
        lo = bisect_left(vocab, p)
        hi = bisect_left(vocab, p + "{", lo)
        exact = lo < hi and vocab[lo] == p
        first = lo + 1 if exact else lo
        bounds = [first]
        for c in "bcdefghijklmnopqrstuvwxyz":
            bounds.append(bisect_left(vocab, p + c, bounds[-1], hi))
        bounds.append(hi)
        b = np.array(bounds, dtype=np.int64)
        cum = self.uni_cum
        uni_children = cum[b[1:]] - cum[b[:-1]]
        uni_exact = int(self.uni[lo]) if exact else 0
        hit = (lo, hi, exact, b, uni_children, uni_exact)
        with self._lock:
            if len(self._prefix_cache) > 200_000:
                self._prefix_cache.clear()
            self._prefix_cache[p] = hit
        return hit

    def successors(self, prev: int):
        """(sorted next-word indices, cumulative q with a leading 0, rest) of a previous word."""
        hit = self._succ_cache.get(prev)
        if hit is not None:
            return hit
        a, b = int(self.wm_ptr[prev]), int(self.wm_ptr[prev + 1])
        nxt = self.wm_next[a:b]
        qcum = np.concatenate(([0], np.cumsum(self.wm_q[a:b])))
        hit = (nxt, qcum, int(self.wm_rest[prev]))
        with self._lock:
            if len(self._succ_cache) > 50_000:
                self._succ_cache.clear()
            self._succ_cache[prev] = hit
        return hit


def _undelta_within(d: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Inverse of build._delta_within: cumulative sums restarting at each previous word."""
    n = len(d)
    total = np.cumsum(d)
    mark = np.zeros(n, dtype=bool)
    mark[ptr[:-1][ptr[:-1] < n]] = True
    start = np.maximum.accumulate(np.where(mark, np.arange(n), 0))
    return total - np.concatenate(([0], total))[start]


_CACHE: dict[Path, Tables] = {}
_LOAD_LOCK = threading.Lock()


def tables_for(model: str) -> Tables:
    """The shipped tables of a text model named in a file's model list (loaded once)."""
    if model not in MODELS:
        raise ModelUnavailableError(f"unknown text model {model!r}; this decoder has {', '.join(MODELS)}")
    path, sha = MODELS[model]
    return load_tables(path, sha)


def load_tables(path: Path = TABLE_FILE, expected_sha256: str | None = TABLE_SHA256) -> Tables:
    shipped = any(path == p for p, _ in MODELS.values())
    if shipped and path in _CACHE:
        return _CACHE[path]
    with _LOAD_LOCK:
        if shipped and path in _CACHE:
            return _CACHE[path]
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ModelUnavailableError(
                f"text model tables missing ({path}): rebuild them with `python -m codec.textcoder.build`"
            ) from e
        if expected_sha256 is not None and hashlib.sha256(raw).hexdigest() != expected_sha256:
            raise ModelUnavailableError(
                f"text model tables {path} differ from the ones they were built as "
                "(sha256 mismatch): restore the shipped file"
            )
        import io

        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            arr = {k: z[k] for k in z.files}
        meta = json.loads(arr["meta"].tobytes().decode())
        order0 = arr["cm_order0"].astype(np.int64)
        total = int(order0.sum())
        order0 = np.maximum(1, order0 * ORDER0_CAP // max(total, 1)) if total > ORDER0_CAP else order0
        order0 = order0[:BASE_SIZE]
        vocab = arr["wm_vocab"].tobytes().decode("ascii").split("\n")
        uni = arr["wm_uni"].astype(np.int64)
        t = Tables(
            meta=meta,
            cm_order0=order0,
            cm_keys=np.cumsum(arr["cm_keys_delta"].astype(np.int64)).astype(np.uint32),
            cm_ptr=np.concatenate(([0], np.cumsum(arr["cm_len"].astype(np.int64)))),
            cm_sym=arr["cm_sym"].astype(np.int64),
            cm_cnt=arr["cm_cnt"].astype(np.int64),
            vocab=vocab,
            uni=uni,
            uni_cum=np.concatenate(([0], np.cumsum(uni))),
            wm_ptr=arr["wm_ptr"].astype(np.int64),
            wm_next=_undelta_within(arr["wm_next_delta"].astype(np.int64), arr["wm_ptr"].astype(np.int64)),
            wm_q=arr["wm_q"].astype(np.int64),
            wm_rest=arr["wm_rest"].astype(np.int64),
        )
        t.index = {w: i for i, w in enumerate(vocab)}
        if shipped:
            _CACHE[path] = t
        return t
