"""Read a pixi workspace — `pixi.toml`, or `pyproject.toml` with `[tool.pixi.*]` tables — into
an EnvSpec: one of its environments, for the emscripten-wasm32 platform.

An environment is its features (its own table first, then the listed features, then the
default feature unless `no-default-feature`), combined as pixi combines them: channels in
the features' order (a feature without channels takes the workspace's), stably sorted by
`priority`, first entry wins; the platforms every feature supports; every feature's
`dependencies` and `pypi-dependencies`, and those of its `target.emscripten-wasm32` table.
`[project].dependencies` (and optional-dependencies, dependency-groups as features) of a
pyproject.toml are PyPI dependencies, as pixi reads them. lite-env's own options are in
`[tool.lite-env]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lite_env.envspec import (
    DEFAULT_ENVIRONMENT,
    OWN_KEY,
    Channel,
    EnvSpec,
    check_matchspec,
    check_requirement,
    parse_options,
    read_text,
    resolve_channel,
    runtime_requirement,
)
from lite_env.errors import LiteEnvError
from lite_env.platform import PLATFORM
from lite_env.toml_lines import TomlLines, load_toml

LOCK_FILE = "pixi.lock"
PYPROJECT = "pyproject.toml"
#: What lite-env reads from a feature, or from an environment's own table.
FEATURE_KEYS = frozenset({"dependencies", "pypi-dependencies", "channels", "platforms", "target"})
#: pixi's keys for running and building on the host: accepted, and nothing to ship.
HOST_KEYS = frozenset(
    {"tasks", "activation", "build-variants", "build-variants-files", "host-dependencies",
     "build-dependencies", "package", "dev"}
)  # fmt: skip
ENVIRONMENT_KEYS = frozenset({"features", "solve-group", "no-default-feature"})
#: pixi's workspace-wide tables besides the default feature's.
WORKSPACE_TABLES = frozenset({"workspace", "project", "feature", "environments", "tool"})
#: The spec keys of a conda dependency that lite-env turns into a MatchSpec.
CONDA_SPEC_KEYS = ("version", "build")
#: The spec keys of a PyPI dependency that lite-env reads; others (git, path, url...) are
#: sources that do not resolve for Pyodide from PyPI.
PYPI_SPEC_KEYS = ("version", "extras")


@dataclass(frozen=True)
class _Feature:
    """What one feature adds: None for channels or platforms means the workspace's."""

    channels: tuple[tuple[int, Channel], ...] | None
    platforms: tuple[str, ...] | None
    dependencies: tuple[str, ...]
    pypi: tuple[str, ...]


def is_pixi_manifest(path: Path) -> bool:
    """Whether the file is read as a pixi workspace (pixi.toml, pyproject.toml: any TOML)."""
    return path.suffix == ".toml"


def read_pixi_manifest(path: Path, environment: str | None = None) -> EnvSpec:
    """Read the named environment (default: `default`) of a pixi workspace.

    Raises LiteEnvError naming the file and line for bad TOML, a missing workspace table,
    an environment or feature that does not exist, an environment without the
    emscripten-wasm32 platform, or a dependency lite-env cannot take (a git, path or URL
    source).
    """
    document, lines = load_toml(path, read_text(path))
    root: tuple[str, ...] = ("tool", "pixi") if path.name == PYPROJECT else ()
    pixi = document
    for key in root:
        pixi = pixi.get(key)
        if not isinstance(pixi, dict):
            raise LiteEnvError(
                f"{path}: no [tool.pixi] tables: not a pixi workspace",
                hint=f'add [tool.pixi.workspace] with `channels` and `platforms = ["{PLATFORM}"]`',
            )
    reader = _Reader(path, lines, root)
    return reader.spec(document, pixi, environment or DEFAULT_ENVIRONMENT)


