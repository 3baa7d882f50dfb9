"""The study tabs served on a free loopback port, for tests that talk HTTP to them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from bench.study_load import free_port
from study.config import StudyConfig
from study.service import StudyService


@contextmanager
def serve_study(config: StudyConfig, service: StudyService) -> Iterator[str]:
    """Yield the base URL of a running app with the Study and Admin tabs; closed afterwards."""
    from study.ui import build_study_tabs, launch_options

    with gr.Blocks() as app, gr.Tabs():
        build_study_tabs(config, service)
    port = free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                       **launch_options())  # the page script and the study's routes (stimuli, login)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()
