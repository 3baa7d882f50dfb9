"""The shared reader of model answers, the word limits, the manual backend and the factory."""

from __future__ import annotations

import pytest
from PIL import Image

from codec.describe import (
    DescribeConfig,
    ManualDescriber,
    NoDescriber,
    available_describers,
    build_prompt,
    enforce_limits,
    get_describer,
    parse_description,
)
from codec.errors import DescriberError, ModelUnavailableError
from codec.records import Description, Item


def pairs(d: Description) -> list[tuple[str, str]]:
    return [(i.name, i.detail) for i in d.items]


# ── JSON answers ───────────────────────────────────────────────────────────────────────

GOOD = '{"items": [{"name": "brown dog", "detail": "sitting on grass"}, {"name": "red ball", "detail": "in its mouth"}], "overall": "A brown dog sits on a lawn holding a red ball."}'
EXPECTED = [("brown dog", "sitting on grass"), ("red ball", "in its mouth")]


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        f"```json\n{GOOD}\n```",
        f"```\n{GOOD}\n```",
        f"Sure! Here is the description you asked for:\n\n{GOOD}\n\nLet me know if you need more.",
        GOOD.replace('"}]', '"},]').replace('."}', '.",}'),  # trailing commas
        GOOD.replace('"', "'").replace("'s ", '"s '),  # Python-style single quotes
        GOOD.replace('"name"', '"Name"')
        .replace('"detail"', '"Description"')
        .replace('"overall"', '"Summary"'),
        '{"key_items": {"brown dog": "sitting on grass", "red ball": "in its mouth"}, '
        '"overall_description": "A brown dog sits on a lawn holding a red ball."}',
        '{"items": ["brown dog: sitting on grass", "red ball: in its mouth"], '
        '"overall": "A brown dog sits on a lawn holding a red ball."}',
        '{"items": [["brown dog", "sitting on grass"], ["red ball", "in its mouth"]], '
        '"overall": "A brown dog sits on a lawn holding a red ball."}',
        '{"response": ' + GOOD + "}",
        "\ufeff" + GOOD.replace("\n", "\r\n"),
    ],
)
def test_json_variants(text: str) -> None:
    d = parse_description(text)
    assert pairs(d) == EXPECTED
    assert d.overall == "A brown dog sits on a lawn holding a red ball."


def test_json_cut_off_by_max_tokens_keeps_what_arrived() -> None:
    d = parse_description(
        '{"items": [{"name": "boat", "detail": "small, white"}], "overall": "A boat on a calm lake at'
    )
    assert pairs(d) == [("boat", "small, white")]
    assert d.overall == "A boat on a calm lake at"


def test_json_with_unescaped_newline_in_string() -> None:
    d = parse_description('{"items": [], "overall": "Line one.\nLine two."}')
    assert d.overall == "Line one. Line two."


def test_json_detail_lists_are_joined() -> None:
    d = parse_description('{"objects": {"cat": ["black", "small"]}, "caption": "A cat."}')
    assert pairs(d) == [("cat", "black, small")]


def test_json_keys_are_matched_loosely() -> None:
    d = parse_description(
        '{"Key Items": [{"item_name": "dog", "item_detail": "brown"}], "Overall Description (50 words)": "A dog."}'
    )
    assert pairs(d) == [("dog", "brown")] and d.overall == "A dog."


def test_a_bare_json_list_of_items() -> None:
    d = parse_description('[{"object": "cat", "attributes": "black"}, {"label": "sofa", "desc": "grey"}]')
    assert pairs(d) == [("cat", "black"), ("sofa", "grey")]
    assert d.overall == ""


def test_braces_in_prose_that_are_not_json_fall_back_to_text() -> None:
    d = parse_description("A sign reads {OPEN} above a small shop door.")
    assert d.items == []
    assert d.overall == "A sign reads {OPEN} above a small shop door."


# ── text answers ───────────────────────────────────────────────────────────────────────


def test_numbered_list_then_paragraph() -> None:
    text = (
        "1. dog: brown, sitting\n2. **Red Car** - parked by the curb\n3) tree (tall, green)\n\n"
        "A brown dog sits near a red car under a tall tree."
    )
    d = parse_description(text)
    assert pairs(d) == [("dog", "brown, sitting"), ("Red Car", "parked by the curb"), ("tree", "tall, green")]
    assert d.overall == "A brown dog sits near a red car under a tall tree."


def test_headings_items_and_overall() -> None:
    d = parse_description("Items:\n- Dog: brown\n- Cat: black\n\nOverall: A dog and a cat play on a rug.")
    assert pairs(d) == [("Dog", "brown"), ("Cat", "black")]
    assert d.overall == "A dog and a cat play on a rug."


def test_markdown_headings_with_nested_bullets() -> None:
    text = (
        "### **Key items:**\n1. **Dog**\n   - brown fur, sitting\n2. **Bench**\n   - weathered wood\n\n"
        "**Overall description:**\nA dog sits beside a wooden bench in a *sunny* park."
    )
    d = parse_description(text)
    assert pairs(d) == [("Dog", "brown fur, sitting"), ("Bench", "weathered wood")]
    assert d.overall == "A dog sits beside a wooden bench in a sunny park."


