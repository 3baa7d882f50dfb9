"""The demo's example photographs: files in assets/examples/, shipped with the app.

They are scikit-image's sample photographs, copied byte for byte; their origin, licence
and SHA-256 are in assets/SOURCES.md. Shipping them as files (instead of reading them
from an installed package) means the Space shows exactly what the repository holds.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

ASSETS = Path(__file__).resolve().parent.parent / "assets"
EXAMPLES_DIR = ASSETS / "examples"
EXAMPLES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
}


def example_path(name: str) -> Path:
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    return EXAMPLES_DIR / EXAMPLES[name]


def example_image(name: str) -> Image.Image:
    with Image.open(example_path(name)) as image:
        return image.convert("RGB")


def example_files() -> list[Path]:
    """The example files, in display order (gr.Examples copies them into its cache)."""
    missing = [str(p) for p in map(example_path, EXAMPLES) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"example images missing from assets/examples: {', '.join(missing)}")
    return [example_path(name) for name in EXAMPLES]
