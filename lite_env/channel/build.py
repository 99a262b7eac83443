"""Build recipes/ into channel/: rattler-build recipes and pinned PyPI wheels, then index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lite_env.channel.index import index_channel
from lite_env.channel.pins import read_pins
from lite_env.channel.pypi import WheelPin, WheelStore, conda_depends
from lite_env.channel.recipes import build_recipe, order_recipes, recipe_requirements
from lite_env.channel.wheel import conda_name, convert_wheel, read_wheel

RECIPE_FILE = "recipe.yaml"


@dataclass(frozen=True)
class ChannelBuild:
    """What a channel build produced: package files new in this build and those it kept, and
    the pinned wheels it skipped because a recipe builds the same package."""

    channel: Path
    built: tuple[Path, ...]
    kept: tuple[Path, ...]
    skipped: tuple[WheelPin, ...] = ()


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


def recipe_packages(recipes_dir: Path) -> set[str]:
    """The names of the packages the recipes under recipes_dir build."""
    return {
        name
        for path in recipes_dir.glob(f"*/{RECIPE_FILE}")
        for name in recipe_requirements(path.parent)[0]
    }


def convert_pinned_wheels(
    pins: Sequence[WheelPin], channel_dir: Path, *, cache_dir: Path
) -> list[Path]:
    """Fetch the pinned wheels (checking their sha256) and convert them into the channel:
    pure ones into noarch/, those compiled for the runtime into emscripten-wasm32/."""
    paths = WheelStore(cache_dir).fetch(pins)
    wheels = {pin.name: read_wheel(path) for pin, path in zip(pins, paths, strict=True)}
    return [
        convert_wheel(wheel, channel_dir / wheel.subdir, conda_depends(wheel, wheels))
        for wheel in wheels.values()
    ]
