"""Property-based: any environment file and MatchSpec gives a clear error or a valid spec."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rattler import MatchSpec
from ruamel.yaml import YAML

from lite_env.errors import LiteEnvError
from lite_env.spec import read_spec

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = st.sampled_from(
    ["name", "channels", "dependencies", "pip", "variables", "prefix", "lite-env", "bytecode",
     "exclude", "keep", "exclude-by-package", "preload"]
) | st.text(max_size=8)  # fmt: skip
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


def outcome(tmp_path, text: str):
    path = tmp_path / "environment.yml"
    path.write_text(text)
    try:
        return read_spec(path)
    except LiteEnvError as error:
        assert error.message.startswith(str(path)) or "environment file" in error.message
        return error


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_is_a_spec_or_a_clear_error(tmp_path_factory, text):
    outcome(tmp_path_factory.mktemp("text"), text)


@SETTINGS
@given(document=st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_yaml_mapping_is_a_spec_or_a_clear_error(tmp_path_factory, document):
    folder = tmp_path_factory.mktemp("yaml")
    (folder / "channel").mkdir()
    stream = io.StringIO()
    YAML(typ="safe").dump(document, stream)
    outcome(folder, stream.getvalue())


@SETTINGS
@given(specs=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=4))
def test_any_matchspec_text_is_checked(tmp_path_factory, specs):
    folder = tmp_path_factory.mktemp("specs")
    (folder / "channel").mkdir()
    stream = io.StringIO()
    YAML(typ="safe").dump({"channels": ["./channel"], "dependencies": specs}, stream)
    result = outcome(folder, stream.getvalue())
    if not isinstance(result, LiteEnvError):
        for spec in result.dependencies:
            MatchSpec(spec)  # every accepted dependency is a valid MatchSpec
