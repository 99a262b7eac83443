"""Hostile records, prefixes and downloads: a record's fields are data, never paths.

A hand-edited lock or a hostile HTTP channel controls a record's file name, URL and bytes;
a prefix's conda-meta/ may be edited; `install -p` may be pointed at any folder. Canary files
around each attack show that nothing outside the prefix, the cache and the output changes.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from forge import holds_secret, plant_canaries, tree_state

from lite_env.install import PREFIX_MARKER

PACKAGE = "comm-0.2.3-pyh0_0.conda"


class ChannelHandler(SimpleHTTPRequestHandler):
    """Serves a channel folder; `flood` makes package downloads endless, `swap` serves other
    bytes than the channel lists. Counts the bytes it sent for packages."""

    flood = False
    swap = False
    sent = 0

    def do_GET(self):
        if self.path.endswith(".conda") and self.swap:
            data = bytearray(Path(self.translate_path(self.path)).read_bytes())
            data[-1] ^= 1  # as long as the real archive, one bit different
            self.send_response(200)
            self.end_headers()
            self.wfile.write(data)
            return
        if self.path.endswith(".conda") and self.flood:
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(4096):  # 256 MiB
                    self.wfile.write(bytes(65536))
                    type(self).sent += 65536
            except OSError:
                pass  # the client hung up
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_channel(small_channel):
    """The small channel served on 127.0.0.1; yields (base URL, handler class)."""
    handler = type("Handler", (ChannelHandler,), {"sent": 0})
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(small_channel))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def locked(tmp_path, lite_env, http_channel):
    """A project locked against the HTTP channel; returns a function that edits the lock's
    record for comm (adding `lines` after its `conda:` line) and installs it with --locked,
    checking that nothing outside the cache and the output changed."""
    url, _ = http_channel
    plant_canaries(tmp_path)
    (tmp_path / "environment.yml").write_text(f"channels: [{url}/]\ndependencies: [comm]\n")
    assert lite_env("lock", "environment.yml").code == 0
    lock = tmp_path / "environment.lock"
    original = lock.read_text()

    def install(*lines: str, conda_url: str | None = None):
        line = f"- conda: {conda_url or f'{url}/noarch/{PACKAGE}'}\n"
        text = original.replace(f"- conda: {url}/noarch/{PACKAGE}\n", line)
        head, found, tail = text.rpartition(line)  # the record, after the environment's list
        assert found and "\npackages:\n" in head
        lock.write_text(head + line + "".join(f"  {extra}\n" for extra in lines) + tail)
        before = tree_state(tmp_path, skip=("cache", "out"))
        result = lite_env("install", "--locked", "-p", "out/prefix", "environment.yml")
        assert tree_state(tmp_path, skip=("cache", "out")) == before
        assert "Traceback" not in result.stderr
        return result

    return install


@pytest.mark.parametrize(
    "file_name",
    [
        "../../../victim-1.0-0.conda",
        "../../../host/victim-1.0-0.tar.bz2",
        "{tmp}/host/victim-1.0-0.conda",
        "{tmp}/host/new-1.0-0.conda",
        "sub/comm-0.2.3-pyh0_0.conda",
        "sub\\..\\..\\comm-0.2.3-pyh0_0.conda",
        "comm-0.2.3-pyh0_0.whl",
    ],
)
def test_a_record_file_name_that_is_not_a_plain_name_is_refused(locked, tmp_path, file_name):
    file_name = file_name.format(tmp=tmp_path)
    result = locked(f"file_name: {file_name}")
    assert result.code == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and "must be a plain .conda or .tar.bz2 name" in first
    assert not (tmp_path / "host" / "new-1.0-0.conda").exists()
    assert not (tmp_path / "out" / "prefix").exists()


def test_a_url_whose_last_segment_climbs_is_refused(locked, tmp_path, http_channel):
    url, _ = http_channel
    result = locked(conda_url=f"{url}/noarch/..%2F..%2F..%2Fvictim-1.0-0.conda")
    # rattler keeps `%2F` in the file name: a plain name in the cache; the fetch then fails
    assert result.code == 1, result.stderr
    assert result.stderr.startswith("error: cannot fetch ..%2F..%2F..%2Fvictim-1.0-0.conda")
    assert not (tmp_path / "out" / "prefix").exists()


def test_a_download_cannot_run_past_the_record_size(locked, tmp_path, http_channel):
    _, handler = http_channel
    handler.flood = True
    result = locked()
    assert result.code == 1
    assert "the channel sends more than its" in result.stderr.splitlines()[0], result.stderr
    assert handler.sent < 64 * 1024**2  # the client hung up long before the 256 MiB
    assert not [p for p in (tmp_path / "cache").rglob("*.part")]


def test_a_cached_archive_is_kept_until_a_verified_one_replaces_it(locked, tmp_path, http_channel):
    _, handler = http_channel
    assert locked().code == 0
    (cached,) = (tmp_path / "cache" / "archives").glob(f"*/{PACKAGE}")
    cached.write_bytes(b"altered in the cache")
    handler.swap = True  # the channel now serves other bytes than it lists
    result = locked()
    assert result.code == 1 and "does not match its lock" in result.stderr
    assert cached.read_bytes() == b"altered in the cache"  # not deleted before a verified copy
    handler.swap = False
    assert locked().code == 0
    assert cached.read_bytes() != b"altered in the cache"


@pytest.fixture
def installed(tmp_path, lite_env, project):
    prefix = tmp_path / "prefix"
    assert lite_env("install", "-p", prefix, project / "environment.yml").code == 0
    plant_canaries(tmp_path)
    return prefix


def _list_in_conda_meta(prefix: Path, path: str) -> None:
    (meta,) = prefix.glob("conda-meta/comm-*.json")
    record = json.loads(meta.read_text())
    record["files"].append(path)
    meta.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "listed",
    [
        "../host/secret.txt",
        "lib/../../host/secret.txt",
        "{tmp}/host/secret.txt",
        "lib/outside/secret.txt",
        "lib/fifo",
    ],
)
def test_pack_refuses_conda_meta_paths_outside_the_prefix(installed, tmp_path, lite_env, listed):
    (installed / "lib" / "outside").symlink_to(tmp_path / "host")
    os.mkfifo(installed / "lib" / "fifo")
    _list_in_conda_meta(installed, listed.format(tmp=tmp_path))
    before = tree_state(tmp_path, skip=("image", "prefix", "cache"))
    result = lite_env("pack", installed, "-o", tmp_path / "image", "--bytecode", "none")
    assert result.code == 1, result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert tree_state(tmp_path, skip=("image", "prefix", "cache")) == before
    assert not holds_secret(tmp_path / "image") if (tmp_path / "image").exists() else True


def test_pack_keeps_a_symlink_as_a_link_never_its_target(installed, tmp_path, lite_env):
    (installed / "lib" / "passwd").symlink_to(tmp_path / "etc" / "passwd")
    _list_in_conda_meta(installed, "lib/passwd")
    result = lite_env("pack", installed, "-o", tmp_path / "image", "--bytecode", "none")
    assert result.code == 0, result.stderr
    assert not holds_secret(tmp_path / "image")


def _project_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "course"
    (folder / "notes.txt").write_text("my work\n")
    return folder


@pytest.mark.parametrize(
    "target",
    ["course", "course/notes.txt", "link-to-course", "course-with-conda-meta"],
)
def test_install_replaces_only_an_empty_folder_or_a_lite_env_prefix(
    tmp_path, lite_env, project, target
):
    (tmp_path / "link-to-course").symlink_to(project)
    (tmp_path / "course-with-conda-meta" / "conda-meta").mkdir(parents=True)
    (tmp_path / "course-with-conda-meta" / "keep.txt").write_text("keep\n")
    (project / "notes.txt").write_text("my work\n")
    before = tree_state(tmp_path, skip=("cache",))
    result = lite_env("install", "-p", target, project / "environment.yml", cwd=tmp_path)
    assert result.code == 1
    assert "is not a prefix lite-env installed; refusing to replace it" in result.stderr
    assert len(result.stderr.splitlines()) == 2 and "Traceback" not in result.stderr
    after = tree_state(tmp_path, skip=("cache",))
    after.pop("course/environment.lock", None)
    before.pop("course/environment.lock", None)
    assert after == before


def test_install_into_the_current_folder_is_refused(tmp_path, lite_env, project):
    (project / "notes.txt").write_text("my work\n")
    result = lite_env("install", "-p", ".", "environment.yml", cwd=project)
    assert result.code == 1 and "refusing to replace it" in result.stderr
    assert (project / "notes.txt").read_text() == "my work\n"


def test_install_replaces_an_empty_folder_and_its_own_prefix(tmp_path, lite_env, project):
    (tmp_path / "empty").mkdir()
    env = project / "environment.yml"
    assert lite_env("install", "-p", tmp_path / "empty", env).code == 0
    assert (tmp_path / "empty" / "conda-meta" / PREFIX_MARKER).is_file()
    assert lite_env("install", "-p", tmp_path / "empty", env).code == 0


def _prefix_with_extension(prefix: Path) -> Path:
    folder = prefix / "share" / "jupyter" / "labextensions" / "evil-ext"
    folder.mkdir(parents=True)
    package = {"name": "evil-ext", "version": "1.0", "jupyterlab": {"_build": {"load": "x.js"}}}
    (folder / "package.json").write_text(json.dumps(package))
    (prefix / "conda-meta").mkdir()
    return folder


def test_the_site_copy_of_an_extension_never_follows_a_link(tmp_path):
    from lite_env.errors import LiteEnvError
    from lite_env.extensions import copy_extension, environment_extensions

    plant_canaries(tmp_path)
    folder = _prefix_with_extension(tmp_path / "prefix")
    (folder / "static").mkdir()
    (folder / "static" / "secret.js").symlink_to(tmp_path / "host" / "secret.txt")
    (folder / "leak").symlink_to(tmp_path / "host")
    (extension,) = environment_extensions(tmp_path / "prefix")
    with pytest.raises(LiteEnvError, match="symlink"):
        copy_extension(extension, tmp_path / "site" / "extensions")
    assert not holds_secret(tmp_path / "site")


def test_an_extension_behind_a_symlinked_folder_is_refused(tmp_path):
    from lite_env.errors import LiteEnvError
    from lite_env.extensions import environment_extensions

    plant_canaries(tmp_path)
    outside = tmp_path / "host" / "labextensions"
    _prefix_with_extension(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "share" / "jupyter" / "labextensions").rename(outside)
    prefix = tmp_path / "prefix"
    (prefix / "share" / "jupyter").mkdir(parents=True)
    (prefix / "conda-meta").mkdir()
    (prefix / "share" / "jupyter" / "labextensions").symlink_to(outside)
    with pytest.raises(LiteEnvError, match="symlink"):
        environment_extensions(prefix)


@pytest.mark.parametrize("name", ["/tmp/lite-env-evil", "../../../outside", "@x/../../up", "other"])
def test_an_extension_named_anything_but_its_folder_is_refused(tmp_path, name):
    """An extension's copy goes to `<extensions>/<its name>`, replacing what is there: a name
    that is a path (or another extension's) would delete and write a folder of its choice."""
    from lite_env.errors import LiteEnvError
    from lite_env.extensions import LabExtension, copy_extension, environment_extensions

    folder = _prefix_with_extension(tmp_path / "prefix")
    document = json.loads((folder / "package.json").read_text())
    (folder / "package.json").write_text(json.dumps({**document, "name": name}))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "kept").write_text("kept")
    with pytest.raises(LiteEnvError, match="is not its folder's"):
        environment_extensions(tmp_path / "prefix")
    hostile = LabExtension(name=name, version="1.0", package="evil 1.0", folder=folder)
    extensions = tmp_path / "site" / "a" / "b" / "extensions"
    if name != "other":
        with pytest.raises(LiteEnvError, match="is not an extension's name"):
            copy_extension(hostile, extensions)
    assert (tmp_path / "outside" / "kept").read_text() == "kept"


