"""The live demo: the Demo tab of the web app (app.py) and its API endpoints.

demo/ui.py        the tab's layout and event handlers (Gradio only)
demo/api.py       named endpoints "encode" and "decode" for gradio_client
demo/session.py   the steps as plain functions over codec/, bench.classical, metrics/
demo/backends.py  what is available here, why not, how to enable it; loaded decoders
demo/figures.py   the bit-budget bar and the item maps drawn over the image
demo/examples.py  offline example photographs (scikit-image)
"""

from demo.ui import build_demo_tab

__all__ = ["build_demo_tab"]
