"""py-rattler can crash while the interpreter exits; lite-env's exit code must not depend on it."""

from __future__ import annotations


def test_fifty_fresh_solves_all_exit_zero(lite_env, project):
    codes = [lite_env("solve", "--json", project / "environment.yml").code for _ in range(50)]
    assert codes == [0] * 50
