"""The web app: the MISC demo plus the subjective study (Study and Admin tabs).

    python app.py [--host 127.0.0.1] [--port 7860] [--no-warm-up]

Host and port also come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; on a Hugging Face
Space (SPACE_ID set) it binds 0.0.0.0. MISC_PROFILE (offline | full | auto; auto on a
Space) picks each layer's backend (codec/profile.py); the other backend settings are
environment variables, all listed in the Demo tab's "Backends" panel. On ZeroGPU the
full profile's models are loaded before launch and the GPU steps run in ``spaces.GPU``
functions (demo/zerogpu.py). The study's settings: study/config.py.
"""

from __future__ import annotations

try:  # ZeroGPU: `spaces` must be imported before anything initialises CUDA
    import spaces  # noqa: F401
except ImportError:
    pass

import argparse
import logging
import os

import gradio as gr

from demo import zerogpu
from demo.backends import Backends
from demo.ui import build_demo_tab
from study.config import StudyConfig
from study.ui import build_study_tabs, launch_options

MAX_FILE_SIZE = "20mb"  # uploads (images, .misc files, study archives); pixels are capped in demo/session.py
TITLE = "MISC: semantic image compression"


def build_app(study_config: StudyConfig | None = None, backends: Backends | None = None) -> gr.Blocks:
    """The Blocks with the Demo, Study and Admin tabs (not launched)."""
    with gr.Blocks(title=TITLE) as app, gr.Tabs():
        build_demo_tab(backends or Backends())
        build_study_tabs(study_config or StudyConfig.from_env())
    return app


def launch_kwargs(host: str | None = None, port: int | None = None) -> dict:
    """What `launch` needs here: address, the study's keyboard script, the upload limit."""
    default_host = "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"
    return {
        "server_name": host or os.environ.get("GRADIO_SERVER_NAME") or default_host,
        "server_port": int(port or os.environ.get("GRADIO_SERVER_PORT") or 7860),
        **launch_options(),  # the study page script, admin login routes, no run history
        "max_file_size": MAX_FILE_SIZE,
    }


def _log_to_stderr() -> None:
    """The project's own log lines (profile, downloads, models loaded) reach the Space's log."""
    log = logging.getLogger("misc")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 on a Space)")
    parser.add_argument("--port", type=int, help="port (default 7860)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="do not load CLIP in the background at start (CLIP maps/metrics stay off)")
    args = parser.parse_args(argv)
    _log_to_stderr()
    backends = Backends()
    if backends.full and zerogpu.on_zerogpu():
        backends.preload()  # ZeroGPU places weights only for models loaded before launch
    if not args.no_warm_up:
        backends.start_warm_up()
    app = build_app(backends=backends)
    app.queue(default_concurrency_limit=1).launch(**launch_kwargs(args.host, args.port))


if __name__ == "__main__":
    main()
