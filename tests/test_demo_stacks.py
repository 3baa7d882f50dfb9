"""The demo imports torch's stacks in one thread before any model load (demo/backends.py).

Two threads importing open_clip / diffusers and transformers at once can hand one of them
a half-initialised module ("cannot import name 'AutoProcessor' from 'transformers'", seen
in CI when the first /encode met the warm-up thread). These tests hold the first import
open and check that model loads and the warm-up's checks wait for it.
"""

from __future__ import annotations

import threading
import types

import pytest

import demo.backends as be
from demo.backends import Backends


@pytest.fixture
def held_import(monkeypatch):
    """import_stacks with one stack whose import blocks until ``release`` is set."""
    entered, release = threading.Event(), threading.Event()

    def import_module(name: str):
        entered.set()
        assert release.wait(30), "the test never released the import"
        return types.ModuleType(name)

    monkeypatch.setattr(be, "_stacks_imported", False)
    monkeypatch.setattr(be, "STACKS", ("a_stack",))
    monkeypatch.setattr(be, "importlib", types.SimpleNamespace(import_module=import_module))
    yield entered, release
    release.set()


def test_a_model_load_waits_until_another_threads_stack_import_is_done(held_import):
    entered, release = held_import
    importer = threading.Thread(target=be.import_stacks)
    importer.start()
    assert entered.wait(30)
    events: list[str] = []
    backends = Backends(profile="offline")

    def loader(progress):
        events.append("model loaded")
        return object()

    load = threading.Thread(target=backends._load, args=("decoder", "x", {}, loader, None))
    load.start()
    load.join(0.5)
    assert load.is_alive() and events == [], "the model load did not wait for the stack import"
    events.append("stacks imported")
    release.set()
    load.join(30)
    importer.join(30)
    assert events == ["stacks imported", "model loaded"]


def test_the_stacks_are_imported_once_and_first_by_the_warm_up(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(be, "_stacks_imported", False)
    monkeypatch.setattr(be, "STACKS", ("one", "two"))
    monkeypatch.setattr(
        be, "importlib", types.SimpleNamespace(import_module=lambda n: calls.append(n) or types.ModuleType(n))
    )
    backends = Backends(profile="offline")
    monkeypatch.setattr(backends, "_check_semantic", lambda: calls.append("metrics checked"))
    monkeypatch.setenv("MISC_SURGERY_PRETRAINED", "/nonexistent/clip.pt")
    backends.warm_up()
    be.import_stacks()
    with be.loading_models():
        pass
    assert calls == ["one", "two", "metrics checked"]


def test_a_stack_that_does_not_import_is_skipped(monkeypatch):
    def import_module(name: str):
        if name == "missing":
            raise ImportError("No module named 'missing'")
        return types.ModuleType(name)

    monkeypatch.setattr(be, "_stacks_imported", False)
    monkeypatch.setattr(be, "STACKS", ("missing", "present"))
    monkeypatch.setattr(be, "importlib", types.SimpleNamespace(import_module=import_module))
    be.import_stacks()
    assert be._stacks_imported
