"""Pictures the demo draws: the bit budget as a stacked bar and the item maps over the image.

Both are drawn from what the codec returns (``codec.pipeline.info`` on the real bytes, the
grids that went into the file), never from estimates, so the figure is the file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from codec.maps import grid_to_mask

# Layers in the order they sit in the bar, with a colour each (colour-blind safe, Okabe-Ito).
BUDGET_LAYERS: tuple[tuple[str, str, str], ...] = (
    ("header", "header", "#999999"),
    ("text", "text (description)", "#E69F00"),
    ("recipe", "recipe (generation settings)", "#56B4E9"),
    ("maps", "maps (item grids)", "#009E73"),
    ("pixel_av1", "pixel layer (AV1)", "#0072B2"),
    ("checksum", "checksum", "#CC79A7"),
)
ITEM_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (255, 255, 255),
)


def budget_parts(info: dict) -> list[tuple[str, str, str, int]]:
    """(key, label, colour, bytes) per layer from ``codec.pipeline.info``; section framing is
    counted with its section, so the parts add up to the file's length exactly."""
    sections = info.get("sections", {})
    sizes = {"header": int(info["header_bytes"]), "checksum": int(info["checksum_bytes"])}
    for name, s in sections.items():
        sizes[name] = int(s["bytes"])
    parts = [(k, label, colour, sizes.pop(k)) for k, label, colour in BUDGET_LAYERS if k in sizes]
    parts += [(k, k, "#000000", v) for k, v in sizes.items()]  # a section type added later
    return parts


def budget_bar(info: dict, target_bytes: int | None = None) -> Image.Image:
    """One horizontal stacked bar: bytes per layer of the file, the exact counts in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = budget_parts(info)
    total = int(info["total_bytes"])
    fig, ax = plt.subplots(figsize=(8.0, 2.3), dpi=110)
    left = 0
    for _key, label, colour, n in parts:
        ax.barh(
            [0],
            [n],
            left=left,
            color=colour,
            edgecolor="white",
            height=0.6,
            label=f"{label}: {n} B ({100 * n / total:.1f}%)",
        )
        if n / max(total, 1) > 0.06:
            ax.text(
                left + n / 2,
                0,
                f"{n} B",
                ha="center",
                va="center",
                color="white",
                fontsize=9,
                fontweight="bold",
            )
        left += n
    limit = max(total, target_bytes or 0)
    if target_bytes:
        ax.axvline(target_bytes, color="#D55E00", linestyle="--", linewidth=1.5)
        ax.text(
            target_bytes,
            0.42,
            f" budget {target_bytes} B",
            color="#D55E00",
            fontsize=8,
            va="bottom",
            ha="right",
        )
    ax.set_xlim(0, limit * 1.02)
    ax.set_ylim(-0.5, 0.6)
    ax.set_yticks([])
    ax.set_title(
        f"{total} bytes = {8 * total} bits = {info['bpp']:.5f} bpp ({info['width']}×{info['height']})",
        fontsize=10,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow
        return ImageFont.load_default()


def cell_at(x: float, y: float, width: int, height: int, rows: int, cols: int) -> tuple[int, int]:
    """Which grid cell a click at pixel (x, y) falls in, with the cell edges ``grid_to_mask`` uses."""
    r = int(np.searchsorted((np.arange(rows + 1) * height) // rows, int(y), side="right") - 1)
    c = int(np.searchsorted((np.arange(cols + 1) * width) // cols, int(x), side="right") - 1)
    return min(max(r, 0), rows - 1), min(max(c, 0), cols - 1)


def overlay_maps(
    image: Image.Image,
    names: Sequence[str],
    grids: Sequence[np.ndarray | None],
    selected: int | None = None,
    grid_size: tuple[int, int] = (8, 8),
) -> Image.Image:
    """The image with each item's map tinted in its colour, the cell grid drawn, and the
    selected item's cells outlined (the ones a click toggles)."""
    base = image.convert("RGB")
    w, h = base.size
    out = np.asarray(base, dtype=np.float32) * 0.75
    for i, grid in enumerate(grids):
        if grid is None or not np.any(grid):
            continue
        mask = grid_to_mask(np.asarray(grid, bool), w, h)
        colour = np.array(ITEM_COLOURS[i % len(ITEM_COLOURS)], np.float32)
        alpha = 0.55 if selected in (None, i) else 0.25
        out[mask] = out[mask] * (1 - alpha) + colour * alpha
    pic = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pic)
    rows, cols = grid_size
    for r in range(1, rows):
        y = (r * h) // rows
        draw.line([(0, y), (w, y)], fill=(255, 255, 255), width=1)
    for c in range(1, cols):
        x = (c * w) // cols
        draw.line([(x, 0), (x, h)], fill=(255, 255, 255), width=1)
    if selected is not None and 0 <= selected < len(grids) and grids[selected] is not None:
        g = np.asarray(grids[selected], bool)
        colour = ITEM_COLOURS[selected % len(ITEM_COLOURS)]
        ye, xe = (np.arange(rows + 1) * h) // rows, (np.arange(cols + 1) * w) // cols
        for r, c in zip(*np.nonzero(g), strict=True):
            draw.rectangle([xe[c] + 1, ye[r] + 1, xe[c + 1] - 2, ye[r + 1] - 2], outline=colour, width=3)
    # The legend sits at the bottom left: Gradio puts the component's label over the top left.
    font = _font(max(12, h // 26))
    y = h - 6
    for i in reversed(range(len(names))):
        colour = ITEM_COLOURS[i % len(ITEM_COLOURS)]
        label = f"{'> ' if i == selected else ''}{i + 1}. {names[i]}"
        box = draw.textbbox((0, 0), label, font=font)
        y -= box[3] - box[1] + 8
        draw.rectangle([4, y - 2, 4 + box[2] - box[0] + 8, y + box[3] - box[1] + 4], fill=(0, 0, 0))
        draw.text((8 - box[0], y - box[1] + 1), label, fill=colour, font=font)
    return pic
