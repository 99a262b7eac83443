"""The three input forms end to end against the repository's channel: an environment.yml and
the equivalent pixi.toml give the same site, byte for byte; a requirements file locks its PyPI
requirements on top of the kernel's packages, with its --hash pins honoured."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from conftest import run_in_site

from lite_env.errors import LiteEnvError
from lite_env.kernel import KERNEL_PACKAGES
from lite_env.lock import lock_environment
from lite_env.pipeline import build
from lite_env.spec import read_spec

pytestmark = pytest.mark.slow

PACKAGES = (*KERNEL_PACKAGES, "tabulate")
INICONFIG = "9121e2c1fdb355232495be3194c8dfe87ccc2d5dee45947b78e68f499790d7a7"  # 2.3.1's wheel


@pytest.fixture
def course(tmp_path, default_channel) -> Path:
    """A folder with the repository's channel as `channel/`, and the same small environment
    written as environment.yml and as a pixi workspace."""
    (tmp_path / "channel").symlink_to(default_channel)
    (tmp_path / "environment.yml").write_text(
        "channels: [./channel]\ndependencies:\n" + "".join(f"  - {p}\n" for p in PACKAGES)
    )
    dependencies = "".join(
        f'{name} = "{version or "*"}"\n'
        for name, _, version in (p.partition(" ") for p in PACKAGES)
    )
    (tmp_path / "pixi.toml").write_text(
        '[workspace]\nchannels = ["./channel"]\nplatforms = ["emscripten-wasm32"]\n'
        f"[dependencies]\n{dependencies}"
    )
    return tmp_path


def _digests(site: Path) -> dict[str, str]:
    return {
        path.relative_to(site).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(site.rglob("*"))
        if path.is_file()
    }


def test_environment_yml_and_pixi_toml_give_the_same_site_bytes(course, cache_dir):
    from_yml = read_spec(course / "environment.yml")
    from_pixi = read_spec(course / "pixi.toml")
    assert from_pixi.dependencies == from_yml.dependencies
    assert from_pixi.channels == from_yml.channels
    yml_site = build(from_yml, course / "yml-site", cache_dir=cache_dir).site.folder
    pixi_site = build(from_pixi, course / "pixi-site", cache_dir=cache_dir).site.folder
    one, other = _digests(yml_site), _digests(pixi_site)
    assert len(one) > 100
    assert one == other
    assert (course / "pixi.lock").is_file() and (course / "environment.lock").is_file()
    done = run_in_site(pixi_site, "import tabulate, IPython\nprint(tabulate.__version__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "0.10.0\n"


def test_a_requirements_file_locks_on_top_of_the_kernel_with_its_hashes(course, cache_dir):
    requirements = course / "requirements.txt"
    requirements.write_text(
        f'iniconfig==2.3.1 --hash=sha256:{INICONFIG}\npywin32==306; sys_platform == "win32"\n'
    )
    lock = lock_environment(read_spec(requirements), cache_dir=cache_dir)
    names = {r.name.normalized for r in lock.records}
    assert {"iniconfig", "ipykernel", "pyodide-kernel", "python"} <= names
    assert "pywin32" not in names
    text = (course / "requirements.lock").read_text()
    assert re.search(rf"^# pip-wheel: iniconfig 2.3.1 \S+ {INICONFIG}$", text, re.M)
    requirements.write_text(f"iniconfig==2.3.1 --hash=sha256:{'1' * 64}\n")
    with pytest.raises(LiteEnvError, match=f"has sha256 {INICONFIG}, which none"):
        lock_environment(read_spec(requirements), cache_dir=cache_dir)
