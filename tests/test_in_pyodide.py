"""The programs that run inside Pyodide, imported and run by host Python with fakes around them
(the browser and node tests run them for real)."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from lite_env.in_pyodide import compile_bytecode, lazy_finder, snapshot_imports
from lite_env.pyodide_node import program


class _Proxy:
    """Stands for a JS value: `.to_py()` / `.to_bytes()` give the Python one."""

    def __init__(self, value):
        self.value = value

    def to_py(self):
        return self.value

    def to_bytes(self):
        return self.value


class _Bridge:
    """The loader's `_lite_env_lazy` module: chunks, whether one is written, the shared fetch
    (a "promise": the chunk's file name), a synchronous fetch, the writer."""

    def __init__(self, chunks, served, prefetched=()):
        self.chunks_ = chunks
        self.served = served
        self.prefetched = set(prefetched)
        self.written_ = []
        self.fetched = []

    def chunks(self):
        return _Proxy(self.chunks_)

    def written(self, file):
        return file in (written for written, _ in self.written_)

    def load(self, file):
        return file

    def fetch(self, url):
        self.fetched.append(url)
        if url not in self.served:
            raise OSError(f"cannot fetch {url}")
        return _Proxy(self.served[url])

    def write(self, file, data):
        self.written_.append((file, data))


class _Loop:
    """Pyodide's run_sync and can_run_sync: waits for the bridge's fetch when `can` is set."""

    def __init__(self, bridge, can=True, failure=None):
        self.bridge, self.can, self.failure = bridge, can, failure

    def run_sync(self, promise):
        if self.failure:
            raise self.failure
        self.bridge.write(promise, "loaded")

    def can_run_sync(self):
        return self.can


def _finder(bridge, **loop) -> lazy_finder.LiteEnvLazyChunks:
    waits = _Loop(bridge, **loop)
    return lazy_finder.LiteEnvLazyChunks(bridge, bytes, waits.run_sync, waits.can_run_sync)


def _chunk(data: bytes) -> tuple[bytes, str]:
    packed = gzip.compress(data, mtime=0)
    return packed, hashlib.sha256(packed).hexdigest()


def test_the_finder_waits_for_the_loaders_one_fetch_of_a_chunk():
    bridge = _Bridge([["a.gz", "u/a.gz", "0" * 64, ["sympy", "isympy"]]], {})
    finder = _finder(bridge)
    assert finder.find_spec("json") is None and bridge.written_ == []
    assert finder.find_spec("sympy.core") is None  # it writes, then leaves the import to others
    finder.find_spec("isympy")  # another module of the same chunk: written once
    assert bridge.written_ == [("a.gz", "loaded")] and bridge.fetched == []


def test_a_chunk_written_already_is_not_fetched_again():
    bridge = _Bridge([["a.gz", "u/a.gz", "0" * 64, ["sympy"]]], {})
    bridge.write("a.gz", "prefetched")
    _finder(bridge).find_spec("sympy")
    _finder(bridge, can=False).find_spec("sympy")
    assert bridge.written_ == [("a.gz", "prefetched")] and bridge.fetched == []


def test_a_failed_fetch_fails_the_import_with_the_loaders_message_and_is_tried_again():
    bridge = _Bridge([["a.gz", "u/a.gz", "0" * 64, ["sympy"]]], {})
    finder = _finder(bridge, failure=RuntimeError("lite-env: chunk a.gz of package s is corrupt"))
    with pytest.raises(ImportError, match="chunk a.gz of package s is corrupt"):
        finder.find_spec("sympy")
    finder.run_sync = _Loop(bridge).run_sync
    finder.find_spec("sympy")
    assert bridge.written_ == [("a.gz", "loaded")]


def test_where_it_cannot_wait_the_finder_fetches_synchronously_and_checks_the_chunk():
    packed, digest = _chunk(b"files")
    bridge = _Bridge(
        [["a.gz", "u/a.gz", digest, ["sympy"]], ["b.gz", "u/b.gz", "0" * 64, ["b"]]], {}
    )
    finder = _finder(bridge, can=False)
    with pytest.raises(OSError):
        finder.find_spec("sympy")
    bridge.served |= {"u/a.gz": packed, "u/b.gz": packed}
    finder.find_spec("sympy")
    assert bridge.written_ == [("a.gz", b"files")]
    with pytest.raises(ImportError, match="chunk b.gz is corrupt"):
        finder.find_spec("b")
    assert bridge.written_ == [("a.gz", b"files")]


def test_the_snapshot_imports_report_each_module(capsys):
    snapshot_imports.main(["textwrap", "no_such_module_here"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("failed no_such_module_here: ModuleNotFoundError")
    assert lines[1:] == ["imported textwrap"]


def test_a_program_is_its_source_and_a_call_of_its_main():
    code = program("snapshot_imports", modules=["textwrap"])
    assert code.endswith("\nmain(**{'modules': ['textwrap']})\n")
    compile(code, "snapshot_imports", "exec")


def test_only_importable_standard_library_the_start_left_alone_leaves_the_zip():
    started = {"json", "os", "bdb"}
    lazy = compile_bytecode._lazy_member
    assert lazy("fractions.py", started) and lazy("xml/dom/minidom.py", started)
    # what the start imported stays whole, and what the finder could never import back
    assert not lazy("json/decoder.py", started) and not lazy("bdb.py", started)
    assert not lazy("_sysconfigdata__emscripten_wasm32-emscripten.py", started)
    assert not lazy("README.txt", started)
    # a hostile runtime's member names never leave the zip's folder
    assert not lazy("../../escaped.py", started) and not lazy("/etc/evil.py", started)
    assert not lazy("xml/../../escaped.py", started)
