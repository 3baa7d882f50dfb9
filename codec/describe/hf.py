"""Describer with a local transformers vision-language model, loaded by name.

    name or local dir ─▶ AutoProcessor + AutoModelForImageTextToText .from_pretrained
    image + question ─▶ processor.apply_chat_template ─▶ processor(images, text)
                     ─▶ model.generate(max_new_tokens, greedy) ─▶ new tokens ─▶ decode
                     ─▶ parse_description ─▶ Description

Any chat VLM that transformers loads through ``AutoModelForImageTextToText`` works the
same way (Qwen2.5-VL, SmolVLM / Idefics3, LLaVA, Gemma 3, ...). Small models follow the
JSON format less faithfully than GPT-4o; the shared parser absorbs most of that.
Florence-2 takes task prompts, not questions: it is asked for its most detailed caption,
which becomes the paragraph alone (no items, hence no maps). Any other processor without
a chat template gets the question as plain text.

Weights are fetched the normal Hugging Face way, so they must be reachable: a local
directory written by ``save_pretrained``, the HF cache (``HF_HOME``), or the hub. When
none is, ``ModelUnavailableError`` says so. The model is loaded on first use, not when the
describer is made, so that listing backends in the demo costs nothing.
"""

from __future__ import annotations

import os
from typing import Any

from PIL import Image

from codec.describe.base import fit_image
from codec.describe.config import SYSTEM_PROMPT, DescribeConfig, build_prompt
from codec.describe.parse import parse_description
from codec.errors import DescriberError, ModelUnavailableError
from codec.records import Description

ENV_HF_MODEL = "MISC_VLM_HF_MODEL"


def _how_to_provide(model: str) -> str:
    return (
        f"Provide the weights of {model!r} as a local directory (save_pretrained layout: config.json, "
        "*.safetensors, processor and tokenizer files) and pass its path, or download it into the "
        f"Hugging Face cache beforehand (`hf download {model}`; HF_HOME chooses the cache), or allow "
        "network access to the hub (unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."
    )


def _model_classes() -> list[Any]:
    import transformers

    classes = []
    for cls_name in ("AutoModelForImageTextToText", "AutoModelForVision2Seq"):
        cls = getattr(transformers, cls_name, None)
        if cls is not None:
            classes.append(cls)
    return classes


class HFDescriber:
    """Describes an image with a transformers VLM (``model``: hub name or local directory).

    ``processor`` and ``vlm`` may be passed in already loaded (diffusers style: components
    are given, not created deep inside); otherwise ``load()`` creates them on first use.
    """

    def __init__(
        self,
        model: str | None = None,
        config: DescribeConfig | None = None,
        *,
        max_new_tokens: int | None = None,
        device: str | None = None,
        dtype: Any = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
        system_prompt: bool = False,
        image_max_side: int | None = 1024,
        processor: Any = None,
        vlm: Any = None,
    ) -> None:
        model = model or os.environ.get(ENV_HF_MODEL)
        if not model:
            raise ModelUnavailableError(
                f"hf describer: no model named. Pass one (hf:MODEL, e.g. hf:Qwen/Qwen2.5-VL-3B-Instruct) "
                f"or set {ENV_HF_MODEL}."
            )
        self.model_name = model
        self.config = config or DescribeConfig()
        self.max_new_tokens = max_new_tokens or self.config.token_budget()
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.local_files_only = local_files_only
        # Several chat templates (Idefics3/SmolVLM, Gemma) reject a system turn, so the
        # instruction is folded into the user turn unless asked otherwise.
        self.system_prompt = system_prompt
        self.image_max_side = image_max_side
        self.processor = processor
        self.vlm = vlm
        self.last_raw_text: str | None = None
        self.name = f"hf:{model}"
        self.random_weights = False  # set by load_full_describer for a test's random model

    def __repr__(self) -> str:
        return f"HFDescriber(model={self.model_name!r})"

    # ── loading ────────────────────────────────────────────────────────────────────────

    def load(self) -> HFDescriber:
        """Load processor and model with ``from_pretrained`` (once)."""
        if self.processor is not None and self.vlm is not None:
            return self
        try:
            import torch
            from transformers import AutoProcessor
        except ImportError as exc:  # pragma: no cover - transformers is pinned
            raise ModelUnavailableError(f"hf describer: transformers/torch not importable ({exc}).") from exc

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = self.dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
        kwargs: dict[str, Any] = {}
        if self.revision:
            kwargs["revision"] = self.revision
        if self.local_files_only is not None:
            kwargs["local_files_only"] = self.local_files_only
        try:
            processor = self.processor
            if processor is None:
                processor = AutoProcessor.from_pretrained(self.model_name, **kwargs)
            vlm = self.vlm
            errors: list[str] = []
            for cls in _model_classes() if vlm is None else []:
                try:
                    vlm = cls.from_pretrained(self.model_name, dtype=dtype, **kwargs)
                    break
                except ValueError as exc:  # this auto class does not know the architecture
                    errors.append(f"{cls.__name__}: {exc}")
            if vlm is None:
                raise DescriberError(
                    f"hf describer: {self.model_name!r} is not an image-text-to-text model that "
                    f"transformers can load ({'; '.join(errors)[:400]})."
                )
        except OSError as exc:
            raise ModelUnavailableError(
                f"hf describer: cannot load {self.model_name!r} ({(str(exc).splitlines() or [type(exc).__name__])[0][:200]}). "
                + _how_to_provide(self.model_name)
            ) from exc
        self.processor = processor
        self.vlm = vlm.to(device).eval()
        self.device = device
        return self

    # ── generation ─────────────────────────────────────────────────────────────────────

    def build_prompt_text(self) -> str:
        question = build_prompt(self.config)
        processor = self.processor
        if getattr(processor, "chat_template", None):
            messages: list[dict[str, Any]] = []
            if self.system_prompt:
                messages.append({"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]})
                user_text = question
            else:
                user_text = f"{SYSTEM_PROMPT}\n\n{question}"
            messages.append(
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user_text}]}
            )
            return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if type(processor).__name__.startswith("Florence2"):
            # Florence-2 answers fixed task prompts, not questions: its most detailed
            # caption becomes the paragraph, with no items (so no maps).
            return "<MORE_DETAILED_CAPTION>"
        return question

    def generate_text(self, image: Image.Image) -> str:
        """The model's raw answer to the question about ``image``."""
        import torch

        self.load()
        prompt = self.build_prompt_text()
        inputs = self.processor(
            images=[fit_image(image, self.image_max_side)], text=[prompt], return_tensors="pt"
        )
        model_dtype = getattr(self.vlm, "dtype", None)
        moved = {}
        for key, value in inputs.items():
            if hasattr(value, "to"):
                value = value.to(self.device)
                if model_dtype is not None and torch.is_floating_point(value):
                    value = value.to(model_dtype)
            moved[key] = value
        with torch.inference_mode():
            out = self.vlm.generate(**moved, max_new_tokens=self.max_new_tokens, do_sample=False)
        if not getattr(self.vlm.config, "is_encoder_decoder", False) and "input_ids" in moved:
            out = out[:, moved["input_ids"].shape[1] :]  # a decoder-only model echoes the prompt
        decode = getattr(self.processor, "batch_decode", None) or self.processor.tokenizer.batch_decode
        return decode(out, skip_special_tokens=True)[0]

    def describe(self, image: Image.Image) -> Description:
        text = self.generate_text(image)
        self.last_raw_text = text
        description = parse_description(text, self.config)
        if description.is_empty():
            raise DescriberError(f"{self.name}: the answer held no description: {text[:200]!r}")
        return description
