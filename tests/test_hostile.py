"""Hostile packages and channels: refused with the package and the reason, nothing escapes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import conda_package, index_channel, runtime_packages, served

from lite_env import verify
from lite_env.conda_file import _json
from lite_env.verify import verify_package

try:
    from compression import zstd
except ImportError:
    from backports import zstd


def member(name: str, data: bytes = b"", **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def raw_conda(
    folder: Path,
    name: str,
    payload: list[tuple[tarfile.TarInfo, bytes]],
    *,
    paths: list[dict] | None = None,
    index_name: str | None = None,
) -> Path:
    """A .conda written member by member, with whatever paths.json and index.json say."""
    stem = f"{name}-1.0-0"
    index = {"name": index_name or name, "version": "1.0", "build": "0", "build_number": 0,
             "subdir": "noarch", "depends": []}  # fmt: skip
    if paths is None:
        paths = [{"_path": i.name, "path_type": "hardlink", "size_in_bytes": len(d),
                  "sha256": __import__("hashlib").sha256(d).hexdigest()}
                 for i, d in payload if i.isfile()]  # fmt: skip
    info = [
        member("info/index.json", _json(index)),
        member("info/paths.json", _json({"paths": paths, "paths_version": 1})),
    ]

    def tar_zst(members) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for tar_info, data in members:
                tar.addfile(tar_info, io.BytesIO(data) if tar_info.isfile() else None)
        return zstd.compress(buffer.getvalue())

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.conda"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", '{"conda_pkg_format_version": 2}')
        archive.writestr(f"pkg-{stem}.tar.zst", tar_zst(payload))
        archive.writestr(f"info-{stem}.tar.zst", tar_zst(info))
    return path


HOSTILE = {
    "dotdot": ([member("../escaped.txt", b"gotcha")], "a path outside the prefix"),
    "absolute": ([member("/tmp/lite-env-escaped.txt", b"gotcha")], "a path outside the prefix"),
    "symlink-out": (
        [member("lib/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd")],
        "a symlink pointing outside the prefix",
    ),
    "symlink-up": (
        [member("lib/up", type=tarfile.SYMTYPE, linkname="../../../outside")],
        "a symlink pointing outside the prefix",
    ),
    "hardlink": (
        [
            member("lib/a.txt", b"a"),
            member("lib/b.txt", type=tarfile.LNKTYPE, linkname="/etc/passwd"),
        ],
        "a hard link",
    ),
    "device": ([member("lib/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)], "a device"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_members_are_refused_by_verify(tmp_path, case):
    payload, reason = HOSTILE[case]
    problems = verify_package(raw_conda(tmp_path, case, payload))
    assert any(reason in problem for problem in problems), problems


def test_paths_json_that_lies_is_refused(tmp_path):
    lie = [{"_path": "lib/x.txt", "path_type": "hardlink", "size_in_bytes": 5, "sha256": "0" * 64}]
    problems = verify_package(
        raw_conda(tmp_path, "liar", [member("lib/x.txt", b"hello")], paths=lie)
    )
    assert problems == ["lib/x.txt: sha256 or size differs from paths.json"]


def test_a_decompression_bomb_stops_at_the_limit(tmp_path):
    bomb = raw_conda(tmp_path, "bomb", [member("lib/zeros", bytes(64 * 1024**2))])
    assert bomb.stat().st_size < 100_000
    assert verify_package(bomb, max_size=16 * 1024**2) == [
        "unpacks to more than 16,777,216 bytes; refused"
    ]


def hostile_project(tmp_path: Path, package: str) -> Path:
    channel = tmp_path / "channel"
    runtime_packages(channel)
    index_channel(channel)
    (tmp_path / "environment.yml").write_text(
        f"channels: [./channel]\ndependencies: [python, {package}]\n"
    )
    return channel


@pytest.mark.parametrize("case", ["dotdot", "symlink-out", "device"])
def test_install_refuses_a_hostile_package_and_writes_nothing(lite_env, tmp_path, case):
    channel = hostile_project(tmp_path, case)
    raw_conda(channel / "noarch", case, HOSTILE[case][0])
    index_channel(channel)
    result = lite_env("install", "-p", tmp_path / "out" / "prefix", tmp_path / "environment.yml")
    assert result.code == 1
    assert f"{case}-1.0-0.conda: refusing a package that is not sound" in result.stderr
    assert HOSTILE[case][1] in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "prefix").exists()
    assert not list(tmp_path.rglob("escaped.txt"))


def test_an_index_json_that_disagrees_with_the_channel_is_refused(lite_env, tmp_path):
    channel = hostile_project(tmp_path, "honest")
    conda_package(channel, "honest", "1.0", build="0")
    index_channel(channel)
    # the channel lists honest-1.0-0.conda; its file now says it is another package
    path = channel / "noarch" / "honest-1.0-0.conda"
    raw_conda(tmp_path / "swap", "honest", [member("lib/x.txt", b"x")], index_name="evil")
    path.write_bytes((tmp_path / "swap" / "honest-1.0-0.conda").read_bytes())
    repodata = json.loads((channel / "noarch" / "repodata.json").read_text())
    entry = repodata["packages.conda"]["honest-1.0-0.conda"]
    entry["sha256"] = __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    entry["size"] = path.stat().st_size
    entry.pop("md5", None)
    (channel / "noarch" / "repodata.json").write_text(json.dumps(repodata))
    for derived in channel.glob("*/repodata*.zst"):  # keep only the edited repodata.json
        derived.unlink()
    for shards in channel.glob("*/shards"):
        __import__("shutil").rmtree(shards)
    result = lite_env("install", "-p", tmp_path / "prefix", tmp_path / "environment.yml")
    assert result.code == 1, result.stderr
    assert "index.json says evil-1.0-0, the channel's record says honest-1.0-0" in result.stderr


def test_an_altered_package_cache_entry_is_unpacked_again(lite_env, project, tmp_path):
    env = project / "environment.yml"
    assert lite_env("install", "-p", tmp_path / "a", env).code == 0
    (cached,) = (tmp_path / "cache" / "pkgs").glob("comm-0.2.3-*/site-packages/comm/__init__.py")
    cached.write_text("EVIL = True\n")
    assert lite_env("install", "-p", tmp_path / "b", env).code == 0
    installed = tmp_path / "b" / "lib" / "python3.14" / "site-packages" / "comm" / "__init__.py"
    assert installed.read_text() == "VERSION = '0.2.3'\n"


class FaultyHandler(SimpleHTTPRequestHandler):
    """Serves repodata; answers package downloads with 500s or dropped connections."""

    fault = "500"
    failures_left = 10**6
    package_requests: dict[str, int] = {}

    def do_GET(self):
        if self.path.endswith(".conda"):
            counts = type(self).package_requests
            counts[self.path] = counts.get(self.path, 0) + 1
            if type(self).failures_left > 0:
                type(self).failures_left -= 1
                if self.fault == "drop":
                    self.connection.close()  # no status line at all
                    return
                self.send_error(500, "broken on purpose")
                return
        super().do_GET()

    def log_message(self, *args):
        pass


def faulty_server(channel: Path, fault: str, failures: int):
    handler = type(
        "Handler",
        (FaultyHandler,),
        {"fault": fault, "failures_left": failures, "package_requests": {}},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(channel)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_a_failing_http_channel_gives_a_clear_error_after_bounded_retries(
    lite_env, tmp_path, small_channel, fault
):
    server, handler = faulty_server(small_channel, fault, failures=10**6)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        (tmp_path / "environment.yml").write_text(f"channels: [{url}]\ndependencies: [comm]\n")
        result = lite_env("install", "-p", tmp_path / "prefix", tmp_path / "environment.yml")
    finally:
        server.shutdown()
    assert result.code == 1
    assert "cannot fetch" in result.stderr and "after 3 attempts" in result.stderr
    assert "Traceback" not in result.stderr
    assert handler.package_requests and max(handler.package_requests.values()) == 3


def test_a_flaky_http_channel_is_retried(lite_env, tmp_path, small_channel):
    server, _ = faulty_server(small_channel, "500", failures=2)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        (tmp_path / "environment.yml").write_text(f"channels: [{url}]\ndependencies: [comm]\n")
        result = lite_env("install", "-p", tmp_path / "prefix", tmp_path / "environment.yml")
    finally:
        server.shutdown()
    assert result.code == 0, result.stderr


def test_two_installs_sharing_a_cache_at_once_both_succeed(project, tmp_path):
    env = {**__import__("os").environ, "LITE_ENV_CACHE_DIR": str(tmp_path / "shared")}
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lite_env",
                "install",
                "-p",
                tmp_path / name,
                project / "environment.yml",
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("one", "two")
    ]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    for name in ("one", "two"):
        assert (tmp_path / name / "lib" / "python3.14" / "site-packages" / "tabulate").is_dir()


def test_serve_never_leaves_its_folder(tmp_path):
    import urllib.error
    import urllib.request

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("hello")
    (tmp_path / "secret.txt").write_text("secret")
    (site / "link.txt").symlink_to(tmp_path / "secret.txt")
    with served(site) as base:
        assert urllib.request.urlopen(base + "index.html").read() == b"hello"
        for path in ("../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "link.txt"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path)
            assert refused.value.code == 404, path


def test_verify_limit_reads_the_module_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "MAX_UNPACKED_SIZE", 1024)
    big = raw_conda(tmp_path, "big", [member("lib/zeros", bytes(4096))])
    assert verify_package(big) == ["unpacks to more than 1,024 bytes; refused"]


def test_a_request_to_another_service_of_the_checks_machine_leaves_the_site():
    """`lite-env check` counts what a hostile site asks of other ports of 127.0.0.1 (another
    service on the machine) as requests that left the site, like those to other hosts."""
    from lite_env.site_check import leaves_site

    origin = "http://127.0.0.1:8000"
    assert not leaves_site("http://127.0.0.1:8000/lab/index.html", origin)
    assert not leaves_site("ws://127.0.0.1:8000/api/kernels/1", origin)
    assert not leaves_site("data:text/plain,local", origin)
    assert leaves_site("http://127.0.0.1:8001/admin", origin)
    assert leaves_site("http://127.0.0.1/", origin)
    assert leaves_site("http://localhost:8000/", origin)
    assert leaves_site("https://example.invalid/", origin)
