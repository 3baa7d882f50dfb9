"""Hugging Face hub weights: is a repository here, and fetch it with visible progress.

The loaders (``from_pretrained``, ``open_clip.create_model``) download on their own, but
silently for a user of the web app and in one lump. The full profile instead fetches
the files it needs first, one by one, through ``hf_hub_download`` with a progress hook
that reports bytes to a callback (the app's progress bar) and to the log, then lets the
loaders find them in the cache. Nothing here loads a model.

    ModelFiles(repo, files=[(first choice, fallback), ...])
        ──cached()──▶ are all files in the cache (or a local directory)?
        ──fetch(progress)──▶ hf_hub_download each missing file, first choice that exists
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelUnavailableError

log = logging.getLogger("misc.hub")

Progress = Callable[[float, str], None]
RANDOM_MARKER = "RANDOM_WEIGHTS.md"  # written by bench/random_models.py; never in a real repository
GB = 1e9


@dataclass(frozen=True)
class ModelFiles:
    """The files of one hub repository that a backend needs.

    ``probes``: small files that must be there (configs). ``weights``: the big files,
    each entry listing alternatives, best first (an fp16 variant, then the fp32 file
    for a repository without one); a ``*.index.json`` alternative brings the shards it
    names. ``patterns``: globs of the small files (configs, tokenizer, scheduler,
    processor) fetched in one ``snapshot_download``, whatever their exact names.
    ``download_bytes`` / ``memory_bytes``: first-run download and weights in memory at
    the dtype the app uses on a GPU (docs/SPACE.md says how each was had).
    """

    repo_id: str
    probes: tuple[str, ...] = ()
    weights: tuple[tuple[str, ...], ...] = ()
    patterns: tuple[str, ...] = ()
    download_bytes: int = 0
    memory_bytes: int = 0
    what: str = ""
    sizes_note: str = ""
    preload: tuple[str, ...] | None = None  # README preload_from_hub files; None: the whole repository
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local_dir(self) -> bool:
        return os.path.isdir(self.repo_id)

    @property
    def known(self) -> bool:
        """Whether anything is known about the repository's files (a user's override is not)."""
        return bool(self.probes or self.weights)

    def cached_file(self, alternatives: Sequence[str]) -> str | None:
        """Path of the first alternative present locally (directory or HF cache), else None."""
        for name in alternatives:
            if self.is_local_dir:
                path = Path(self.repo_id) / name
                if path.is_file():
                    return str(path)
                continue
            found = cached_path(self.repo_id, name)
            if found:
                return found
        return None

    def missing(self) -> list[tuple[str, ...]]:
        """The probes and weight entries not here (shards of a cached index included)."""
        out = [(p,) for p in self.probes if self.cached_file((p,)) is None]
        for alts in self.weights:
            have = self.cached_file(alts)
            if have is None:
                out.append(alts)
            elif have.endswith(".index.json"):
                out += [(s,) for s in _shards(have) if self.cached_file((s,)) is None]
        return out

    def cached(self) -> bool:
        return self.known and not self.missing()

    def random_weights(self) -> bool:
        """True when the local copy was written by bench/random_models.py (a test's model)."""
        return self.cached_file((RANDOM_MARKER,)) is not None

    def variant(self, fp16_file: str) -> str | None:
        """ "fp16" when that variant file is here, else None (load the plain files)."""
        return "fp16" if self.cached_file((fp16_file,)) else None

    def preload_line(self) -> str:
        """This repository as a README ``preload_from_hub`` entry: the whole repository, or
        the listed files (only files certain to exist: a missing one fails the Space build)."""
        return f"{self.repo_id} {','.join(self.preload)}" if self.preload else self.repo_id

    def fetch(self, progress: Progress | None = None) -> None:
        """Download what is missing: the small files in one snapshot call, then each
        weight file (first alternative the hub has) with byte progress to ``progress``
        and the log. Does nothing when everything is here.

        Raises ModelUnavailableError naming the repository and what to do when the hub
        cannot be reached or has none of a file's alternatives.
        """
        todo = self.missing()
        if not todo:
            return
        if self.is_local_dir:
            raise ModelUnavailableError(
                f"{self.repo_id} is a local directory without {', '.join(m[0] for m in todo)}"
            )
        size = f" (~{human_bytes(self.download_bytes)})" if self.download_bytes else ""
        log.info("downloading %s%s on first use", self.repo_id, size)
        if self.patterns:
            _report(progress, 0.0, f"downloading {self.repo_id}: configs")
            _snapshot(self.repo_id, self.patterns)
        todo = self.missing()
        for i, alts in enumerate(todo):
            path = _download_first(self.repo_id, alts, progress, i, len(todo))
            if path.endswith(".index.json"):  # the shards it names, each with progress
                shards = [(s,) for s in _shards(path) if self.cached_file((s,)) is None]
                for j, shard in enumerate(shards):
                    _download_first(self.repo_id, shard, progress, i + j / len(shards), len(todo))
        log.info("downloaded %s", self.repo_id)


def _shards(index_path: str) -> list[str]:
    import json

    with open(index_path, encoding="utf-8") as f:
        return sorted(set(json.load(f).get("weight_map", {}).values()))


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(min(max(fraction, 0.0), 1.0), message)


def _snapshot(repo_id: str, patterns: Sequence[str]) -> None:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, allow_patterns=list(patterns))
    except Exception as exc:
        raise ModelUnavailableError(
            f"cannot download {repo_id}: {type(exc).__name__}: {exc}; {_how(repo_id)}"
        ) from exc


