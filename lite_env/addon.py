"""A jupyterlite-core addon: `jupyter lite build` beside an environment.yml ships that environment.

Options go in jupyter_lite_config.json under "LiteEnvAddon" (environment_file, locked,
bytecode, allow_pypi), or on the command line as `--LiteEnvAddon.locked=True`.
"""

from __future__ import annotations

from pathlib import Path

from jupyterlite_core.addons.base import BaseAddon
from traitlets import Bool, Unicode

from lite_env.build import prepare_image
from lite_env.cache import cache_dir
from lite_env.errors import LiteEnvError
from lite_env.site import add_environment
from lite_env.spec import read_spec


class LiteEnvAddon(BaseAddon):
    """Adds the environment's image, the Pyodide runtime and lite-env's loader to the site."""

    __all__ = ["post_build"]

    environment_file = Unicode(
        "environment.yml", help="the conda environment file, relative to the lite dir"
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

    def post_build(self, manager):
        """Pack the environment and add it to the built site."""
        if not self.environment_path.exists():
            self.log.info(f"[lite-env] no {self.environment_file}: nothing to add")
            return
        config = Path(manager.output_dir) / "jupyter-lite.json"
        yield self.task(
            name="environment",
            doc=f"ship {self.environment_file} in the Pyodide kernel",
            file_dep=[self.environment_path, config],
            actions=[self.add_environment],
        )

    def add_environment(self) -> bool:
        """The task's action: False (a failed task, with the reason logged) on a user error."""
        try:
            prepared = prepare_image(
                read_spec(self.environment_path),
                cache_dir=cache_dir(),
                locked=self.locked,
                bytecode=self.bytecode,
                snapshot=self.snapshot,
                report=lambda message: self.log.info(f"[lite-env] {message}"),
            )
            add_environment(
                Path(self.manager.output_dir),
                prepared.image,
                prepared.runtime_dir,
                provides=prepared.provides,
                depends=prepared.depends,
                snapshot=prepared.snapshot,
                allow_pypi=self.allow_pypi,
            )
        except LiteEnvError as error:
            self.log.error(f"[lite-env] {error.message}\n{error.hint or ''}")
            return False
        self.log.info(f"[lite-env] added {len(prepared.lock.records)} packages")
        return True
