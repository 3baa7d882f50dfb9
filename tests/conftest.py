"""Suite-wide settings: everything runs offline and deterministic; the study's browser fixture."""

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("SVT_LOG", "1")


@pytest.fixture()
def chromium():  # noqa: ANN201
    """Headless Debian Chromium with the study browser tests' flags (tests/test_study_browser.py)."""
    from playwright.sync_api import sync_playwright

    from tests.test_study_browser import ARGS, CHROMIUM

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()
