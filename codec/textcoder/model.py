"""The probability model of the text coder: a character model mixed with a word model.

For every symbol it returns integer frequencies over the current alphabet (never zero), and
it learns from each coded symbol; encoder and decoder run it in the same order, so they
see the same numbers. All arithmetic is on integers.

    history ─┬─> character model: orders 0..6, shipped counts (orders ≤ 5, Kneser-Ney
             │   counts from WordNet, fortunes and caption text) + counts of this text,
             │   blended by absolute discounting                            ─> Pc
             └─> word model (inside or at the start of an ASCII word): the words that
                 extend the current prefix, weighted by P(word | previous word)
                 (wordsegment pairs + caption pairs), P(word) (wordfreq) and a cache
                 of the words already used in this description; letters split into
                 cases and word ends spread over punctuation as Pc says      ─> Pw
    P = w·Pw + (1-w)·Pc, w adapted online per context bucket (log-loss gradient)
"""

from __future__ import annotations

import numpy as np

from codec.textcoder.alphabet import (
    BASE_SIZE,
    CHAR_TO_ID,
    LETTER_IDS,
    UPPER_IDS,
    context_keys,
    prev_word,
)
from codec.textcoder.tables import Tables

DYN_ORDER = 6  # longest context of the adaptive (this text) counts
T_CHAR = 1 << 24  # the character model's distribution sums to about this
# absolute discount per order (in 1/16 of a count), orders 0..DYN_ORDER
DISCOUNT = (10, 12, 13, 14, 14, 14, 14)
# weight of one occurrence in this text against the shipped counts, per order
DYN_WEIGHT = (1, 1, 1, 1, 2, 3, 4)
W_ONE = 1 << 16
# The constants of this module were set on a development split of the training captions
# (tables built from the other half), never on the held-out corpus.
LR = 3  # learning rate of the mixing weights (>> 8)
# word model: weights (out of 256) of the plain unigram and of the pair model; the cache of
# words used earlier gets min(CACHE_MAX, CACHE_BASE + CACHE_STEP * distinct words so far)
UNI_W = 12
PAIR_W = 188
CACHE_BASE, CACHE_STEP, CACHE_MAX = 4, 1, 32

_LETTERS = np.array(LETTER_IDS, dtype=np.int64)
_UPPERS = np.array(UPPER_IDS, dtype=np.int64)
_IS_LETTER_ID = np.zeros(BASE_SIZE, dtype=bool)
_IS_LETTER_ID[_LETTERS] = True
_IS_LETTER_ID[_UPPERS] = True
_ID_TO_LOWER = {i: chr(ord("a") + k) for k, i in enumerate(LETTER_IDS)}
_ID_TO_LOWER.update({i: chr(ord("a") + k) for k, i in enumerate(UPPER_IDS)})

# mixing buckets: 0-2 word starts (after space with a pair context / after space without /
# after anything else), then inside a word by prefix length 1..4+, with or without pair context
N_BUCKETS = 11
W_INIT = (48000, 38000, 38000, 50000, 52000, 54000, 54000, 44000, 48000, 50000, 50000)


