"""`lite-env solve`: the real solver over a real channel, its table, JSON and errors."""

from __future__ import annotations

import json


def test_solve_prints_the_solution(lite_env, project):
    result = lite_env("solve", project / "environment.yml")
    assert result.code == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert set(rows) == {"comm", "pyodide-abi", "python", "python_abi", "tabulate", "traitlets"}
    assert rows["tabulate"][1] == "0.9.0"
    assert rows["python"][3].endswith("/emscripten-wasm32")


def test_solve_json(lite_env, project, small_channel):
    result = lite_env("solve", "--json", project / "environment.yml")
    assert result.code == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["tabulate"]["version"] == "0.9.0"
    assert records["tabulate"]["subdir"] == "noarch"
    assert records["comm"]["depends"] == ["python >=3.10", "traitlets >=4"]
    assert records["python"]["url"].startswith(small_channel.as_uri())
    assert len(records["python"]["sha256"]) == 64


def test_default_environment_is_the_one_in_the_current_folder(lite_env, project):
    result = lite_env("solve", "--json", cwd=project)
    assert result.code == 0, result.stderr
    assert "tabulate" in {r["name"] for r in json.loads(result.stdout)}


def test_unsatisfiable_spec_explains_without_traceback(lite_env, project):
    (project / "environment.yml").write_text(
        "channels: [../channel]\ndependencies:\n  - course-tools\n  - tabulate >=0.9\n"
    )
    result = lite_env("solve", project / "environment.yml")
    assert result.code == 1
    assert "cannot solve the environment" in result.stderr
    assert "course-tools" in result.stderr and "tabulate <0.9" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_channel_folder_is_a_clear_error(lite_env, project):
    (project / "environment.yml").write_text("channels: [./nowhere]\ndependencies: [tabulate]\n")
    result = lite_env("solve", project / "environment.yml")
    assert result.code == 1
    assert "environment.yml:1: channel './nowhere' is not a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_yaml_is_a_clear_error(lite_env, project):
    (project / "environment.yml").write_text("channels: [../channel\ndependencies: [tabulate]\n")
    result = lite_env("solve", project / "environment.yml")
    assert result.code == 1
    assert "environment.yml:" in result.stderr and "invalid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_compiled_package_for_another_abi_does_not_solve(lite_env, project, small_channel):
    from conftest import conda_package, index_channel

    conda_package(
        small_channel,
        "fakeext",
        "1.0",
        subdir="emscripten-wasm32",
        depends=("python_abi 3.14.* *_cp314", "pyodide-abi >=2025.0,<2025.1.0a0"),
    )
    index_channel(small_channel)
    (project / "environment.yml").write_text("channels: [../channel]\ndependencies: [fakeext]\n")
    result = lite_env("solve", project / "environment.yml")
    assert result.code == 1
    assert "pyodide-abi >=2025.0,<2025.1.0a0" in result.stderr
