"""The house rules of lite_env's imports (scripts/import_graph.py), checked on the real tree."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tree_keeps_the_house_rules():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "[pipeline]" in done.stdout and "lite_env.pip_channel -> " in done.stdout


def test_a_circle_is_refused():
    graph = _import_graph()
    edges = {"lite_env.lock": {"lite_env.solve"}, "lite_env.solve": {"lite_env.lock"}}
    assert graph.violations(edges, {}) == ["circle: lite_env.lock <-> lite_env.solve"]


def test_the_pipeline_reaches_the_channel_only_through_the_door():
    graph = _import_graph()
    edges = {
        "lite_env.pip_channel": {"lite_env.channel.pypi"},
        "lite_env.lock": {"lite_env.channel.wheel"},
        "lite_env.channel.pypi": set(),
        "lite_env.channel.wheel": set(),
    }
    (problem,) = graph.violations(edges, {})
    assert problem.startswith("lite_env.lock imports lite_env.channel.wheel")


def test_the_base_and_the_channel_do_not_import_the_pipeline():
    graph = _import_graph()
    edges = {
        "lite_env.files": {"lite_env.pack"},
        "lite_env.channel.index": {"lite_env.solve"},
        "lite_env.pack": set(),
        "lite_env.solve": set(),
    }
    assert graph.violations(edges, {}) == [
        "lite_env.channel.index (channel) imports lite_env.solve (pipeline)",
        "lite_env.files (base) imports lite_env.pack (pipeline)",
    ]


def test_a_function_local_import_counts(tmp_path):
    graph = _import_graph()
    source = tmp_path / "toolchain.py"
    source.write_text("def f():\n    from lite_env.channel.recipes import build_recipe\n")
    inside, _ = graph.imports(source, {"lite_env.channel.recipes"})
    assert inside == {"lite_env.channel.recipes"}


def test_rattler_build_stays_with_the_recipes():
    graph = _import_graph()
    problems = graph.violations({}, {"lite_env.lock": {"rattler_build"}})
    assert problems == ["lite_env.lock imports rattler_build: only lite_env.channel.recipes may"]
    # and the whole pipeline, with the pip door, loads without the recipe builder
    code = (
        "import sys, lite_env.pipeline, lite_env.addon;"
        " print(sorted(m for m in sys.modules if m in"
        " ('rattler_build', 'lite_env.channel.recipes', 'lite_env.channel.build')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
