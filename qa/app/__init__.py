"""The chat app's parts, each with one concern: rendering answers and sources as HTML
(:mod:`.render`), the event handlers over the library (:mod:`.handlers`), the Gradio layout
(:mod:`.layout`), the HTTP security middleware (:mod:`.security`) and the command-line flags
and launch (:mod:`.settings`); ``app.py`` at the repository's root only starts it. May import
every layer of ``qa`` below it.
"""

import os

# Before gradio is imported (by any module of this package): with analytics on, Blocks()
# starts a version check against api.gradio.app. HF_HUB_OFFLINE is deliberately NOT set: a
# sentence-transformers model named with --model may need to be downloaded once.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
