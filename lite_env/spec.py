"""Read an environment, whatever form it is written in, into the one typed `EnvSpec`:
conda's environment.yml, a pixi workspace (pixi.toml, pyproject.toml) or pip requirements."""

from __future__ import annotations

from pathlib import Path

from lite_env.environment_yml import read_environment_yml
from lite_env.envspec import DEFAULT_ENVIRONMENT, MAX_FILE_SIZE, Channel, EnvSpec
from lite_env.errors import LiteEnvError
from lite_env.pixi_manifest import is_pixi_manifest, read_pixi_manifest
from lite_env.requirements import is_requirements_file, read_requirements

__all__ = ["DEFAULT_ENVIRONMENT", "MAX_FILE_SIZE", "Channel", "EnvSpec", "read_spec"]


def read_spec(path: str | Path, environment: str | None = None) -> EnvSpec:
    """Read and check an environment file, chosen by its name: `*.toml` is a pixi workspace,
    `*.txt` (or `*.in`) pip requirements, anything else conda's environment.yml.

    `environment` names one of a pixi workspace's environments (default: `default`); the
    other forms hold one environment. Raises LiteEnvError naming the file (and line) of
    any problem.
    """
    path = Path(path).absolute()
    if is_pixi_manifest(path):
        return read_pixi_manifest(path, environment)
    if environment not in (None, DEFAULT_ENVIRONMENT):
        raise LiteEnvError(
            f"{path}: holds one environment; --environment {environment!r} is for pixi"
            " workspaces (pixi.toml, pyproject.toml)"
        )
    if is_requirements_file(path):
        return read_requirements(path)
    return read_environment_yml(path)
