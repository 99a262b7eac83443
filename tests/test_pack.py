"""`pack`: filtered, deterministic, content-addressed images of an installed prefix."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from conftest import conda_package, index_channel, runtime_packages

from lite_env.install import install_prefix
from lite_env.pack import LAZY_METADATA, PackRules, pack
from lite_env.solve import solve
from lite_env.spec import read_spec

SITE = "lib/python3.14/site-packages"


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """An installed prefix with a package holding a symlink, a shared library and tests."""
    channel = tmp_path / "channel"
    runtime_packages(channel)
    conda_package(
        channel,
        "kitchen",
        "1.0",
        files={
            "site-packages/kitchen/__init__.py": b"from kitchen.sink import TAP\n",
            "site-packages/kitchen/sink.py": b"TAP = 'water'\n",
            "site-packages/kitchen/tests/test_sink.py": b"def test(): pass\n",
            "site-packages/kitchen-1.0.dist-info/METADATA": b"Name: kitchen\nVersion: 1.0\n",
            "site-packages/kitchen/_speedups.cpython-314-wasm32-emscripten.so": b"\0asm fake",
            "lib/libkitchen.so.1": b"\0asm lib",
            "bin/kitchen": b"#!/bin/sh\n",
        },
    )
    # a symlink, as conda packages of shared libraries carry them
    from lite_env.conda_file import PackageFile, write_conda

    write_conda(
        channel / "noarch",
        {"name": "kitchen-lib", "version": "1.0", "build": "0", "build_number": 0,
         "subdir": "noarch", "depends": [], "timestamp": 0},
        [PackageFile("lib/libkitchen.so", link_target="libkitchen.so.1")],
    )  # fmt: skip
    index_channel(channel)
    (tmp_path / "environment.yml").write_text(
        "channels: [./channel]\ndependencies: [python, kitchen, kitchen-lib]\n"
    )
    spec = read_spec(tmp_path / "environment.yml")
    records = solve(spec, cache_dir=tmp_path / "cache")
    return install_prefix(records, tmp_path / "prefix", cache_dir=tmp_path / "cache")


def manifest(image) -> dict:
    return json.loads((image.folder / image.manifest).read_text())


def test_image_holds_the_packages_minus_what_no_browser_needs(prefix, tmp_path):
    image = pack(prefix, tmp_path / "image")
    chunks = {c.package: c for c in image.chunks}
    assert set(chunks) == {"kitchen", "kitchen-lib", "python_abi", "pyodide-abi"}
    kitchen = {path for path, *_ in chunks["kitchen"].files}
    assert f"{SITE}/kitchen/sink.py" in kitchen
    assert f"{SITE}/kitchen-1.0.dist-info/PYODIDE_SOURCE" in kitchen
    assert not [p for p in kitchen if "/tests/" in p or p.startswith("bin/")]
    dropped = dict(chunks["kitchen"].dropped)
    assert dropped == {"bin/kitchen": 10, f"{SITE}/kitchen/tests/test_sink.py": 17}
    # the runtime's own files are served beside the loader, not in the image
    assert "python" not in chunks


def test_chunk_content_matches_the_manifest(prefix, tmp_path):
    image = pack(prefix, tmp_path / "image")
    for chunk in manifest(image)["chunks"]:
        data = (image.folder / chunk["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == chunk["sha256"]
        assert chunk["sha256"][:16] in chunk["file"]
        blob = gzip.decompress(data)
        for path, offset, size, _mode in chunk["files"]:
            if path.endswith("PYODIDE_SOURCE"):
                assert blob[offset : offset + size] == b"pyodide"
            else:
                assert blob[offset : offset + size] == (prefix / path).read_bytes()


def test_symlinks_stay_symlinks_and_libraries_are_listed(prefix, tmp_path):
    chunks = {c["package"]: c for c in manifest(pack(prefix, tmp_path / "image"))["chunks"]}
    assert chunks["kitchen-lib"]["symlinks"] == [["lib/libkitchen.so", "libkitchen.so.1"]]
    assert chunks["kitchen-lib"]["dynlibs"] == ["lib/libkitchen.so"]
    assert chunks["kitchen"]["dynlibs"] == [
        "lib/libkitchen.so.1",
        f"{SITE}/kitchen/_speedups.cpython-314-wasm32-emscripten.so",
    ]


def test_two_packs_are_byte_identical(prefix, tmp_path):
    first, second = pack(prefix, tmp_path / "a"), pack(prefix, tmp_path / "b")
    files = sorted(p.name for p in first.folder.iterdir())
    assert files == sorted(p.name for p in second.folder.iterdir())
    for name in files:
        assert (first.folder / name).read_bytes() == (second.folder / name).read_bytes()


def test_rules_exclude_per_package_and_keep_wins(prefix, tmp_path):
    rules = PackRules(
        keep=(f"{SITE}/kitchen/tests/**",),
        exclude_by_package={"kitchen": (f"{SITE}/kitchen/sink.py",)},
    )
    kitchen = next(
        c for c in pack(prefix, tmp_path / "i", rules=rules).chunks if c.package == "kitchen"
    )
    paths = {path for path, *_ in kitchen.files}
    assert f"{SITE}/kitchen/tests/test_sink.py" in paths
    assert f"{SITE}/kitchen/sink.py" not in paths


def test_environment_options_extend_the_defaults_and_site_packages_is_an_alias(prefix, tmp_path):
    from lite_env.options import BuildOptions

    rules = PackRules.from_options(BuildOptions(exclude=("site-packages/kitchen/sink.py",)))
    kitchen = next(
        c for c in pack(prefix, tmp_path / "i", rules=rules).chunks if c.package == "kitchen"
    )
    paths = {path for path, *_ in kitchen.files}
    assert f"{SITE}/kitchen/__init__.py" in paths
    assert f"{SITE}/kitchen/sink.py" not in paths
    assert not [p for p in paths if p.startswith("bin/")]  # the defaults still apply


def test_packages_the_start_does_not_import_are_lazy(tmp_path):
    channel = tmp_path / "channel"
    runtime_packages(channel)
    packages = {
        "pure": {
            "site-packages/pure/__init__.py": b"",
            "site-packages/single.py": b"",
            "site-packages/pure-1.0.dist-info/licenses/LICENSE": b"MIT",
        },
        "started": {"site-packages/started/__init__.py": b""},
        "compiled": {"site-packages/compiled/_c.cpython-314-wasm32-emscripten.so": b"\0asm"},
        "hooked": {"site-packages/hooked/__init__.py": b"", "site-packages/hooked.pth": b"x\n"},
        "shared": {"site-packages/shared/__init__.py": b"", "share/shared/data.txt": b"x"},
        "library": {"lib/liblibrary.so": b"\0asm"},
        # linked by the lazy "compiled" only (and its own library), and by the started package
        "linked": {"lib/liblinked.so": b"\0asm"},
        "deeper": {"lib/libdeeper.so": b"\0asm"},
        "startlib": {"lib/libstartlib.so": b"\0asm"},
    }
    depends = {"compiled": ("linked",), "linked": ("deeper >=1",), "started": ("startlib",)}
    for name, files in packages.items():
        python = any(path.startswith("site-packages/") for path in files)
        metadata = f"Name: {name}\nVersion: 1.0\n\nA long description.\n".encode()
        dist_info = {f"site-packages/{name}-1.0.dist-info/METADATA": metadata} if python else {}
        conda_package(channel, name, "1.0", files=files | dist_info, depends=depends.get(name, ()))
    index_channel(channel)
    (tmp_path / "environment.yml").write_text(
        "channels: [./channel]\ndependencies: [python, " + ", ".join(packages) + "]\n"
    )
    records = solve(read_spec(tmp_path / "environment.yml"), cache_dir=tmp_path / "cache")
    prefix = install_prefix(records, tmp_path / "prefix", cache_dir=tmp_path / "cache")

    image = pack(prefix, tmp_path / "image", started=["started.sub", "sys"])
    chunks = {c["package"]: c for c in manifest(image)["chunks"]}
    lazy = {name: chunk["lazy"] for name, chunk in chunks.items()}
    assert lazy["pure"] == ["pure", "single"]
    # an extension module is written on its first import too; CPython's importer loads it
    assert lazy["compiled"] == ["compiled"]
    # a shared library that only lazy packages link (directly or through another library)
    # is written with them, before their extension modules can load it
    assert lazy["linked"] == lazy["deeper"] == ["compiled"]
    # one that nothing links, or a started package does, and a .pth are needed at start
    assert lazy["started"] == lazy["library"] == lazy["startlib"] == []
    assert lazy["hooked"] == lazy["shared"] == []
    # the lazy package's dist-info is also in a chunk written at start, but for what no
    # lookup reads (licenses, the description), which comes with the package
    metadata = chunks[LAZY_METADATA]
    assert metadata["lazy"] == []
    assert [path for path, *_ in metadata["files"]] == [
        f"{SITE}/compiled-1.0.dist-info/METADATA",
        f"{SITE}/compiled-1.0.dist-info/PYODIDE_SOURCE",
        f"{SITE}/pure-1.0.dist-info/METADATA",
        f"{SITE}/pure-1.0.dist-info/PYODIDE_SOURCE",
    ]
    blob = gzip.decompress((image.folder / metadata["file"]).read_bytes())
    _, offset, size, _ = metadata["files"][2]
    assert blob[offset : offset + size] == b"Name: pure\nVersion: 1.0\n"
    assert f"{SITE}/pure-1.0.dist-info/licenses/LICENSE" in [p for p, *_ in chunks["pure"]["files"]]
    # without a trace of the start, nothing is lazy
    eager = pack(prefix, tmp_path / "eager")
    assert not [c for c in manifest(eager)["chunks"] if c["lazy"]]


def test_one_scanner_names_a_chunks_top_level_modules():
    from lite_env.pack import top_level_modules

    site = "lib/python3.14/site-packages"
    paths = [
        f"{site}/kitchen/__init__.py",
        f"{site}/kitchen/sub/__init__.py",
        f"{site}/six.py",
        f"{site}/_cffi_backend.cpython-314-wasm32-emscripten.so",
        f"{site}/fast.abi3.so",
        f"{site}/tests/__init__.py",
        f"{site}/kitchen-1.0.dist-info/METADATA",
        f"{site}/data.txt",
        "lib/libkitchen.so.1",
        "share/kitchen/tool.py",
    ]
    assert top_level_modules(paths) == ["fast", "kitchen", "six"]


def test_standard_library_files_outside_lib_dynload_are_refused_before_anything_is_written(
    tmp_path,
):
    from lite_env.errors import LiteEnvError
    from lite_env.pack import _stdlib_chunk

    (tmp_path / "stdlib" / "lib").mkdir(parents=True)
    (tmp_path / "stdlib" / "lib" / "evil.py").write_text("")
    (tmp_path / "image").mkdir()
    for lazy in (True, False):
        with pytest.raises(LiteEnvError, match="outside lib-dynload"):
            _stdlib_chunk(tmp_path / "stdlib", tmp_path / "image", lazy=lazy)
    assert not list((tmp_path / "image").iterdir())
