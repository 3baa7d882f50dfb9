"""Example photographs that ship inside scikit-image's wheel, so the demo works offline."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PIL import Image

EXAMPLES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket")


def example_image(name: str) -> Image.Image:
    import skimage.data

    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def example_files(folder: Path | None = None) -> list[Path]:
    """The examples written once as PNG files (gr.Examples wants paths)."""
    folder = folder or Path(tempfile.gettempdir()) / "misc-demo-examples"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in EXAMPLES:
        path = folder / f"{name}.png"
        if not path.is_file():
            tmp = path.with_suffix(".tmp.png")
            example_image(name).save(tmp)
            tmp.replace(path)
        paths.append(path)
    return paths
