"""A bounded run of the decoder fuzz (bench.fuzz), as issue 11's attacker ran it at length.

Damaged copies of real files (most with the checksum recomputed, so they reach every
layer's parser and dav1d) are decoded in worker processes under a per-case watchdog:
every case must decode or be refused with a typed CodecError; none may raise anything
else, hang or kill its worker. `python -m bench.fuzz --cases 30000` is the long run.
"""

from __future__ import annotations

from bench.fuzz import run

CASES = 3000


def test_fuzzed_files_are_decoded_or_refused_typed_never_hang_or_crash(tmp_path):
    report = run(CASES, seed=20261202, jobs=2, timeout=60, out=tmp_path)
    assert report.cases == CASES
    assert report.failures == 0, report.table()
    assert not list(tmp_path.iterdir())
    # Both outcomes are exercised, and every kind of mutation ran.
    assert report.counts["ok"] > CASES // 10 and report.counts["refused"] > CASES // 2, report.table()
    assert set(report.by_kind) == {"raw", "header", "pixel", "text", "maps", "recipe", "body", "sections"}
