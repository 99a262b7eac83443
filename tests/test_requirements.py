"""pip requirements files as the environment: includes, hashes and markers for the runtime,
on top of the kernel's packages; what pip would install elsewhere is refused at file:line."""

from __future__ import annotations

import re

import pytest

from lite_env.errors import LiteEnvError
from lite_env.kernel import KERNEL_PACKAGES
from lite_env.spec import read_spec

SIX = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"  # six 1.17.0's wheel
OTHER = "0" * 64


@pytest.fixture
def folder(tmp_path, small_channel):
    """A folder beside the small channel (`channel/`, where requirements files look)."""
    return tmp_path


def test_requirements_with_includes_markers_and_continuations(folder):
    (folder / "base.txt").write_text("attrs>=24  # the base\n")
    (folder / "extra").mkdir()
    (folder / "extra" / "plots.txt").write_text("-r ../base.txt\ncycler\n")
    (folder / "requirements.txt").write_text(
        "# course requirements\n"
        "--requirement extra/plots.txt\n"
        'pywin32==306; sys_platform == "win32"\n'
        'tabulate>=0.9 ; platform_system == "Emscripten" and python_version >= "3.14"\n'
        "sympy \\\n    >=1.13\n"
        "--prefer-binary\n"
    )
    spec = read_spec(folder / "requirements.txt")
    assert spec.pip == ("attrs>=24", "cycler", "tabulate>=0.9", "sympy>=1.13")
    assert spec.dependencies == KERNEL_PACKAGES
    assert [c.entry for c in spec.channels] == ["./channel"]
    assert spec.lock_path == folder / "requirements.lock"
    assert spec.pip_hashes == ()


def test_hash_pins_are_collected_per_project(folder):
    (folder / "requirements.txt").write_text(
        f"six==1.17.0 --hash=sha256:{SIX} \\\n    --hash=sha256:{OTHER}\n"
        f"attrs==24.1.0 --hash sha256:{OTHER}\n"
    )
    spec = read_spec(folder / "requirements.txt")
    assert spec.pip == ("six==1.17.0", "attrs==24.1.0")
    assert spec.pip_hashes == (("six", tuple(sorted((SIX, OTHER)))), ("attrs", (OTHER,)))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("six\n-e ./course-tools\n", 2, "editable installs are not supported"),
        ("git+https://example.invalid/six.git#egg=six\n", 1, "VCS, URL and path"),
        ("six @ https://example.invalid/six-1.0-py3-none-any.whl\n", 1, "VCS, URL and path"),
        ("./course-tools\n", 1, "VCS, URL and path"),
        (f"six>=1 --hash=sha256:{SIX}\n", 1, "is not pinned with `==`"),
        (f"six==1.17.0 --hash=sha256:{SIX}\nattrs\n", 2, "attrs has no --hash"),
        ("six==1.17.0 --hash=md5:abc\n", 1, "sha256:<64 hex digits>"),
        ("\n\n--index-url http://127.0.0.1:1/simple\n", 3, "'--index-url' is not supported"),
        ("-c constraints.txt\n", 1, "'-c' is not supported"),
        ("-r missing.txt\n", 1, "'missing.txt' does not exist"),
        ("six >=>1\n", 1, "invalid pip requirement"),
    ],
)
def test_unsupported_lines_are_refused_at_file_and_line(folder, text, line, message):
    path = folder / "requirements.txt"
    path.write_text(text)
    with pytest.raises(LiteEnvError) as caught:
        read_spec(path)
    assert caught.value.message.startswith(f"{path}:{line}: "), caught.value.message
    assert message in caught.value.message


def test_an_include_loop_is_refused(folder):
    (folder / "a.txt").write_text("-r b.txt\n")
    (folder / "b.txt").write_text("six\n-r a.txt\n")
    with pytest.raises(LiteEnvError, match=r"b.txt: .*a.txt includes itself"):
        read_spec(folder / "a.txt")


def test_a_wheel_that_no_hash_pin_allows_is_refused(lite_env, folder):
    """A real resolve of six from PyPI for Pyodide, checked before the conda solve: a wheel
    whose sha256 no pin allows is refused (tests/test_input_forms.py locks a right one)."""
    (folder / "channel" / "noarch").mkdir(exist_ok=True)
    path = folder / "requirements.txt"
    path.write_text(f"six==1.17.0 --hash=sha256:{OTHER}\n")
    result = lite_env("lock", path)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert re.search(r"six-1.17.0-py2.py3-none-any.whl has sha256 4721f391\w+, which none",
                     result.stderr.replace("\n", " ")), result.stderr  # fmt: skip
