"""Hostile environment files, lock files, channel URLs and requests: a one-line error, never a
hang, a memory blow-up or a traceback. Every case runs the real CLI in a fresh process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import index_channel

from lite_env.lock import MAX_LOCK_SIZE
from lite_env.spec import MAX_FILE_SIZE

LIST_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)
MAP_BOMB = "".join(
    f"{name}: &{name} {{{', '.join(f'k{i}: *{previous}' for i in range(9))}}}\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def one_line_error(result, *needles: str) -> None:
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize(
    "text",
    [
        'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + LIST_BOMB + "dependencies: *i\n",
        "a: &a {x: 1, y: 2}\n" + MAP_BOMB + "dependencies: [python]\nname: *i\n",
    ],
    ids=["list-aliases", "mapping-aliases"],
)
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, lite_env, text):
    (tmp_path / "environment.yml").write_text(text)
    assert len(text) < 1000
    started = time.monotonic()
    result = lite_env("solve", "environment.yml")
    one_line_error(result, "once YAML aliases are expanded")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "too-large", "folder"])
def test_an_environment_file_that_is_not_a_small_regular_file_is_refused(tmp_path, lite_env, kind):
    path = tmp_path / "environment.yml"
    if kind == "dev-zero":
        path = "/dev/zero"
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "too-large":
        path.write_text("dependencies: [python]\n" + "#" * MAX_FILE_SIZE + "\n")
    else:
        path.mkdir()
    result = lite_env("solve", path)
    one_line_error(result, str(path))


@pytest.mark.parametrize("kind", ["fifo", "too-large"])
def test_a_lock_file_that_is_not_a_small_regular_file_is_refused(tmp_path, lite_env, project, kind):
    lock = project / "environment.lock"
    if kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.write_text("#" * (MAX_LOCK_SIZE + 1))
    result = lite_env("install", "--locked", "-p", tmp_path / "prefix", project / "environment.yml")
    one_line_error(result, str(lock))


@pytest.mark.parametrize(
    "file_name, dependencies, needle",
    [
        ("[red]x.yml", "[python]", "channel '[/x]' is not a folder"),
        ("environment.yml", '["pkg [/x]"]', "invalid MatchSpec 'pkg [/x]'"),
        ("[bold]x.yml", '["a[/x]]"]', "[bold]x.yml"),
    ],
)
def test_markup_in_user_text_is_printed_as_text(
    tmp_path, lite_env, file_name, dependencies, needle
):
    channels = "['[/x]']" if "channel" in needle else "[./channel]"
    (tmp_path / "channel").mkdir()
    (tmp_path / file_name).write_text(f"channels: {channels}\ndependencies: {dependencies}\n")
    one_line_error(lite_env("solve", file_name), needle)


def test_markup_in_a_warning_and_a_table_is_printed_as_text(tmp_path, lite_env, small_channel):
    (tmp_path / "environment.yml").write_text(
        "channels: [./channel]\ndependencies: [comm]\n'[/x]': 1\n"
    )
    result = lite_env("solve", "environment.yml")
    assert result.code == 0, result.stderr
    assert "unknown key '[/x]' is ignored" in result.stderr


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:99999/", "https://", "http://[::1]:0/"]
)
def test_a_malformed_channel_url_is_refused_before_rattler_sees_it(tmp_path, lite_env, url):
    (tmp_path / "environment.yml").write_text(f"channels: ['{url}']\ndependencies: [python]\n")
    one_line_error(lite_env("solve", "environment.yml"), "invalid channel URL")


@pytest.mark.parametrize("base_url", ["http://[::1", "http://127.0.0.1:99999/"])
def test_a_local_channel_with_a_malformed_base_url_is_refused(
    tmp_path, lite_env, small_channel, base_url
):
    for subdir in ("noarch", "emscripten-wasm32"):
        repodata = small_channel / subdir / "repodata.json"
        document = json.loads(repodata.read_text())
        document.setdefault("info", {})["base_url"] = base_url
        repodata.write_text(json.dumps(document))
        for derived in (small_channel / subdir).glob("repodata*.zst"):
            derived.unlink()
    (tmp_path / "environment.yml").write_text("channels: [./channel]\ndependencies: [comm]\n")
    one_line_error(lite_env("solve", "environment.yml"), "not a usable repodata.json")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_hostile_paths_with_an_error_status_and_no_traceback(tmp_path):
    folder = index_channel(tmp_path / "channel")
    (folder / "hello.txt").write_text("hello")
    os.mkfifo(folder / "fifo")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lite_env", "channel", "serve", folder, "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                assert urllib.request.urlopen(base + "hello.txt").read() == b"hello"
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        for path in ("%00", "hello.txt%00", "%2e%2e%00/x", "fifo", "%ff%fe"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path, timeout=10)
            assert refused.value.code in (400, 404), path
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "Traceback" not in errors, errors
