"""dav1d must not hang on any pixel section (issue 11, item 3).

With several dav1d threads, some damaged pixel sections deadlocked decode_pixels at 0 %
CPU: the main thread, freeing the decoder, holds the GIL inside dav1d_flush and waits
for a dav1d lock; a dav1d worker holds that lock and waits for the GIL in PyAV's buffer
callback. The two files below came out of ``python -m bench.fuzz`` (pixel sections
mutated, checksum recomputed); before the fix each hung within 200 decodes. A hang
cannot be caught in the test process, so the decodes run in a child with a timeout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HANGED = [
    "4d0178400607010101560a0a00000002a77f3abe4010323e1000a08000009e010098a00a8ca926173030929c4bc90cb3a5647f4b92b2e4"
    "ca42e8398415905f0b1b2fae6fec5b6e6017aa68b7ffef45def7a9c0103fc15617baf3fde22336ee1c5c9c27d3",
    "4d017840060701010194010a0a00000002a77f3abe4010323e1000a08000009e01007fa00a8ca926174b4b92b2e410323e1000a08000"
    "009e010098a00a8ca926174b4b92b2e410323e1000a08000009e010098a00a8ca926174b4b92b2e410323e1000a08000009e010098a0"
    "0a8ca926174b4b92b2e4ca42e8398415905f0b1b2fae6fec5b6e6017aa68b7ffef45def7a9c0103fc15617baf3fde22336ee1c27a88240",
]
DECODES = 300  # per file

CHILD = """
import sys
from codec.errors import BitstreamError
from codec.pipeline import read_layers

outcomes = set()
for hexdata in sys.argv[2:]:
    data = bytes.fromhex(hexdata)
    for _ in range(int(sys.argv[1])):
        try:
            read_layers(data)
            outcomes.add("ok")
        except BitstreamError as e:
            outcomes.add(str(e).split(":")[0])
print(sorted(outcomes))
"""


def test_damaged_pixel_sections_never_hang_the_decoder():
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, str(DECODES), *HANGED], cwd=ROOT, capture_output=True,
                           text=True, timeout=240)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{len(HANGED) * DECODES} decodes did not finish in 240 s: dav1d hung") from None
    assert r.returncode == 0, r.stderr[-2000:]
    # Each refused, typed, every time, by the AV1 decoder (the container around it is valid).
    assert r.stdout.strip() == "['pixel section is not a decodable AV1 frame']", r.stdout

