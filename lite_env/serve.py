"""A static file server for a channel or a site: 127.0.0.1 by default, right content types,
precompressed files sent to browsers that accept them, and nothing served from outside its
folder (neither through `..` nor through a symlink)."""

from __future__ import annotations

import functools
import os
from collections.abc import Collection, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from lite_env.precompress import ENCODINGS

CONTENT_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".json": "application/json",
    ".conda": "application/octet-stream",
    ".zst": "application/zstd",
    ".msgpack": "application/msgpack",
}
#: For files named by their content: browsers may keep them without asking again.
IMMUTABLE = "public, max-age=31536000, immutable"
#: A channel's index files (each subdir's repodata and shard index): they change in place.
CHANNEL_INDEXES = ("repodata.json", "repodata_shards")
#: The files of a channel that any page may read (the packages, indexes and shards).
CHANNEL_FILES = (".conda", ".tar.bz2", ".json", ".json.zst", ".msgpack.zst")


class StaticHandler(SimpleHTTPRequestHandler):
    """Serves files under one folder, quietly, with cross-origin isolation when asked.

    A file `name` with a precompressed copy beside it (`name.gz`, `name.br`) is sent as that
    copy, with `Content-Encoding`, to a client whose Accept-Encoding takes it (never for a
    Range request: this server answers those in full, as they are; never a copy older than
    its file, which was changed after the copy was made); the files in `immutable`
    (paths relative to the folder) are sent with Cache-Control: immutable.
    """

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **CONTENT_TYPES}
    isolate = False
    channel = False  # a conda channel: see make_server
    immutable: Collection[str] = frozenset()
    coding: str | None = None  # the content coding sent for this request, if any
    vary = False  # the file has precompressed copies: the answer depends on Accept-Encoding
    cache_control: str | None = None

    def parse_request(self) -> bool:
        self.coding, self.vary, self.cache_control = None, False, None  # one request each
        return super().parse_request()

    def translate_path(self, path: str) -> str:
        """The file to send for a URL path (its precompressed copy, when one is chosen), or a
        path that does not exist when it would lead outside the folder (`..` is already
        dropped by the base class; this catches symlinks), holds a NUL or names something
        that is not a file or folder."""
        translated = self._inside(super().translate_path(path))
        if not os.path.isfile(translated):
            return translated
        relative = os.path.relpath(translated, self.directory).replace(os.sep, "/")
        self.cache_control = IMMUTABLE if relative in self.immutable else None
        copies = {}
        modified = os.stat(translated).st_mtime_ns
        for coding, suffix in ENCODINGS:
            copy = self._inside(translated + suffix)
            # a copy older than its file is stale: the file was changed after the build
            if os.path.isfile(copy) and os.stat(copy).st_mtime_ns >= modified:
                copies[coding] = copy
        self.vary = bool(copies)
        if "Range" not in self.headers:
            self.coding = negotiate(self.headers.get("Accept-Encoding", ""), list(copies))
        return copies[self.coding] if self.coding else translated

    def guess_type(self, path: str) -> str:
        """The type of the file itself, also when its precompressed copy is sent."""
        suffix = dict(ENCODINGS).get(self.coding, "")
        return super().guess_type(path.removesuffix(suffix) if suffix else path)

    def _inside(self, translated: str) -> str:
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
        if self.coding:
            self.send_header("Content-Encoding", self.coding)
        if self.vary:
            self.send_header("Vary", "Accept-Encoding")
        if self.cache_control:
            self.send_header("Cache-Control", self.cache_control)
        name = os.path.basename(urlsplit(self.path).path)
        if self.channel and name.endswith(CHANNEL_FILES):
            self.send_header("Access-Control-Allow-Origin", "*")
            if name.startswith(CHANNEL_INDEXES):
                self.send_header("Cache-Control", "no-store")
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def list_directory(self, path):
        """A folder's listing, except in a channel (any page may read a channel's files)."""
        if self.channel:
            self.send_error(404)
            return None
        return super().list_directory(path)

    def log_message(self, format: str, *args) -> None:
        pass


def negotiate(accept_encoding: str, codings: Sequence[str]) -> str | None:
    """The content coding to send, among `codings` (in the server's order of preference), for
    an Accept-Encoding header; None for the file as it is.

    A coding goes when its q-value (given, or `*`'s) is above 0 and not below identity's
    given one; between equal q-values, the server's order decides.
    """
    weights = {}
    for item in accept_encoding.split(","):
        name, _, parameters = item.partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if name.strip():
            weights[name.strip().lower()] = weight
    best, best_weight = None, 0.0
    for coding in codings:
        weight = weights.get(coding, weights.get("*", 0.0))
        if weight > best_weight:
            best, best_weight = coding, weight
    return None if weights.get("identity", 0.0) > best_weight else best


class StaticServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 stalls clients that open many connections at once


def make_server(
    folder: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    isolate: bool = False,
    immutable: Collection[str] = frozenset(),
    channel: bool = False,
    handler: type[StaticHandler] = StaticHandler,
) -> StaticServer:
    """A server for `folder` (not started: call serve_forever); port 0 picks a free port.

    `immutable`: files named by their content (paths relative to the folder); `channel`: the
    folder is a conda channel: any origin may read it (Access-Control-Allow-Origin: *, for
    `%conda install` in a site's kernel; no listing of its folders) and its indexes are never
    kept by a client (another
    channel served later at the same URL must not be read through a stale index, whose shards
    are gone); `handler` may be a subclass of StaticHandler (tests log and delay requests with
    one).
    """
    settings = {"isolate": isolate, "immutable": frozenset(immutable), "channel": channel}
    handler = type("Handler", (handler,), settings)
    return StaticServer((host, port), functools.partial(handler, directory=str(folder)))