@dataclass(frozen=True)
class _Reader:
    """Reads one environment of the workspace; `root` is where pixi's tables are."""

    path: Path
    lines: TomlLines
    root: tuple[str, ...]

    def where(self, *key: str) -> str:
        """`file:line` of a key of pixi's tables."""
        return self.lines.at(*self.root, *key)

    def where_top(self, *key: str) -> str:
        """`file:line` of a key counted from the document's top (not under [tool.pixi])."""
        return self.lines.at(*key)

    def spec(self, document: dict, pixi: dict, name: str) -> EnvSpec:
        warnings: list[str] = []
        workspace_key = "workspace" if "workspace" in pixi else "project"
        workspace = self._table(pixi.get(workspace_key), (workspace_key,), required=True)
        channels = self._channels(workspace.get("channels"), (workspace_key, "channels"))
        if channels is None:
            raise LiteEnvError(
                f"{self.where(workspace_key)}: the workspace has no `channels`",
                hint="list an emscripten-wasm32 channel (a folder or a URL)",
            )
        platforms = self._platforms(workspace.get("platforms"), (workspace_key, "platforms"))
        default = self._feature(pixi, (), warnings, top_level=True)
        features = {
            feature: self._feature(
                self._table(table, ("feature", feature)), ("feature", feature), warnings
            )
            for feature, table in self._table(pixi.get("feature"), ("feature",)).items()
        }
        if self.path.name == PYPROJECT:
            default, features = self._python_project(document, default, features)
        chosen, with_default = self._environment(pixi, name, features, warnings)
        chosen = [*chosen, default] if with_default else chosen
        supported = set(platforms or ())
        for feature in chosen:
            supported &= set(_own_or(feature.platforms, platforms))
        if PLATFORM not in supported:
            raise LiteEnvError(
                f"{self.where(workspace_key, 'platforms')}: the environment {name!r} is not"
                f" solved for {PLATFORM}: its platforms are"
                f" {', '.join(sorted(supported)) or 'none'}",
                hint=f'add "{PLATFORM}" to `platforms` of [{workspace_key}] (and of the'
                " environment's features that list platforms)",
            )
        prioritized = [entry for feature in chosen for entry in _own_or(feature.channels, channels)]
        ordered: dict[str, Channel] = {}
        for _, channel in sorted(prioritized, key=lambda entry: -entry[0]):
            ordered.setdefault(channel.url, channel)
        tool = document.get("tool") if isinstance(document.get("tool"), dict) else {}
        return EnvSpec(
            path=self.path,
            lock_path=self.path.parent / LOCK_FILE,
            name=name,
            environment=name,
            channels=tuple(ordered.values()),
            dependencies=tuple(d for feature in chosen for d in feature.dependencies),
            pip=tuple(r for feature in chosen for r in feature.pypi),
            options=parse_options(
                tool.get(OWN_KEY), self.where_top("tool", OWN_KEY), f"[tool.{OWN_KEY}]"
            ),
            warnings=tuple(warnings),
        )

    def _environment(
        self, pixi: dict, name: str, features: dict[str, _Feature], warnings: list[str]
    ) -> tuple[list[_Feature], bool]:
        """The environment's features (its own table's first), and whether the default
        feature follows them."""
        environments = self._table(pixi.get("environments"), ("environments",))
        if name not in environments:
            if name == DEFAULT_ENVIRONMENT:  # pixi's implicit default environment
                return [], True
            known = sorted({DEFAULT_ENVIRONMENT, *environments})
            raise LiteEnvError(
                f"{self.where('environments')}: no environment {name!r}",
                hint=f"known: {', '.join(known)}",
            )
        key = ("environments", name)
        entry = environments[name]
        own = None
        if isinstance(entry, list):
            entry = {"features": entry}
        table = self._table(entry, key)
        names = self._strings(table.get("features", []), (*key, "features"))
        no_default = table.get("no-default-feature", False)
        if not isinstance(no_default, bool):
            raise LiteEnvError(f"{self.where(*key)}: `no-default-feature` is true or false")
        content = {k: v for k, v in table.items() if k not in ENVIRONMENT_KEYS}
        if content:
            own = self._feature(content, key, warnings)
        missing = [feature for feature in names if feature not in features]
        if missing:
            raise LiteEnvError(
                f"{self.where(*key)}: the environment {name!r} names the feature"
                f" {missing[0]!r}, which is not defined",
                hint=f"define it with [feature.{missing[0]}.dependencies]",
            )
        chosen = [own] if own else []
        return chosen + [features[feature] for feature in names], not no_default

    def _feature(
        self, table: dict, key: tuple[str, ...], warnings: list[str], top_level: bool = False
    ) -> _Feature:
        dependencies = self._dependencies(table, key)
        pypi = self._pypi(table, key)
        targets = self._table(table.get("target"), (*key, "target"))
        for selector, target in targets.items():
            target_key = (*key, "target", selector)
            target = self._table(target, target_key)
            if selector == PLATFORM:
                dependencies += self._dependencies(target, target_key)
                pypi += self._pypi(target, target_key)
        used = FEATURE_KEYS | HOST_KEYS | (WORKSPACE_TABLES if top_level else frozenset())
        warnings += [
            f"{self.where(*key, name)}: `{name}` is not used by lite-env"
            for name in table
            if name not in used
        ]
        if top_level:
            return _Feature(None, None, dependencies, pypi)
        return _Feature(
            self._channels(table.get("channels"), (*key, "channels")),
            self._platforms(table.get("platforms"), (*key, "platforms")),
            dependencies,
            pypi,
        )

    def _dependencies(self, table: dict, key: tuple[str, ...]) -> tuple[str, ...]:
        key = (*key, "dependencies")
        specs = []
        for name, value in self._table(table.get("dependencies"), key).items():
            at = self.where(*key, name)
            if isinstance(value, str):
                version, build = value, None
            else:
                spec = self._spec_table(value, (*key, name), CONDA_SPEC_KEYS)
                version, build = spec.get("version", "*"), spec.get("build")
                if not isinstance(version, str) or not isinstance(build, str | None):
                    raise LiteEnvError(f"{at}: `version` and `build` of {name!r} are strings")
            text = name if version.strip() == "*" and build is None else f"{name} {version}"
            specs.append(check_matchspec(text + (f" {build}" if build else ""), at))
        return tuple(specs)

    def _pypi(self, table: dict, key: tuple[str, ...]) -> tuple[str, ...]:
        key = (*key, "pypi-dependencies")
        requirements = []
        for name, value in self._table(table.get(key[-1]), key).items():
            at = self.where(*key, name)
            extras: list[str] = []
            if isinstance(value, str):
                version = value
            else:
                spec = self._spec_table(value, (*key, name), PYPI_SPEC_KEYS)
                version = spec.get("version", "*")
                extras = self._strings(spec.get("extras", []), (*key, name))
                if not isinstance(version, str):
                    raise LiteEnvError(f"{at}: `version` of {name!r} is a string")
            version = "" if version.strip() == "*" else version
            text = name + (f"[{','.join(extras)}]" if extras else "") + version
            requirements.append(str(check_requirement(text, at)))
        return tuple(requirements)

    def _spec_table(self, value: object, key: tuple[str, ...], known: tuple[str, ...]) -> dict:
        at = self.where(*key)
        if not isinstance(value, dict):
            raise LiteEnvError(f"{at}: {key[-1]!r} is a version string or a table")
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise LiteEnvError(
                f"{at}: {key[-1]!r}: lite-env does not take `{unknown[0]}` dependencies",
                hint=f"give a version (keys: {', '.join(known)}); git, path and URL sources"
                " are not built for Pyodide",
            )
        return value

    def _channels(
        self, value: object, key: tuple[str, ...]
    ) -> tuple[tuple[int, Channel], ...] | None:
        if value is None:
            return None
        at = self.where(*key)
        if not isinstance(value, list):
            raise LiteEnvError(f"{at}: `channels` must be a list")
        channels = []
        for entry in value:
            priority = 0
            if isinstance(entry, dict):
                priority = entry.get("priority", 0)
                entry = entry.get("channel")
            if not isinstance(entry, str) or not isinstance(priority, int):
                raise LiteEnvError(
                    f"{at}: a channel is a name, a folder or a URL, or a table with `channel`"
                    " and an integer `priority`"
                )
            channels.append((priority, resolve_channel(entry, self.path.parent, at)))
        return tuple(channels)

    def _platforms(self, value: object, key: tuple[str, ...]) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise LiteEnvError(f"{self.where(*key)}: `platforms` must be a list")
        platforms = []
        for entry in value:
            if isinstance(entry, dict):  # a rich entry: its subdir is what lite-env solves
                entry = entry.get("platform", entry.get("name"))
            if not isinstance(entry, str):
                raise LiteEnvError(f"{self.where(*key)}: a platform is a name like {PLATFORM!r}")
            platforms.append(entry)
        return tuple(platforms)

    def _python_project(
        self, document: dict, default: _Feature, features: dict[str, _Feature]
    ) -> tuple[_Feature, dict[str, _Feature]]:
        """pyproject.toml: `[project].dependencies` go to the default feature's PyPI
        dependencies; each optional dependency and dependency group to a feature's."""
        project = self._table_at(document.get("project"), ("project",))
        pypi = self._requirements(project.get("dependencies", []), ("project", "dependencies"))
        default = _Feature(None, None, default.dependencies, default.pypi + pypi)
        groups = [
            (group, requirements, (*key, group))
            for table, key in (
                (project.get("optional-dependencies"), ("project", "optional-dependencies")),
                (document.get("dependency-groups"), ("dependency-groups",)),
            )
            for group, requirements in self._table_at(table, key).items()
        ]
        features = dict(features)
        for group, requirements, key in groups:
            more = self._requirements(requirements, key)
            base = features.get(group, _Feature(None, None, (), ()))
            features[group] = _Feature(
                base.channels, base.platforms, base.dependencies, base.pypi + more
            )
        return default, features

    def _requirements(self, value: object, key: tuple[str, ...]) -> tuple[str, ...]:
        at = self.where_top(*key)
        requirements = [runtime_requirement(text, at) for text in self._strings(value, key, at=at)]
        return tuple(r for r in requirements if r is not None)

    def _table(self, value: object, key: tuple[str, ...], required: bool = False) -> dict:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            table = ".".join((*self.root, *key))
            raise LiteEnvError(
                f"{self.where(*key)}: `{table}` must be a table"
                if value is not None
                else f"{self.path}: no [{table}] table",
                hint=f'a pixi workspace has [workspace] with `channels` and `platforms = ["'
                f'{PLATFORM}"]`',
            )
        return value

    def _table_at(self, value: object, key: tuple[str, ...]) -> dict:
        """A table counted from the document's top (pyproject.toml's own tables)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise LiteEnvError(f"{self.where_top(*key)}: `{'.'.join(key)}` is a table")
        return value

    def _strings(self, value: object, key: tuple[str, ...], at: str | None = None) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LiteEnvError(f"{at or self.where(*key)}: `{key[-1]}` must be a list of strings")
        return value


def _own_or(own: tuple | None, workspace: tuple | None) -> tuple:
    """A feature's own list when it has one (even empty), else the workspace's."""
    return own if own is not None else workspace or ()