class ModelState:
    """Everything the model knows while coding one description."""

    def __init__(self, tables: Tables) -> None:
        self.t = tables
        self.alphabet_size = BASE_SIZE
        self.is_letter = _IS_LETTER_ID.copy()
        self.dyn: dict[int, dict[int, int]] = {}
        self.dyn0: dict[int, int] = {}
        self.weights = list(W_INIT)
        self.cache_counts: dict[int, int] = {}
        self._cache_arrays: tuple[np.ndarray, np.ndarray, int] | None = None
        self.hist: list[int] = []
        self.last_word: str | None = None
        self.gap = ""
        self.word = ""  # lowercase letters of the word being coded ('' outside words)
        self._pending: tuple | None = None

    # ------------------------------------------------------------------ alphabet

    def add_char(self) -> int:
        """A new symbol for a character first met through ESC; returns its id."""
        sid = self.alphabet_size
        self.alphabet_size += 1
        self.is_letter = np.append(self.is_letter, False)
        return sid

    # -------------------------------------------------------------------- fields

    def start_field(self, marker: int) -> None:
        self._end_word()
        self.hist = [marker]
        self.last_word = None
        self.gap = ""
        self.word = ""

    # ----------------------------------------------------------------- predict

    def _char_model(self, keys: list[int]) -> np.ndarray:
        A = self.alphabet_size
        t = self.t
        c = np.zeros(A, dtype=np.int64)
        c[:BASE_SIZE] = t.cm_order0
        for s, n in self.dyn0.items():
            c[s] += DYN_WEIGHT[0] * n
        p = self._blend(np.full(A, T_CHAR // A, dtype=np.int64), c, 0)
        if keys:
            where = np.searchsorted(t.cm_keys, np.array(keys[:5], dtype=np.uint32))
            nkeys = len(t.cm_keys)
        for k in range(1, len(keys) + 1):
            key = keys[k - 1]
            c = None
            if k <= 5:
                w = int(where[k - 1])
                if w < nkeys and int(t.cm_keys[w]) == key:
                    a, b = int(t.cm_ptr[w]), int(t.cm_ptr[w + 1])
                    c = np.zeros(A, dtype=np.int64)
                    c[t.cm_sym[a:b]] = t.cm_cnt[a:b]
            d = self.dyn.get(key)
            if d:
                if c is None:
                    c = np.zeros(A, dtype=np.int64)
                wgt = DYN_WEIGHT[k]
                for s, n in d.items():
                    c[s] += wgt * n
            if c is not None:
                p = self._blend(p, c, k)
        return p

    @staticmethod
    def _blend(lower: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
        n = int(c.sum())
        if n == 0:
            return lower
        d = DISCOUNT[k]
        u = int(np.count_nonzero(c))
        return (np.maximum(c * 16 - d, 0) * T_CHAR + (d * u) * lower) // (n * 16)

    def _cache(self) -> tuple[np.ndarray, np.ndarray, int]:
        if self._cache_arrays is None:
            items = sorted(self.cache_counts.items())
            idx = np.array([i for i, _ in items], dtype=np.int64)
            cum = np.concatenate(([0], np.cumsum(np.array([n for _, n in items], dtype=np.int64))))
            self._cache_arrays = (idx, cum, int(cum[-1]))
        return self._cache_arrays

    def _word_masses(self, prefix: str, prev: str | None):
        """Masses (26 letters, then the word ending here) of the words extending prefix.

        Returns (masses, has_pair_context), or (None, False) when no known word extends it.
        Units: probability x 2^52 x weight (weights out of 256); every term stays < 2^61.
        """
        t = self.t
        lo, hi, exact, bounds, uni_children, uni_exact = t.prefix(prefix)
        if lo >= hi:
            return None, False
        uni = np.empty(27, dtype=np.int64)
        uni[:26] = uni_children
        uni[26] = uni_exact
        big = None
        if prev is not None:
            pi = t.start_index if prev == "<s>" else t.index.get(prev)
            if pi is not None:
                nxt, qcum, rest = t.successors(pi)
                pos = np.searchsorted(nxt, bounds)
                q = np.empty(27, dtype=np.int64)
                q[:26] = qcum[pos[1:]] - qcum[pos[:-1]]
                if exact:
                    a, b = np.searchsorted(nxt, [lo, lo + 1])
                    q[26] = qcum[b] - qcum[a]
                else:
                    q[26] = 0
                big = q * (1 << 30) + rest * uni  # P(word | prev) x 2^52
        if big is not None:
            masses = uni * ((1 << 22) * UNI_W) + big * PAIR_W
        else:
            masses = uni * ((1 << 22) * (UNI_W + PAIR_W))
        n_cache_words = len(self.cache_counts)
        if n_cache_words:
            idx, cum, n = self._cache()
            pos = np.searchsorted(idx, bounds)
            cc = np.empty(27, dtype=np.int64)
            cc[:26] = cum[pos[1:]] - cum[pos[:-1]]
            if exact:
                a, b = np.searchsorted(idx, [lo, lo + 1])
                cc[26] = cum[b] - cum[a]
            else:
                cc[26] = 0
            wc = min(CACHE_MAX, CACHE_BASE + CACHE_STEP * n_cache_words)
            masses = masses + cc * ((1 << 52) // n) * wc
        return masses, big is not None

    def predict(self) -> np.ndarray:
        """Integer frequencies (all >= 1) of the next symbol."""
        hist = self.hist
        keys = context_keys(hist, DYN_ORDER)
        pc = self._char_model(keys)
        A = self.alphabet_size
        last = hist[-1]
        in_word = last < BASE_SIZE and bool(_IS_LETTER_ID[last]) and self.word != ""
        bucket = -1
        pw = None
        if in_word:
            masses, pair = self._word_masses(self.word, self._pair_context_of_word)
            if masses is not None:
                L = len(self.word)
                bucket = 3 + min(L, 4) - 1 + (0 if pair else 4)
                pw = self._spread(masses, pc, A, word_start=False)
        else:
            prev = prev_word(self.gap, self.last_word)
            masses, pair = self._word_masses("", prev)
            if masses is not None:
                if self.gap and self.gap.strip(" ") == "":
                    bucket = 0 if pair and prev != "<s>" else 1
                else:
                    bucket = 2
                pw = self._spread(masses, pc, A, word_start=True)
        if pw is None:
            p = np.maximum(pc, 1)
            self._pending = (keys, None, None, -1)
            return p
        w = self.weights[bucket]
        mix = (pw * w + pc * (W_ONE - w)) >> 16
        p = np.maximum(mix, 1)
        self._pending = (keys, pw, pc, bucket)
        return p

    def _spread(self, masses: np.ndarray, pc: np.ndarray, A: int, word_start: bool) -> np.ndarray | None:
        total = int(masses.sum()) if not word_start else int(masses[:26].sum())
        if total <= 0:
            return None
        shift = max(0, total.bit_length() - 36)
        m = masses >> shift
        total >>= shift
        if total <= 0:
            return None
        pw = np.zeros(A, dtype=np.int64)
        lower = pc[_LETTERS]
        upper = pc[_UPPERS]
        if word_start:
            letter_mass = int(lower.sum() + upper.sum())
            share = m[:26] * letter_mass // total
            nonletter = pc.copy()
            nonletter[_LETTERS] = 0
            nonletter[_UPPERS] = 0
            pw += nonletter
        else:
            share = m[:26] * T_CHAR // total
            end = int(m[26]) * T_CHAR // total
            nonletter = pc.copy()
            nonletter[_LETTERS] = 0
            nonletter[_UPPERS] = 0
            nl_total = int(nonletter.sum())
            if nl_total > 0 and end > 0:
                pw += nonletter * end // nl_total
        both = lower + upper + 2
        up_share = share * (upper + 1) // both
        pw[_UPPERS] += up_share
        pw[_LETTERS] += share - up_share
        return pw

    # ------------------------------------------------------------------ update

    def update(self, sym: int, char: str | None) -> None:
        """Learn from the coded symbol (``char`` is its character, None for END)."""
        keys, pw, pc, bucket = self._pending
        if bucket >= 0:
            mix = (int(pw[sym]) * self.weights[bucket] + int(pc[sym]) * (W_ONE - self.weights[bucket])) >> 16
            err = ((int(pw[sym]) - int(pc[sym])) << 16) // max(mix, 1)
            w = self.weights[bucket] + ((err * LR) >> 8)
            self.weights[bucket] = min(W_ONE - 1024, max(1024, w))
        self.dyn0[sym] = self.dyn0.get(sym, 0) + 1
        for key in keys:
            d = self.dyn.get(key)
            if d is None:
                self.dyn[key] = {sym: 1}
            else:
                d[sym] = d.get(sym, 0) + 1
        if char is None:
            return
        self._advance(sym, char)

    def push_new_char(self, sid: int, char: str) -> None:
        """After ESC + code point: count the new symbol where ESC was, then move on."""
        keys = self._pending[0]
        self.dyn0[sid] = self.dyn0.get(sid, 0) + 1
        for key in keys:
            d = self.dyn[key]
            d[sid] = d.get(sid, 0) + 1
        self._advance(sid, char)

    def _advance(self, sym: int, char: str) -> None:
        low = _ID_TO_LOWER.get(sym)
        if low is not None:
            if not self.word:
                self._pair_context_of_word = prev_word(self.gap, self.last_word)
            self.word += low
        else:
            if self.word:
                self._end_word()
                self.gap = ""
            self.gap = (self.gap + char)[-8:]
        self.hist.append(sym)

    def _end_word(self) -> None:
        if self.word:
            w = self.word
            i = self.t.index.get(w)
            if i is not None:
                self.cache_counts[i] = self.cache_counts.get(i, 0) + 1
                self._cache_arrays = None
            self.last_word = w
            self.word = ""


def char_id(c: str) -> int | None:
    return CHAR_TO_ID.get(c)
