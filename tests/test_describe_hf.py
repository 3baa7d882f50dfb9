"""HFDescriber's real loading and generation path, on tiny RANDOMLY INITIALISED VLMs.

No VLM weights can be had on this machine (no model hub), so two tiny models are built
from configs, each saved with ``save_pretrained`` together with its real processor and
loaded back by ``HFDescriber`` through ``AutoProcessor`` / ``AutoModelForImageTextToText``:
a LLaVA (CLIP vision tower + Llama decoder, ``LlavaProcessor``) and a Qwen2.5-VL
(windowed ViT with patch merging, M-RoPE decoder, ``Qwen2_5_VLProcessor`` with its
dynamic-resolution image processor), both with a character-level ``tokenizers``
tokenizer built in code and a chat template in the model's own style. Their answers
are random characters: these tests prove the plumbing (loading, chat template with the
image, pixel values reaching the model, generation length, slicing off the prompt,
decoding, parsing, limits), never the quality of a description.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from codec.describe import DescribeConfig, HFDescriber, get_describer
from codec.errors import DescriberError, ModelUnavailableError

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a shared, oversubscribed
    machine torch's thread pool can stall for minutes on a 16-channel convolution."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def char_tokenizer() -> Any:
    """A character-level fast tokenizer: any ASCII text round-trips, no files needed."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", "<pad>", "<image>", *string.printable])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )


def build_tiny_llava(path: Path) -> None:
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = char_tokenizer()
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        patch_size=16,
        num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
    )
    vision = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=16,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=4,
        vision_feature_layer=-1,
        image_seq_length=4,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).eval().save_pretrained(path)
    processor.save_pretrained(path)


def build_tiny_qwen25_vl(path: Path) -> None:
    """The same tiny Qwen2.5-VL the full-profile end-to-end test saves under the hub id."""
    from bench.random_models import tiny_qwen25_vl

    tiny_qwen25_vl(path)


BUILDERS = {"llava": build_tiny_llava, "qwen2.5-vl": build_tiny_qwen25_vl}
CLASSES = {
    "llava": ("LlavaForConditionalGeneration", "LlavaProcessor"),
    "qwen2.5-vl": ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor"),
}


@pytest.fixture(scope="module", params=list(BUILDERS))
def tiny_vlm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    path = tmp_path_factory.mktemp(f"tiny-{request.param}-random")
    BUILDERS[request.param](path)
    return request.param, path


@pytest.fixture(scope="module")
def tiny_llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-llava-random")
    build_tiny_llava(path)
    return path


@pytest.fixture
def image() -> Image.Image:
    return Image.new("RGB", (48, 40), (200, 30, 30))


def test_loads_with_from_pretrained_and_generates(tiny_vlm: tuple[str, Path], image: Image.Image) -> None:
    kind, path = tiny_vlm
    cfg = DescribeConfig(max_items=2, detail_words=4, overall_words=8, overall_max_words=10)
    describer = get_describer(f"hf:{path}", config=cfg, max_new_tokens=40)
    assert describer.name == f"hf:{path}"
    assert describer.vlm is None  # nothing is loaded before the first image

    d = describer.describe(image)

    assert (type(describer.vlm).__name__, type(describer.processor).__name__) == CLASSES[kind]
    raw = describer.last_raw_text
    assert isinstance(raw, str) and raw.strip()
    assert len(describer.processor.tokenizer(raw, add_special_tokens=False).input_ids) <= 40
    assert "most important" not in raw  # the echoed prompt was cut off
    # Random characters: whatever came back is held to the limits.
    assert not d.is_empty()
    assert len(d.items) <= 2 and all(len(i.detail.split()) <= 4 for i in d.items)
    assert len(d.overall.split()) <= 10


def test_prompt_carries_the_image_and_the_question(tiny_vlm: tuple[str, Path]) -> None:
    kind, path = tiny_vlm
    describer = HFDescriber(str(path), DescribeConfig(max_items=3)).load()
    prompt = describer.build_prompt_text()
    start = {"llava": "<|user|>\n<image>", "qwen2.5-vl": "<|im_start|>user\n<|vision_start|><|image_pad|>"}
    end = {"llava": "<|assistant|>\n", "qwen2.5-vl": "<|im_start|>assistant\n"}
    assert prompt.startswith(start[kind]) and prompt.endswith(end[kind])
    assert "3 most important items" in prompt


def test_generated_answer_is_sliced_decoded_and_parsed(
    tiny_vlm: tuple[str, Path], image: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model really runs; its new tokens are then replaced by a known answer, so the
    decode → parse half of the path is checked on text we know."""
    kind, path = tiny_vlm
    describer = HFDescriber(str(path), max_new_tokens=16).load()
    answer = json.dumps(
        {"items": [{"name": "red square", "detail": "flat colour"}], "overall": "A red picture."}
    )
    answer_ids = describer.processor.tokenizer(
        answer, add_special_tokens=False, return_tensors="pt"
    ).input_ids
    real_generate = describer.vlm.generate
    seen: dict[str, Any] = {}

    def generate(**kw: Any) -> torch.Tensor:
        seen.update(kw)
        out = real_generate(**kw)
        assert out.shape[1] <= kw["input_ids"].shape[1] + kw["max_new_tokens"]
        return torch.cat([kw["input_ids"], answer_ids], dim=1)

    monkeypatch.setattr(describer.vlm, "generate", generate)
    d = describer.describe(image)
    assert [(i.name, i.detail) for i in d.items] == [("red square", "flat colour")]
    assert d.overall == "A red picture."
    if kind == "llava":
        assert seen["pixel_values"].shape == (1, 3, 32, 32)
    else:  # flattened 2×3×14×14 patches, and the grid that places them
        ((t, h, w),) = seen["image_grid_thw"].tolist()
        assert t == 1 and h * w >= 4 and h % 2 == 0 and w % 2 == 0
        assert seen["pixel_values"].shape == (t * h * w, 2 * 3 * 14 * 14)
    assert seen["max_new_tokens"] == 16 and seen["do_sample"] is False
    assert describer.last_raw_text == answer


def test_empty_generation_is_an_error(
    tiny_llava_dir: Path, image: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    describer = HFDescriber(str(tiny_llava_dir)).load()
    eos = describer.processor.tokenizer.eos_token_id
    monkeypatch.setattr(
        describer.vlm, "generate", lambda **kw: torch.cat([kw["input_ids"], torch.tensor([[eos]])], dim=1)
    )
    with pytest.raises(DescriberError, match="held no description"):
        describer.describe(image)


def test_missing_local_weights_name_the_model_and_the_remedy(tmp_path: Path, image: Image.Image) -> None:
    missing = tmp_path / "no-such-vlm"
    with pytest.raises(ModelUnavailableError) as err:
        HFDescriber(str(missing)).describe(image)
    msg = str(err.value)
    assert str(missing) in msg and "save_pretrained" in msg and "HF_HOME" in msg and "HF_HUB_OFFLINE" in msg


def test_uncached_hub_model_offline_is_unavailable(
    image: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="Qwen/Qwen2.5-VL-3B-Instruct"):
        get_describer("hf:Qwen/Qwen2.5-VL-3B-Instruct").describe(image)


def test_a_text_only_model_is_refused_clearly(tmp_path: Path, image: Image.Image) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = char_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(DescriberError, match="not an image-text-to-text model"):
        HFDescriber(str(tmp_path)).describe(image)
