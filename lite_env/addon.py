"""A jupyterlite-core addon: `jupyter lite build` beside an environment.yml ships that environment.

Options go in jupyter_lite_config.json under "LiteEnvAddon" (environment_file, or
environment_files for a site with a kernel per environment; environment, locked, bytecode,
allow_pypi, snapshot), or on the command line as `--LiteEnvAddon.locked=True`.

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
from traitlets import Bool, List, Unicode

from lite_env.cache import cache_dir
from lite_env.early_start import add_early_start
from lite_env.errors import LiteEnvError
from lite_env.extensions import copy_extension, site_extensions
from lite_env.pipeline import prepare_image, site_environments
from lite_env.site import IMAGE_DIR, add_environments, needs_kernels_extension, starts_early
from lite_env.spec import read_spec


class LiteEnvAddon(BaseAddon):
    """Adds the environment's image, the Pyodide runtime and lite-env's loader to the site."""

    __all__ = ["build", "post_build"]

    environment_file = Unicode(
        "environment.yml",
        help="the environment file (environment.yml, pixi.toml, pyproject.toml or"
        " requirements.txt), relative to the lite dir",
    ).tag(config=True)
    environment_files = List(
        Unicode(),
        help="several environment files: a kernel each, the first the default one (default:"
        " environment_file alone)",
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
    early_start = Bool(
        True, help="the pages that start a kernel start the default kernel's worker as they load"
    ).tag(config=True)

    @property
    def environment_paths(self) -> list[Path]:
        files = self.environment_files or [self.environment_file]
        return [Path(self.manager.lite_dir) / name for name in files]

    def build(self, manager):
        """Prepare the images and put the environments' JupyterLab extensions into the site."""
        if not self._present():
            return
        yield self.task(
            name="environment",
            doc="prepare the environments and their JupyterLab extensions",
            actions=[self.prepare_environment],
        )

    def post_build(self, manager):
        """Add the environments' images, the runtime and the loader to the built site."""
        if not self._present():
            self.log.info("[lite-env] no environment file: nothing to add")
            return
        yield self.task(
            name="environment",
            doc="ship the environments in the Pyodide kernel",
            actions=[self.add_environment],
        )

    def _present(self) -> bool:
        return all(path.exists() for path in self.environment_paths)

    def prepare_environment(self) -> bool:
        """The build task's action: False (a failed task, the reason logged) on a user error."""
        try:
            self._environments = []
            for path in self.environment_paths:
                spec = read_spec(path, self.environment)
                options = spec.options.override(
                    locked=self.locked,
                    bytecode=self.bytecode,
                    snapshot=self.snapshot,
                    allow_pypi=self.allow_pypi,
                    early_start=self.early_start,
                )
                self._environments.append((spec, options))
            self._prepared = [
                prepare_image(
                    spec,
                    options,
                    cache_dir=cache_dir(),
                    report=lambda message: self.log.info(f"[lite-env] {message}"),
                )
                for spec, options in self._environments
            ]
            extensions = [e for prepared in self._prepared for e in prepared.extensions]
            site_extensions_dir = Path(self.manager.output_dir) / "extensions"
            ours = needs_kernels_extension(len(self._prepared), self._environments[0][1])
            # the kernel's own extension comes with jupyterlite-pyodide-kernel's addon
            for extension in site_extensions(extensions, ours=ours)[1:]:
                copy_extension(extension, site_extensions_dir)
                self.log.info(f"[lite-env] extension {extension.name} ({extension.package})")
        except LiteEnvError as error:
            return self._failed(error)
        return True

    def add_environment(self) -> bool:
        """The post_build task's action: False when the build task did not prepare the images."""
        prepared = getattr(self, "_prepared", None)
        if prepared is None:
            self.log.error("[lite-env] the environment was not prepared (see the build phase)")
            return False
        try:
            site = add_environments(
                Path(self.manager.output_dir),
                site_environments(self._environments, prepared, cache_dir=cache_dir()),
            )
            options = self._environments[0][1]
            if starts_early(options):
                add_early_start(site.folder, site.kernel_settings, IMAGE_DIR)
        except LiteEnvError as error:
            return self._failed(error)
        for prepared_image in prepared:
            self.log.info(f"[lite-env] added {len(prepared_image.lock.records)} packages")
        return True

    def _failed(self, error: LiteEnvError) -> bool:
        """Log a user error as the task's reason to fail; False fails the task."""
        self.log.error(f"[lite-env] {error.message}\n{error.hint or ''}")
        return False
