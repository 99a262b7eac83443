"""The programs that run inside Pyodide, imported and run by host Python with fakes around them
(the browser and node tests run them for real)."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from lite_env.in_pyodide import lazy_finder, snapshot_imports
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
    """The loader's `_lite_env_lazy` module: chunks, a synchronous fetch, the writer."""

    def __init__(self, chunks, served, prefetched=()):
        self.chunks_ = chunks
        self.served = served
        self.prefetched = set(prefetched)
        self.written = []

    def chunks(self):
        return _Proxy(self.chunks_)

    def fetch(self, url):
        if url not in self.served:
            raise OSError(f"cannot fetch {url}")
        return _Proxy(self.served[url])

    def write(self, file, data):
        self.written.append((file, data))

    def writeFetched(self, file):  # noqa: N802 (the loader's JS name)
        if file in self.prefetched:
            self.written.append((file, "prefetched"))
            return True
        return False


def _chunk(data: bytes) -> tuple[bytes, str]:
    packed = gzip.compress(data, mtime=0)
    return packed, hashlib.sha256(packed).hexdigest()


def test_the_finder_writes_a_chunk_on_the_first_import_of_its_module():
    packed, digest = _chunk(b"files")
    bridge = _Bridge([["a.gz", "u/a.gz", digest, ["sympy", "isympy"]]], {"u/a.gz": packed})
    finder = lazy_finder.LiteEnvLazyChunks(bridge, to_js=lambda data: data)
    assert finder.find_spec("json") is None and bridge.written == []
    assert finder.find_spec("sympy.core") is None  # it writes, then leaves the import to others
    assert bridge.written == [("a.gz", b"files")]
    finder.find_spec("isympy")  # another module of the same chunk: written once
    assert bridge.written == [("a.gz", b"files")]


def test_a_prefetched_chunk_is_not_fetched_again():
    bridge = _Bridge([["a.gz", "u/a.gz", "0" * 64, ["sympy"]]], {}, prefetched=["a.gz"])
    lazy_finder.LiteEnvLazyChunks(bridge, to_js=bytes).find_spec("sympy")
    assert bridge.written == [("a.gz", "prefetched")]


def test_a_corrupt_chunk_fails_the_import_and_a_failed_fetch_is_tried_again():
    packed, _ = _chunk(b"files")
    bridge = _Bridge([["a.gz", "u/a.gz", "0" * 64, ["sympy"]]], {})
    finder = lazy_finder.LiteEnvLazyChunks(bridge, to_js=bytes)
    with pytest.raises(OSError):
        finder.find_spec("sympy")
    bridge.served["u/a.gz"] = packed
    with pytest.raises(ImportError, match="chunk a.gz is corrupt"):
        finder.find_spec("sympy")
    assert bridge.written == []


def test_the_snapshot_imports_report_each_module(capsys):
    snapshot_imports.main(["textwrap", "no_such_module_here"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("failed no_such_module_here: ModuleNotFoundError")
    assert lines[1:] == ["imported textwrap"]


def test_a_program_is_its_source_and_a_call_of_its_main():
    code = program("snapshot_imports", modules=["textwrap"])
    assert code.endswith("\nmain(**{'modules': ['textwrap']})\n")
    compile(code, "snapshot_imports", "exec")
