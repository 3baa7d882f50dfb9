"""The three calls the rest of the project uses: available, compute, compute_set.

    images ──to_rgb_uint8──► uint8 HxWx3 ──┬─ numpy metrics (PSNR, SSIM, NIQE, ...)
                                          └─ torch models (LPIPS, DISTS, CLIP), loaded
                                             once, cached, no_grad, batched
    sets ──feature extractor──► N x D ──► Frechet distance / KID

A metric that cannot run here (missing weights) is reported by ``available()`` with the
reason; asking for it by name raises MetricUnavailableError with that reason, while
``names=None`` quietly means "every metric that is available".
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import config as _config
from .errors import FetchError, MetricInputError, MetricUnavailableError
from .images import ImageLike, check_pair, to_float_tensor, to_rgb_uint8
from .registry import METRICS, PAIR_METRICS, SET_METRICS, info
from .weights import WeightsNotFoundError, niqe_params_path, package_file

_models: dict[str, Any] = {}
_availability: dict[str, tuple[bool, str]] = {}


def configure(**changes) -> _config.MetricsConfig:
    """Change configuration (clip_model, clip_pretrained, fid_weights, device, batch_size).

    Clears cached models and availability, since they depend on it.
    """
    cfg = _config.set_config(**changes)
    _models.clear()
    _availability.clear()
    return cfg


def _model(key: str, build: Callable[[], Any]) -> Any:
    if key not in _models:
        _models[key] = build()
    return _models[key]


def set_model(key: str, model: Any) -> None:
    """Inject a ready component (e.g. a CLIP scorer built from local files, or a tiny test model).

    Keys: 'lpips_alex', 'lpips_vgg', 'dists', 'clip', 'inception', 'vgg16_fd'.
    """
    _models[key] = model
    _availability.clear()


# --- availability ---------------------------------------------------------------------


def _check_files(*items: str | tuple[str, str]) -> tuple[bool, str]:
    """Every file present: (package, path) inside an installed package, or a name that
    metrics/fetch.py fetches on first use (so the first check may download it)."""
    from .fetch import FILES, packaged_file

    sources = []
    try:
        for item in items:
            if isinstance(item, tuple):
                package_file(*item)
                sources.append(f"{item[0]} (installed)")
            else:
                path = packaged_file(item)
                sources.append(f"{item} (from {FILES[item].archive.requirement}, cached in {path.parent})")
    except (WeightsNotFoundError, FetchError) as exc:
        return False, str(exc)
    return True, "weights: " + ", ".join(sources)


def _check_clip() -> tuple[bool, str]:
    if "clip" in _models:
        return True, getattr(_models["clip"], "label", "CLIP model injected with set_model")
    cfg = _config.get_config()
    try:
        from .clip import resolve_clip_weights

        resolve_clip_weights(cfg.clip_model, cfg.clip_pretrained)
        _clip_scorer()
    except Exception as exc:  # any loader failure is a reason, not a crash
        return (
            False,
            f"CLIP {cfg.clip_model}/{cfg.clip_pretrained} could not be loaded: {type(exc).__name__}: {exc}",
        )
    return True, f"open_clip {cfg.clip_model} pretrained={cfg.clip_pretrained}"


def _check_inception() -> tuple[bool, str]:
    """Available once the weights are here; the first check downloads them where allowed."""
    if "inception" in _models:
        return True, getattr(_models["inception"], "label", "Inception injected with set_model")
    if importlib.util.find_spec("pytorch_fid") is None:
        return False, "pytorch-fid is not installed (it is pinned in requirements.txt)"
    from .inception import fid_weights_path

    try:
        return True, fid_weights_path()[1]
    except (WeightsNotFoundError, FetchError) as exc:
        return False, str(exc)


def _check_niqe() -> tuple[bool, str]:
    try:
        return True, f"pristine model {niqe_params_path()}"
    except (WeightsNotFoundError, FetchError) as exc:
        return False, str(exc)


def _check_piqe() -> tuple[bool, str]:
    if importlib.util.find_spec("pypiqe") is None:
        return False, "pypiqe is not installed"
    return True, "pypiqe"


_CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "psnr": lambda: (True, "built in"),
    "ssim": lambda: (True, "built in"),
    "ms_ssim": lambda: (True, "built in"),
    "lpips_alex": lambda: _check_files("alexnet.ckpt", ("lpips", "weights/v0.1/alex.pth")),
    "lpips_vgg": lambda: _check_files("vgg16.ckpt", ("lpips", "weights/v0.1/vgg.pth")),
    "dists": lambda: _check_files("vgg16.ckpt", ("DISTS_pytorch", "weights.pt")),
    "niqe": _check_niqe,
    "piqe": _check_piqe,
    "brisque_pypi": lambda: _check_files("brisque_svm.txt", "brisque_normalize.pickle"),
    "clip_i": _check_clip,
    "clip_t": _check_clip,
    "fd_clip": _check_clip,
    "fid": _check_inception,
    "kid": lambda: available(["fid"])["fid"],  # same network: one check, one download
    "fd_vgg16": lambda: _check_files("vgg16.ckpt"),
}


def available(names: Sequence[str] | None = None) -> dict[str, tuple[bool, str]]:
    """{name: (is_available, reason)} for every metric (or the given ones). Cached."""
    result = {}
    for name in names or list(METRICS):
        info(name)
        if name not in _availability:
            _availability[name] = _CHECKS[name]()
        result[name] = _availability[name]
    return result


def _resolve(names: Sequence[str] | None, pool: list[str], *, has_text: bool) -> list[str]:
    if names is None:
        chosen = [n for n in pool if available([n])[n][0] and (has_text or not METRICS[n].needs_text)]
        return chosen
    names = list(names)
    for name in names:
        meta = info(name)
        if name not in pool:
            kind = "set-level (use compute_set)" if meta.kind == "set" else "per-image (use compute)"
            raise MetricInputError(f"{name} is a {kind} metric")
        ok, reason = available([name])[name]
        if not ok:
            raise MetricUnavailableError(f"{meta.display_name} is unavailable: {reason}")
    return names


# --- model builders -------------------------------------------------------------------


def _lpips(net: str):
    from .lpips import LPIPS

    return _model(f"lpips_{net}", lambda: LPIPS.from_packages(net).to(_config.get_config().device))


def _dists():
    from .dists import DISTS

    return _model("dists", lambda: DISTS.from_packages().to(_config.get_config().device))


def _clip_scorer():
    from .clip import ClipScorer

    cfg = _config.get_config()
    return _model(
        "clip", lambda: ClipScorer.from_pretrained(cfg.clip_model, cfg.clip_pretrained, device=cfg.device)
    )


# --- per-image metrics ----------------------------------------------------------------

_TORCH_FR = {"lpips_alex": lambda: _lpips("alex"), "lpips_vgg": lambda: _lpips("vgg"), "dists": _dists}


def _nr_value(name: str, image: np.ndarray) -> float:
    if name == "niqe":
        from .niqe import niqe

        return niqe(image)
    if name == "piqe":
        from .piqe import piqe

        return piqe(image)
    if name == "brisque_pypi":
        from .brisque import brisque_pypi

        return brisque_pypi(image)
    raise AssertionError(name)


def compute(
    reference: ImageLike | None,
    distorted: ImageLike,
    names: Sequence[str] | None = None,
    *,
    text: str | None = None,
) -> dict[str, float]:
    """Metrics of one image pair: {name: value}.

    reference may be None when only no-reference metrics (and CLIP-T) are asked for.
    Images: PIL images or HxWx3 uint8 arrays of the same size. ``text`` is the caption
    CLIP-T scores the distorted image against. names=None: every available metric that
    the inputs allow.
    """
    refs = None if reference is None else [reference]
    texts = None if text is None else [text]
    return compute_batch(refs, [distorted], names, texts=texts, progress=False)[0]


def compute_batch(
    references: Sequence[ImageLike] | None,
    distorteds: Sequence[ImageLike],
    names: Sequence[str] | None = None,
    *,
    texts: Sequence[str] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Metrics of many pairs, one dict per pair, with torch models run in batches."""
    from tqdm.auto import tqdm

    if references is not None and len(references) != len(distorteds):
        raise MetricInputError(f"{len(references)} references but {len(distorteds)} distorted images")
    if texts is not None and len(texts) != len(distorteds):
        raise MetricInputError(f"{len(texts)} texts but {len(distorteds)} distorted images")
    pool = [n for n in PAIR_METRICS if references is not None or METRICS[n].kind != "full-reference"]
    if references is None and names is not None:
        needs_ref = [
            n for n in names if n in METRICS and METRICS[n].kind == "full-reference" or n == "clip_i"
        ]
        if needs_ref:
            raise MetricInputError(f"{', '.join(needs_ref)} need a reference image")
    if references is None:
        pool = [n for n in pool if n != "clip_i"]
    chosen = _resolve(names, pool, has_text=texts is not None)
    if texts is None and "clip_t" in chosen:
        raise MetricInputError("CLIP-T needs a caption: pass text=... (or texts=[...])")

    if references is None:
        dists = [to_rgb_uint8(d, what=f"distorted[{i}]") for i, d in enumerate(distorteds)]
        refs: list[np.ndarray] | None = None
    else:
        pairs = [check_pair(r, d) for r, d in zip(references, distorteds, strict=True)]
        refs, dists = [p[0] for p in pairs], [p[1] for p in pairs]

    results: list[dict[str, float]] = [{} for _ in dists]
    size = batch_size or _config.get_config().batch_size
    steps = len(chosen) * len(dists)
    bar = tqdm(total=steps, desc="metrics", unit="value", disable=not progress or steps < 16)
    from . import fullref

    for name in chosen:
        if name in ("psnr", "ssim", "ms_ssim"):
            fn = getattr(fullref, name)
            for i in range(len(dists)):
                results[i][name] = fn(refs[i], dists[i])
                bar.update(1)
        elif name in _TORCH_FR:
            model = _TORCH_FR[name]()
            for chunk in _same_size_chunks(dists, size):
                x = to_float_tensor([refs[i] for i in chunk]).to(_config.get_config().device)
                y = to_float_tensor([dists[i] for i in chunk]).to(_config.get_config().device)
                values = model(x, y).cpu().numpy()
                for i, v in zip(chunk, values, strict=True):
                    results[i][name] = float(v)
                bar.update(len(chunk))
        elif name in ("clip_i", "clip_t"):
            scorer = _clip_scorer()
            for chunk in _chunks(len(dists), size):
                emb_d = scorer.image_embeddings([dists[i] for i in chunk])
                if name == "clip_i":
                    emb_r = scorer.image_embeddings([refs[i] for i in chunk])
                    values = (emb_r * emb_d).sum(-1)
                else:
                    emb_t = scorer.text_embeddings([texts[i] for i in chunk])
                    values = 100.0 * np.maximum((emb_t * emb_d).sum(-1), 0.0)
                for i, v in zip(chunk, values, strict=True):
                    results[i][name] = float(v)
                bar.update(len(chunk))
        else:
            for i in range(len(dists)):
                results[i][name] = _nr_value(name, dists[i])
                bar.update(1)
    bar.close()
    return results


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


