"""Build recipes/ into channel/: rattler-build recipes and pinned PyPI wheels, then index."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lite_env.channel.index import index_channel
from lite_env.channel.pins import read_pins
from lite_env.channel.pypi import WheelPin, convert_pinned_wheels
from lite_env.channel.recipes import RECIPE_FILE, build_recipe, order_recipes, recipe_packages
from lite_env.channel.wheel import conda_name


@dataclass(frozen=True)
class ChannelBuild:
    """What a channel build produced: package files new in this build and those it kept, and
    the pinned wheels it skipped because a recipe builds the same package."""

    channel: Path
    built: tuple[Path, ...]
    kept: tuple[Path, ...]
    skipped: tuple[WheelPin, ...] = ()

    def lines(self) -> list[str]:
        """The packages built, the wheels skipped, then a summary line."""
        return [
            *(f"  + {package.relative_to(self.channel)}" for package in self.built),
            *(f"  = {pin.file}: skipped, a recipe builds {pin.name}" for pin in self.skipped),
            f"{self.channel}: {len(self.built)} packages built, {len(self.kept)} kept",
        ]


def build_channel(
    recipes_dir: Path,
    channel_dir: Path,
    *,
    cache_dir: Path,
    report: Callable[[str], None] = lambda message: None,
) -> ChannelBuild:
    """Build every recipe folder and every pinned wheel that the channel lacks, then index it.

    A package file already in the channel is never rebuilt: published files are immutable,
    since locks refer to them by sha256. A recipe wins over a pinned wheel of the same
    package: that wheel is skipped.
    """
    channel_dir = channel_dir.absolute()
    before = set(channel_dir.glob("*/*.conda"))
    # a recipe's host requirements are solved from the channel: build (and index) them first
    for recipe in order_recipes([path.parent for path in recipes_dir.glob(f"*/{RECIPE_FILE}")]):
        report(f"recipe {recipe.name}")
        outputs = build_recipe(recipe, channel_dir, cache_dir=cache_dir, report=report)
        if set(outputs) - before:
            index_channel(channel_dir)
    from_recipes = recipe_packages(recipes_dir)
    pins = read_pins(recipes_dir)
    wheels = [pin for pin in pins.wheels if conda_name(pin.name) not in from_recipes]
    if wheels:
        report(f"converting {len(wheels)} wheels")
        convert_pinned_wheels(wheels, channel_dir, cache_dir=cache_dir)
    report("indexing")
    index_channel(channel_dir)
    after = set(channel_dir.glob("*/*.conda"))
    skipped = tuple(pin for pin in pins.wheels if pin not in wheels)
    return ChannelBuild(channel_dir, tuple(sorted(after - before)), tuple(sorted(before)), skipped)
