"""The files in assets/ are the ones SOURCES.md lists, byte for byte, each with a licence."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from demo.examples import EXAMPLES, EXAMPLES_DIR, example_files, example_image

SOURCES = Path(__file__).resolve().parent.parent / "assets" / "SOURCES.md"


def _listed() -> dict[str, tuple[str, str]]:
    """{file name: (licence cell, sha256)} from the examples table of SOURCES.md."""
    rows = {}
    for line in SOURCES.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"`[0-9a-f]{64}`", cells[5]):
            rows[cells[0]] = (cells[4], cells[5].strip("`"))
    return rows


def test_every_example_file_is_listed_with_its_digest_and_an_open_licence():
    listed = _listed()
    on_disk = sorted(p.name for p in EXAMPLES_DIR.iterdir())
    assert on_disk == sorted(listed), (on_disk, sorted(listed))
    for name in on_disk:
        licence, digest = listed[name]
        assert hashlib.sha256((EXAMPLES_DIR / name).read_bytes()).hexdigest() == digest, name
        assert licence.startswith(("public domain", "CC0")), (name, licence)


def test_examples_load_from_the_assets_folder():
    paths = example_files()
    assert [p.parent for p in paths] == [EXAMPLES_DIR] * len(EXAMPLES)
    for name in EXAMPLES:
        image = example_image(name)
        assert image.mode == "RGB" and min(image.size) >= 256
    with pytest.raises(ValueError, match="unknown example"):
        example_image("lena")