def cached_path(repo_id: str, filename: str) -> str | None:
    """The cached file's path, or None (no network: huggingface_hub reads refs and snapshots)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # an invalid repo id, a broken cache
        return None
    return found if isinstance(found, str) else None


def hub_offline() -> bool:
    """Whether huggingface_hub is told to stay offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    truthy = {"1", "on", "yes", "true"}
    return any(
        os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def _progress_class(report: Callable[[float, str], None], label: str) -> type:
    """A tqdm subclass that forwards bytes to ``report`` and logs every 10 %."""
    from tqdm.auto import tqdm

    class Reporting(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("disable", False)
            super().__init__(*args, **kwargs)
            self._logged = -1

        def update(self, n: float | None = 1) -> bool | None:
            out = super().update(n)
            total = self.total or 0
            frac = (self.n / total) if total else 0.0
            report(frac, f"{label}: {human_bytes(self.n)} / {human_bytes(total)}")
            decile = int(frac * 10)
            if decile != self._logged:
                self._logged = decile
                log.info("%s: %d%% of %s", label, decile * 10, human_bytes(total))
            return out

    return Reporting


def _download_first(
    repo_id: str, alternatives: Sequence[str], progress: Progress | None, done: int, total: int
) -> str:
    from huggingface_hub import hf_hub_download

    errors = []
    for name in alternatives:
        label = f"downloading {repo_id}/{name}"

        def report(frac: float, msg: str) -> None:
            if progress is not None:
                progress((done + min(max(frac, 0.0), 1.0)) / max(total, 1), msg)

        report(0.0, label)
        try:
            return hf_hub_download(repo_id, name, tqdm_class=_progress_class(report, label))
        except Exception as exc:  # EntryNotFoundError → try the next; anything else is final
            errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            if type(exc).__name__ not in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
                break
    raise ModelUnavailableError(f"cannot download {repo_id}: {'; '.join(errors)}; {_how(repo_id)}")


def _how(repo_id: str) -> str:
    if hub_offline():
        return (
            "the hub is switched off (HF_HUB_OFFLINE=1): unset it, or fill the cache on a machine with network "
            f"(`hf download {repo_id}`) and copy it"
        )
    return "check the network and the repository id"
