"""Small real inputs shared by the codec tests: crops of Kodak photographs."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

from PIL import Image

# ../shared sits beside the checkout, for developers and CI alike.
KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24"


@cache
def kodak(n: int = 1) -> Image.Image:
    return Image.open(KODAK / f"kodim{n:02d}.png").convert("RGB")


def kodak_crop(n: int = 1, size: tuple[int, int] = (160, 120)) -> Image.Image:
    img = kodak(n)
    return img.crop((0, 0, size[0], size[1]))


def codec_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m codec ARGS`` in a child process from the repository root, as a user runs it."""
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "codec", *args], cwd=root, capture_output=True, text=True, timeout=600)
