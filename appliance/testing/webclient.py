"""The browser participant's page, served for the demo and for testing.

The page (``appliance/testing/web/``) uses janus.js and adapter.js from Debian's
``libjs-janus-gateway`` and ``libjs-webrtc-adapter`` (under
``/usr/share/javascript``), which are served beside it. For deployment, serve
the same files next to Janus behind the web server (see docs/browser.md).

Example:

>>> import urllib.request
>>> with WebClientServer() as web:
...     page = urllib.request.urlopen(web.url).read()
>>> b"janus.js" in page
True
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

WEB_DIR = Path(__file__).resolve().parent / "web"
CHROMIUM = "/usr/bin/chromium"
# Headless Debian Chromium in the namespace: fake camera and microphone, no
# prompts, playback without a gesture, real host candidates (no mDNS).
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
JAVASCRIPT = Path("/usr/share/javascript")
LIBRARIES = {
    "/janus.js": JAVASCRIPT / "janus-gateway" / "janus.js",
    "/adapter.js": JAVASCRIPT / "webrtc-adapter" / "adapter.js",
}


class _Handler(SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        library = LIBRARIES.get(path.split("?", 1)[0])
        return str(library) if library is not None else super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own lines
        pass


class WebClientServer:
    """Serves the page on ``host:port`` (local-only by default) from a thread it owns.

    ``directory`` serves another page beside the same libraries (the benchmark's peer).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, directory: Path = WEB_DIR) -> None:
        missing = [str(path) for path in LIBRARIES.values() if not path.exists()]
        if missing:
            raise FileNotFoundError(f"install libjs-janus-gateway and libjs-webrtc-adapter (missing {', '.join(missing)})")
        self._server = ThreadingHTTPServer((host, port), functools.partial(_Handler, directory=str(directory)))
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="web-client", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)

    def __enter__(self) -> WebClientServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
