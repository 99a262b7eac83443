"""The command paths no other test runs: `pack --explain`, `channel index`, `channel verify`."""

from __future__ import annotations

import json
import shutil


def test_channel_index_writes_the_repodata_and_refuses_a_missing_folder(lite_env, small_channel):
    for repodata in small_channel.glob("*/repodata.json"):
        repodata.unlink()
    result = lite_env("channel", "index", small_channel)
    assert result.code == 0, result.stderr
    names = {
        record["name"]
        for record in json.loads((small_channel / "noarch" / "repodata.json").read_text())[
            "packages.conda"
        ].values()
    }
    assert {"comm", "tabulate", "course-tools"} <= names
    missing = lite_env("channel", "index", small_channel.parent / "nowhere")
    assert missing.code == 1
    assert "no such channel folder" in missing.stderr


def test_channel_verify_passes_a_sound_channel_and_names_each_problem(lite_env, small_channel):
    result = lite_env("channel", "verify", small_channel)
    assert result.code == 0, result.stderr
    count = len(list(small_channel.glob("*/*.conda")))
    assert f"{count} packages verified" in result.stderr
    # a package whose bytes are not what its paths.json says, and a dependency gone
    package = next(small_channel.glob("noarch/traitlets-*.conda"))
    package.write_bytes(package.read_bytes()[:-200])
    shutil.rmtree(small_channel / "emscripten-wasm32")
    lite_env("channel", "index", small_channel)
    result = lite_env("channel", "verify", small_channel)
    assert result.code == 1
    assert f"noarch/{package.name}:" in result.stderr
    assert "unresolved" in result.stderr
    assert "Traceback" not in result.stderr


def test_pack_explain_reports_what_each_package_left_out(lite_env, project, tmp_path):
    prefix, image = tmp_path / "prefix", tmp_path / "image"
    installed = lite_env("install", "-p", prefix, project / "environment.yml")
    assert installed.code == 0, installed.stderr
    result = lite_env("pack", prefix, "-o", image, "--bytecode", "none", "--explain")
    assert result.code == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert result.stdout.split()[:5] == ["package", "files", "size", "dropped", "saved"]
    assert {"comm", "tabulate", "traitlets"} <= rows.keys()
    manifest = json.loads(next(image.glob("*.json")).read_text())
    files = {chunk["package"]: len(chunk["files"]) for chunk in manifest["chunks"]}
    assert int(rows["tabulate"][1]) == files["tabulate"]
    assert f"packed {len(manifest['chunks'])} chunks into {image}" in result.stderr