def test_misc_paper_layout() -> None:
    # The layout of MISC's published GPT-4V example: names, one detail line per item, paragraph.
    text = (
        "Astronaut Helmet, Blue Hair, Orange Paint Splatter.\n"
        "A white astronaut helmet with reflections. \n"
        "Flowing blue hair with lighter blue highlights. \n"
        "Bright orange paint splatter effects surrounding the helmet. \n\n"
        "The most striking object is the white astronaut helmet that dominates the center."
    )
    d = parse_description(text)
    assert [i.name for i in d.items] == ["Astronaut Helmet", "Blue Hair", "Orange Paint Splatter"]
    assert d.items[0].detail == "A white astronaut helmet with reflections"
    assert d.overall.startswith("The most striking object")


def test_name_and_detail_on_separate_lines() -> None:
    d = parse_description("Name: dog\nDetail: brown\nName: cat\nDetail: black\n\nDescription: two pets.")
    assert pairs(d) == [("dog", "brown"), ("cat", "black")]
    assert d.overall == "two pets."


def test_inline_name_detail_pairs() -> None:
    d = parse_description(
        "- Name: dog, Detail: brown and fluffy\n- Name: cat; Detail: black\n\nTwo pets on a sofa."
    )
    assert pairs(d) == [("dog", "brown and fluffy"), ("cat", "black")]


def test_items_heading_with_comma_list_of_names() -> None:
    d = parse_description("Items: dog, red car, tree\nOverall: A quiet street.")
    assert pairs(d) == [("dog", ""), ("red car", ""), ("tree", "")]
    assert d.overall == "A quiet street."


def test_items_heading_without_overall_heading() -> None:
    d = parse_description(
        "Key objects:\n* lighthouse: white, red stripes\n* rocks: dark, wet\n\nA lighthouse stands on dark rocks."
    )
    assert pairs(d) == [("lighthouse", "white, red stripes"), ("rocks", "dark, wet")]
    assert d.overall == "A lighthouse stands on dark rocks."


@pytest.mark.parametrize(
    "text,expected_items,expected_overall",
    [
        ("Description of the image:\nA dog sits on a lawn.", [], "A dog sits on a lawn."),
        ("Items: [dog, cat]\nOverall: pets.", [("dog", ""), ("cat", "")], "pets."),
        ("1. Dog\n2. Cat\n\nTwo pets sleep.", [("Dog", ""), ("Cat", "")], "Two pets sleep."),
        (
            "Key items:\n\n1. Dog: brown\n\n2. Cat: black\n\nOverall description:\n\nTwo pets.",
            [("Dog", "brown"), ("Cat", "black")],
            "Two pets.",
        ),
        (
            "**Items:**\n1. **Helmet** \u2013 white, reflective\n2. **Blue hair:** flowing\n\n**Overall:** A portrait.",
            [("Helmet", "white, reflective"), ("Blue hair", "flowing")],
            "A portrait.",
        ),
        ("Overall, the scene is calm: a lake at dusk.", [], "Overall, the scene is calm: a lake at dusk."),
    ],
)
def test_more_small_model_layouts(
    text: str, expected_items: list[tuple[str, str]], expected_overall: str
) -> None:
    d = parse_description(text)
    assert pairs(d) == expected_items
    assert d.overall == expected_overall


def test_a_bare_caption_is_the_paragraph() -> None:
    d = parse_description("A small boat floats on a calm lake at sunset.")
    assert d.items == []
    assert d.overall == "A small boat floats on a calm lake at sunset."


def test_a_caption_with_a_colon_is_not_mistaken_for_an_item() -> None:
    text = "The photo shows the following scene: a long wooden pier stretching into a misty grey sea at dawn."
    d = parse_description(text)
    assert d.items == []
    assert d.overall == text


@pytest.mark.parametrize("text", ["", "   \n\n ", "```\n```", "{}", "[]"])
def test_empty_answers_give_an_empty_description(text: str) -> None:
    assert parse_description(text).is_empty()


def test_huge_input_is_cut_before_parsing() -> None:
    d = parse_description("dog: brown\n\n" + "_a* " * 200_000)
    assert [i.name for i in d.items] == ["dog"]
    assert len(d.overall.split()) <= DescribeConfig().overall_cap


def test_typographic_characters_become_ascii() -> None:
    d = parse_description("\u201cA dog\u2019s ball \u2014 red\u2026\u201d")
    assert d.overall == "A dog's ball - red..."


# ── limits ─────────────────────────────────────────────────────────────────────────────


def test_limits_are_enforced_on_every_field() -> None:
    cfg = DescribeConfig(max_items=2, name_words=2, detail_words=4, overall_words=10, overall_max_words=12)
    raw = Description(
        items=[
            Item("The big brown shaggy dog", "sitting on the green grass near a fence."),
            Item("  ", "nameless"),
            Item("big brown", "duplicate name, dropped"),
            Item('"red ball"', "**bright** red"),
            Item("third item", "over the item limit"),
        ],
        overall=" ".join(f"w{i}" for i in range(40)),
    )
    d = enforce_limits(raw, cfg)
    assert pairs(d) == [("big brown", "sitting on the green"), ("red ball", "bright red")]
    assert len(d.overall.split()) == 12