_MAX_BATCH_PIXELS = 4 * 512 * 512


def _same_size_chunks(arrays: list[np.ndarray], size: int) -> list[list[int]]:
    """Group indices of equally sized images (a torch batch needs one shape)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    out = []
    for shape, idx in groups.items():
        # Cap pixels per batch so VGG activations of large images stay within a few GB.
        step = max(1, min(size, _MAX_BATCH_PIXELS // (shape[0] * shape[1])))
        out += [idx[i : i + step] for i in range(0, len(idx), step)]
    return out


# --- set-level metrics ----------------------------------------------------------------


def compute_set(
    references: Sequence[ImageLike],
    distorteds: Sequence[ImageLike],
    names: Sequence[str] | None = None,
    *,
    progress: bool = True,
) -> dict[str, float]:
    """Set-level metrics between a reference set and a distorted set: {name: value}.

    The sets need not be paired or equally sized; images may differ in size (each
    extractor resizes to its own input). Features of a given image are cached by
    content, so a bench computing many conditions against one reference set extracts
    the references once.
    """
    from .setlevel import set_metrics

    chosen = _resolve(names, SET_METRICS, has_text=False)
    if len(references) < 2 or len(distorteds) < 2:
        raise MetricInputError("set metrics need at least 2 images on each side")
    refs = [to_rgb_uint8(r, what=f"references[{i}]") for i, r in enumerate(references)]
    dists = [to_rgb_uint8(d, what=f"distorteds[{i}]") for i, d in enumerate(distorteds)]
    return set_metrics(refs, dists, chosen, _model, progress=progress)


def is_finite(value: float) -> bool:
    return value is not None and math.isfinite(value)
