"""The lazy chunks' finder, installed at the head of sys.meta_path by lite-env's loader.

It runs in the browser's worker: lite_env.site puts it into lite-env.mjs, which runs `main`
once the image's eager chunks are written. `_lite_env_lazy` is the loader's bridge (the
chunks, whether one is written, the one shared fetch of a chunk, a synchronous fetch, and the
writer of a chunk's files).
"""

import hashlib
import importlib
import sys
import zlib
from importlib.abc import MetaPathFinder


class LiteEnvLazyChunks(MetaPathFinder):
    """Writes a lite-env image chunk on the first import of one of its top-level modules
    (lite-env's loader installed this; the chunks' dist-info was written at start).

    Where the import can wait for a promise (JSPI: `can_run_sync()`), it waits for the
    loader's one fetch of the chunk, which the background prefetch may have started already:
    each chunk is fetched once. Elsewhere (and once waiting failed) it fetches the chunk with a
    synchronous request.
    """

    #: Pyodide's error when the runtime cannot wait for a promise after all (JSPI).
    STACK_SWITCHING = "stack switching not supported"

    def __init__(self, bridge, to_js, run_sync, can_run_sync):
        self.bridge, self.to_js = bridge, to_js
        self.run_sync, self.can_run_sync = run_sync, can_run_sync
        self.pending = {}
        self.waits = True
        for file, url, sha256, modules in bridge.chunks().to_py():
            for module in modules:
                self.pending.setdefault(module, []).append((file, url, sha256))

    def find_spec(self, fullname, path=None, target=None):
        self._write(fullname.partition(".")[0])
        return None

    def _write(self, key):
        chunks = self.pending.get(key)
        if not chunks:
            return
        for file, url, sha256 in chunks:
            if self.bridge.written(file):
                continue
            if not (self.waits and self.can_run_sync() and self._wait(file)):
                self._fetch(file, url, sha256)
        del self.pending[key]  # only now: a failed fetch is tried again by the next import
        importlib.invalidate_caches()

    def _wait(self, file):
        """Wait for the loader's one fetch of the chunk; False where the runtime cannot switch
        stacks after all (a runtime restored from a memory snapshot says it can, then fails)."""
        try:
            self.run_sync(self.bridge.load(file))
        except Exception as error:
            if self.STACK_SWITCHING not in str(error):
                raise ImportError(str(error)) from None  # the loader's message names the chunk
            self.waits = False
            return False
        return True

    def _fetch(self, file, url, sha256):
        data = self.bridge.fetch(url).to_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ImportError(f"lite-env: chunk {file} is corrupt; rebuild or redeploy the site")
        self.bridge.write(file, self.to_js(zlib.decompress(data, 31)))


def main():
    """Put the finder at the head of sys.meta_path."""
    import _lite_env_lazy
    from pyodide.ffi import can_run_sync, run_sync, to_js

    sys.meta_path.insert(0, LiteEnvLazyChunks(_lite_env_lazy, to_js, run_sync, can_run_sync))
