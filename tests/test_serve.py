"""Precompressed site files and `lite-env serve`: gzip copies written reproducibly, sent to
clients that accept them (real HTTP on 127.0.0.1), the file as it is to all others."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lite_env.precompress import precompress
from lite_env.serve import IMMUTABLE, negotiate

MANIFEST = "static/lite-env/image-0123456789abcdef.json"
CHUNK = "static/lite-env/tabulate-0.9-0123456789abcdef.gz"
RUNTIME = "static/pyodide/pyodide.asm.mjs"


def _runtime_text() -> bytes:
    return b"".join(b"export const value%d = %d;\n" % (i, i * i) for i in range(400))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder shaped like a built site: its settings name an image of one chunk."""
    site = tmp_path / "site"
    (site / "static" / "lite-env").mkdir(parents=True)
    (site / "static" / "pyodide").mkdir()
    options = {"liteEnvManifestURL": f"./{MANIFEST}", "lockFileURL": "./lock.json"}
    plugin = {"@jupyterlite/pyodide-kernel-extension:kernel": {"loadPyodideOptions": options}}
    config = {"jupyter-config-data": {"litePluginSettings": plugin}}
    (site / "jupyter-lite.json").write_text(json.dumps(config))
    chunks = [{"file": Path(CHUNK).name, "package": "tabulate", "padding": "x" * 2000}]
    (site / MANIFEST).write_text(json.dumps({"format": "lite-env-image/1", "chunks": chunks}))
    (site / CHUNK).write_bytes(gzip.compress(b"chunk" * 1000, mtime=0))
    (site / RUNTIME).write_bytes(_runtime_text())
    (site / "lock.json").write_text(json.dumps({"packages": {"a": "b" * 3000}}))
    (site / "random.wasm").write_bytes(os.urandom(4096))  # does not shrink
    (site / "small.js").write_text("export {};\n")
    return site


def test_precompress_writes_reproducible_gzip_copies_of_the_files_that_shrink(site):
    written = precompress(site)
    names = {path.relative_to(site).as_posix() for path in written}
    # not: the chunk (gzip already), random bytes, files under 1 KiB (small.js, the settings)
    assert names == {f"{MANIFEST}.gz", f"{RUNTIME}.gz", "lock.json.gz"}
    copy = (site / RUNTIME).with_name("pyodide.asm.mjs.gz")
    assert gzip.decompress(copy.read_bytes()) == _runtime_text()
    header = copy.read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == bytes(4)  # no file name, modification time 0
    assert copy.stat().st_mtime_ns == (site / RUNTIME).stat().st_mtime_ns
    before = {path: path.read_bytes() for path in written}
    precompress(site)  # again: the same bytes, and no copy of a copy
    assert {path: path.read_bytes() for path in written} == before
    assert not list(site.rglob("*.gz.gz"))


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip", "gzip"),
        ("", None),
        ("deflate", None),
        ("gzip;q=0", None),
        ("GZIP ; Q=0.5", "gzip"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("*", "br"),
        ("*;q=0.3, br;q=0", "gzip"),
        ("identity;q=1, gzip;q=0.5", None),
        ("identity;q=0.5, gzip", "gzip"),
        ("gzip;q=bogus, br", "br"),
    ],
)
def test_accept_encoding_is_negotiated_with_q_values(header, chosen):
    assert negotiate(header, ["br", "gzip"]) == chosen


@pytest.fixture
def server(site: Path) -> Iterator[str]:
    """`lite-env serve` on a free port of 127.0.0.1; yields its base URL."""
    precompress(site)
    command = [sys.executable, "-m", "lite_env", "serve", site, "--port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, line
        yield found.group(0)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)
        assert "Traceback" not in errors, errors


def _get(url: str, method: str = "GET", **headers: str) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(response.headers.items()), response.read()


def test_a_client_that_accepts_gzip_gets_the_copy_with_the_files_type(server, site):
    headers, body = _get(server + RUNTIME, **{"Accept-Encoding": "br;q=0.9, gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-type"] == "text/javascript"
    assert headers["Vary"] == "Accept-Encoding"
    assert int(headers["Content-Length"]) == len(body) < len(_runtime_text()) / 2
    assert gzip.decompress(body) == (site / RUNTIME).read_bytes()


@pytest.mark.parametrize("accept", [None, "gzip;q=0", "identity, gzip;q=0.5", "deflate"])
def test_other_clients_get_the_file_as_it_is(server, site, accept):
    headers, body = _get(server + RUNTIME, **({"Accept-Encoding": accept} if accept else {}))
    assert "Content-Encoding" not in headers
    assert headers["Vary"] == "Accept-Encoding"
    assert body == (site / RUNTIME).read_bytes()


def test_a_range_request_gets_the_whole_file_as_it_is(server, site):
    headers, body = _get(server + RUNTIME, **{"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
    assert "Content-Encoding" not in headers and "Content-Range" not in headers
    assert body == (site / RUNTIME).read_bytes()


def test_head_sends_the_headers_of_get_and_no_body(server):
    accept = {"Accept-Encoding": "gzip"}
    got, _ = _get(server + RUNTIME, **accept)
    headed, body = _get(server + RUNTIME, "HEAD", **accept)
    assert body == b""
    assert {k: v for k, v in headed.items() if k != "Date"} == {
        k: v for k, v in got.items() if k != "Date"
    }


def test_a_br_copy_made_by_another_tool_is_preferred_when_accepted(server, site):
    (site / "lock.json.br").write_bytes(b"brotli bytes")
    headers, body = _get(server + "lock.json", **{"Accept-Encoding": "gzip, br"})
    assert (headers["Content-Encoding"], body) == ("br", b"brotli bytes")
    headers, body = _get(server + "lock.json", **{"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"


def test_the_image_files_named_by_their_content_are_immutable(server):
    for path in (MANIFEST, CHUNK):
        headers, _ = _get(server + path, **{"Accept-Encoding": "gzip"})
        assert headers["Cache-Control"] == IMMUTABLE, path
    for path in (RUNTIME, "lock.json", "jupyter-lite.json"):
        headers, _ = _get(server + path)
        assert "Cache-Control" not in headers, path
    headers, body = _get(server + CHUNK, **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in headers  # a chunk is gzip already, and sent as it is
    assert gzip.decompress(body) == b"chunk" * 1000


def test_a_copy_that_leads_outside_the_folder_is_never_sent(server, site, tmp_path):
    (tmp_path / "secret.gz").write_bytes(gzip.compress(b"secret"))
    (site / "lock.json.gz").unlink()
    (site / "lock.json.gz").symlink_to(tmp_path / "secret.gz")
    headers, body = _get(server + "lock.json", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in headers and body == (site / "lock.json").read_bytes()


def test_a_copy_older_than_its_file_is_stale_and_never_sent(server, site):
    lock = site / "lock.json"
    lock.write_text(json.dumps({"packages": {"changed": "c" * 3000}}))
    copy = site / "lock.json.gz"
    os.utime(lock, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))
    headers, body = _get(server + "lock.json", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in headers and body == lock.read_bytes()
