"""A static file server for a channel or a site: 127.0.0.1 by default, right content types,
and nothing served from outside its folder (neither through `..` nor through a symlink)."""

from __future__ import annotations

import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONTENT_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".json": "application/json",
    ".conda": "application/octet-stream",
    ".zst": "application/zstd",
    ".msgpack": "application/msgpack",
}


class StaticHandler(SimpleHTTPRequestHandler):
    """Serves files under one folder, quietly, with cross-origin isolation when asked."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **CONTENT_TYPES}
    isolate = False

    def translate_path(self, path: str) -> str:
        """The file for a URL path, or a path that does not exist when it would lead outside
        the folder (`..` is already dropped by the base class; this catches symlinks), holds
        a NUL or names something that is not a file or folder."""
        translated = super().translate_path(path)
        root = os.path.realpath(self.directory)
        nowhere = os.path.join(root, ".lite-env-outside-the-folder")
        if "\0" in translated:
            return nowhere  # `%00`: no file has a NUL in its name
        real = os.path.realpath(translated)
        if real != root and not real.startswith(root + os.sep):
            return nowhere
        if os.path.exists(real) and not (os.path.isfile(real) or os.path.isdir(real)):
            return nowhere  # a FIFO or device would hang or never end
        return translated

    def end_headers(self) -> None:
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        pass


class StaticServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 stalls clients that open many connections at once


def make_server(
    folder: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    isolate: bool = False,
    handler: type[StaticHandler] = StaticHandler,
) -> StaticServer:
    """A server for `folder` (not started: call serve_forever); port 0 picks a free port;
    `handler` may be a subclass of StaticHandler (tests log and delay requests with one)."""
    handler = type("Handler", (handler,), {"isolate": isolate})
    return StaticServer((host, port), functools.partial(handler, directory=str(folder)))