def test_paragraph_is_cut_at_a_sentence_end_when_one_is_near() -> None:
    cfg = DescribeConfig(overall_words=10, overall_max_words=12)
    text = "One two three four five six seven eight nine ten. Eleven twelve thirteen fourteen."
    assert parse_description(text, cfg).overall == "One two three four five six seven eight nine ten."


def test_default_limits_match_misc() -> None:
    cfg = DescribeConfig()
    assert (cfg.max_items, cfg.name_words, cfg.detail_words, cfg.overall_words) == (3, 3, 10, 50)
    long_answer = {
        "items": [{"name": f"item {k} extra words", "detail": " ".join(["word"] * 30)} for k in range(6)],
        "overall": " ".join(["word"] * 200) + ".",
    }
    import json

    d = parse_description(json.dumps(long_answer))
    assert len(d.items) == 3
    assert all(len(i.name.split()) <= 3 and len(i.detail.split()) <= 10 for i in d.items)
    assert len(d.overall.split()) <= cfg.overall_cap == 70


def test_zero_items_keeps_only_the_paragraph() -> None:
    d = parse_description(GOOD, DescribeConfig(max_items=0))
    assert d.items == []
    assert d.overall


def test_config_validation_and_prompt() -> None:
    with pytest.raises(ValueError):
        DescribeConfig(max_items=-1)
    with pytest.raises(ValueError):
        DescribeConfig(detail_words=0)
    prompt = build_prompt(DescribeConfig(max_items=5, name_words=2, detail_words=7, overall_words=30))
    assert "5 most important items" in prompt and "at most 2 words" in prompt and "at most 7 words" in prompt
    assert "about 30 words" in prompt and '"items"' in prompt and '"overall"' in prompt
    assert "most important items" not in build_prompt(DescribeConfig(max_items=0))


# ── manual backend and factory ─────────────────────────────────────────────────────────


def test_manual_line_format() -> None:
    m = ManualDescriber("red car: parked by the curb\nold man: grey coat, walking a dog\n\nA quiet street.")
    d = m.describe(Image.new("RGB", (8, 8)))
    assert pairs(d) == [("red car", "parked by the curb"), ("old man", "grey coat, walking a dog")]
    assert d.overall == "A quiet street."
    assert m.name == "manual"
    d.items.clear()  # callers get a copy
    assert len(m.describe(None).items) == 2


def test_manual_json_and_paragraph_only() -> None:
    assert pairs(get_describer("manual", text=GOOD).describe(None)) == EXPECTED
    d = get_describer("manual", text="Just a misty forest at dawn.").describe(None)
    assert d.items == [] and d.overall == "Just a misty forest at dawn."


@pytest.mark.parametrize("text", ["", "   ", None, "{}"])
def test_manual_rejects_empty_text(text: str | None) -> None:
    with pytest.raises(DescriberError, match="manual describer"):
        ManualDescriber(text)  # type: ignore[arg-type]


def test_factory_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISC_VLM_API_KEY", "k")
    o = get_describer("openai:gpt-4.1-mini")
    assert o.name == "openai:gpt-4.1-mini"
    h = get_describer("hf:some-org/some-vlm", config=DescribeConfig(max_items=2))
    assert h.name == "hf:some-org/some-vlm" and h.config.max_items == 2
    n = get_describer("none")
    assert isinstance(n, NoDescriber) and n.describe(Image.new("RGB", (4, 4))).is_empty()
    with pytest.raises(DescriberError, match="unknown describer"):
        get_describer("gpt5")


def test_factory_unconfigured_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MISC_VLM_API_KEY", "OPENAI_API_KEY", "MISC_VLM_BASE_URL", "MISC_VLM_HF_MODEL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ModelUnavailableError, match="MISC_VLM_API_KEY"):
        get_describer("openai")
    with pytest.raises(ModelUnavailableError, match="MISC_VLM_HF_MODEL"):
        get_describer("hf")


def test_available_describers(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MISC_VLM_API_KEY", "OPENAI_API_KEY", "MISC_VLM_BASE_URL", "MISC_VLM_HF_MODEL"):
        monkeypatch.delenv(var, raising=False)
    status = available_describers()
    assert set(status) == {"openai", "hf", "manual", "none"}
    assert status["openai"][0] is False and "MISC_VLM_API_KEY" in status["openai"][1]
    assert status["hf"][0] is False and status["manual"][0] and status["none"][0]

    monkeypatch.setenv("MISC_VLM_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("MISC_VLM_HF_MODEL", "HuggingFaceTB/SmolVLM-256M-Instruct")
    status = available_describers()
    assert status["openai"][0] and "127.0.0.1:8000" in status["openai"][1]
    assert status["hf"][0] and "weights" in status["hf"][1]

    monkeypatch.delenv("MISC_VLM_BASE_URL")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert available_describers()["openai"][0]