EXTENSION = "share/jupyter/labextensions/evil-ext"


@pytest.mark.slow
def test_build_refuses_an_extension_holding_a_link_to_a_host_file(
    tmp_path, lite_env, default_channel
):
    """The package verifies and installs; its extension folder in the cached prefix then gets
    links to host files (an altered cache, or a verify bypass): the next build refuses it."""
    from conftest import conda_package, index_channel

    plant_canaries(tmp_path)
    extension = {"name": "evil-ext", "version": "1.0", "jupyterlab": {"_build": {"load": "x.js"}}}
    files = {
        f"{EXTENSION}/package.json": json.dumps(extension).encode(),
        f"{EXTENSION}/static/x.js": b"// remote entry\n",
    }
    conda_package(tmp_path / "evil-channel", "evil-ext", "1.0", files=files)
    index_channel(tmp_path / "evil-channel")
    (tmp_path / "environment.yml").write_text(
        f"channels:\n  - {default_channel}\n  - {tmp_path / 'evil-channel'}\ndependencies:\n"
        "  - python 3.14.*\n  - pyodide-kernel\n  - ipykernel\n  - piplite\n  - ipython\n"
        "  - jedi\n  - comm\n  - micropip\n  - evil-ext\n"
    )
    site = tmp_path / "out" / "site"
    first = lite_env("build", "--bytecode", "none", "environment.yml", "-o", site)
    assert first.code == 0, first.stderr
    assert (site / "extensions" / "evil-ext" / "static" / "x.js").is_file()
    before = tree_state(tmp_path / "out")
    (folder,) = (tmp_path / "cache" / "builds").glob("*/prefix/" + EXTENSION)
    (folder / "static" / "secret.js").symlink_to(tmp_path / "host" / "secret.txt")
    (folder / "leak").symlink_to(tmp_path / "host")
    again = lite_env("build", "--bytecode", "none", "environment.yml", "-o", site)
    assert again.code == 1, again.stderr
    assert again.stderr.startswith("error: ") and "Traceback" not in again.stderr
    assert "symlink" in again.stderr.splitlines()[0], again.stderr
    assert tree_state(tmp_path / "out") == before  # the site as it was, no staging left over
    assert not holds_secret(tmp_path / "out")


def test_a_runtime_file_that_is_a_symlink_is_not_copied(tmp_path):
    from lite_env.errors import LiteEnvError
    from lite_env.files import read_file_out

    plant_canaries(tmp_path)
    (tmp_path / "pyodide.asm.wasm").symlink_to(tmp_path / "host" / "secret.txt")
    with pytest.raises(LiteEnvError, match="symlink"):
        read_file_out(tmp_path / "pyodide.asm.wasm")
