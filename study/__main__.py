"""``python -m study``: the Study and Admin tabs alone (the full app is app.py)."""

from __future__ import annotations

import argparse

import gradio as gr

from study.config import StudyConfig
from study.ui import build_study_tabs, launch_options


def build(config: StudyConfig | None = None) -> gr.Blocks:
    with gr.Blocks(title="MISC subjective study") as demo, gr.Tabs():
        build_study_tabs(config)
    return demo


def main() -> None:
    ap = argparse.ArgumentParser(description="Launch the MISC study tabs")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7861)
    args = ap.parse_args()
    build().launch(server_name=args.host, server_port=args.port, **launch_options())


if __name__ == "__main__":
    main()
