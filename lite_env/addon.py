"""A jupyterlite-core addon: `jupyter lite build` beside an environment.yml ships that environment.

Options go in jupyter_lite_config.json under "LiteEnvAddon" (environment_file, environment, locked,
bytecode, allow_pypi, snapshot), or on the command line as `--LiteEnvAddon.locked=True`.

In the build phase the addon prepares the image and copies the environment's JupyterLab
extensions into the site's `extensions/`, where jupyterlite-core's federated extensions addon
registers them in its post_build (an extension of the same name from the build machine is
replaced: the environment's version wins). In post_build it adds the image, the runtime and
the loader. Both tasks always run: the image is cached by its lock, and the environment can
change without its file changing (a channel that moved on).
"""

from __future__ import annotations

from pathlib import Path

from jupyterlite_core.addons.base import BaseAddon
from traitlets import Bool, Unicode

from lite_env.cache import cache_dir
from lite_env.errors import LiteEnvError
from lite_env.extensions import copy_extension
from lite_env.kernel import KERNEL_EXTENSION
from lite_env.pipeline import prepare_image
from lite_env.site import add_environment
from lite_env.site_channel import channel_source
from lite_env.spec import read_spec


class LiteEnvAddon(BaseAddon):
    """Adds the environment's image, the Pyodide runtime and lite-env's loader to the site."""

    __all__ = ["build", "post_build"]

    environment_file = Unicode(
        "environment.yml",
        help="the environment file (environment.yml, pixi.toml, pyproject.toml or"
        " requirements.txt), relative to the lite dir",
    ).tag(config=True)
    environment = Unicode(
        None, allow_none=True, help="the environment of a pixi workspace (default: default)"
    ).tag(config=True)
    locked = Bool(False, help="build exactly the lock; fail if it is out of date").tag(config=True)
    bytecode = Unicode(
        None, allow_none=True, help="precompiled bytecode: none, imported or all"
    ).tag(config=True)
    allow_pypi = Bool(False, help="let %pip install fall back to PyPI").tag(config=True)
    snapshot = Bool(False, help="ship a memory snapshot for a faster kernel start").tag(config=True)

    @property
    def environment_path(self) -> Path:
        return Path(self.manager.lite_dir) / self.environment_file

    def build(self, manager):
        """Prepare the image and put the environment's JupyterLab extensions into the site."""
        if not self.environment_path.exists():
            return
        yield self.task(
            name="environment",
            doc=f"prepare {self.environment_file} and its JupyterLab extensions",
            actions=[self.prepare_environment],
        )

    def post_build(self, manager):
        """Add the environment's image, the runtime and the loader to the built site."""
        if not self.environment_path.exists():
            self.log.info(f"[lite-env] no {self.environment_file}: nothing to add")
            return
        yield self.task(
            name="environment",
            doc=f"ship {self.environment_file} in the Pyodide kernel",
            actions=[self.add_environment],
        )

    def prepare_environment(self) -> bool:
        """The build task's action: False (a failed task, the reason logged) on a user error."""
        try:
            spec = read_spec(self.environment_path, self.environment)
            self._options = spec.options.override(
                locked=self.locked,
                bytecode=self.bytecode,
                snapshot=self.snapshot,
                allow_pypi=self.allow_pypi,
            )
            self._spec = spec
            self._prepared = prepare_image(
                spec,
                self._options,
                cache_dir=cache_dir(),
                report=lambda message: self.log.info(f"[lite-env] {message}"),
            )
            site_extensions = Path(self.manager.output_dir) / "extensions"
            for extension in self._prepared.extensions:
                if extension.name != KERNEL_EXTENSION:
                    copy_extension(extension, site_extensions)
                    self.log.info(f"[lite-env] extension {extension.name} ({extension.package})")
        except LiteEnvError as error:
            return self._failed(error)
        return True

    def add_environment(self) -> bool:
        """The post_build task's action: False when the build task did not prepare the image."""
        prepared = getattr(self, "_prepared", None)
        if prepared is None:
            self.log.error("[lite-env] the environment was not prepared (see the build phase)")
            return False
        try:
            add_environment(
                Path(self.manager.output_dir),
                prepared.image,
                prepared.runtime_dir,
                provides=prepared.provides,
                depends=prepared.depends,
                snapshot=prepared.snapshot,
                options=self._options,
                channel=channel_source(self._spec, prepared.lock.records)
                if self._options.channel_in_site
                else None,
            )
        except LiteEnvError as error:
            return self._failed(error)
        self.log.info(f"[lite-env] added {len(prepared.lock.records)} packages")
        return True

    def _failed(self, error: LiteEnvError) -> bool:
        """Log a user error as the task's reason to fail; False fails the task."""
        self.log.error(f"[lite-env] {error.message}\n{error.hint or ''}")
        return False
