"""Hostile package archives: what is checked is exactly what rattler unpacks, links stay inside.

Every archive here is written by hand (zipfile, tarfile, zstd, bz2) as an attacker would, put
in a real local channel and installed with the real CLI in a fresh process. Around it lie
canary files: nothing outside the prefix and the cache may change, and no host file may
reach the prefix.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from conftest import index_channel, runtime_packages
from forge import (
    hide_zip_member,
    holds_secret,
    info_members,
    link,
    member,
    paths_json,
    plant_canaries,
    tar_bytes,
    tree_state,
    write_conda,
    write_tar_bz2,
)

from lite_env.verify import verify_package

try:
    from compression import zstd
except ImportError:
    from backports import zstd

HONEST = [member("lib/evil/ok.txt", b"ok\n")]
FORGED_PATHS = [
    {"_path": "../../host/victim-1.0-0.conda", "path_type": "hardlink", "sha256": "0" * 64,
     "size_in_bytes": 3},
    {"_path": "lib/evil/ok.txt", "path_type": "hardlink"},
]  # fmt: skip
FORGED = [member("info/paths.json", json.dumps({"paths": FORGED_PATHS}).encode())]


def _extra_zst(stem, members):
    evil = tar_bytes([*FORGED, link("lib/out", "../../../host")])
    return [*members, (f"evil-{stem}.tar.zst", zstd.compress(evil))]


def _duplicate_pkg(stem, members):
    evil = tar_bytes([member("lib/evil/ok.txt", b"evil\n"), link("lib/up", "/etc")])
    return [*members, (f"pkg-{stem}.tar.zst", zstd.compress(evil))]


def _hidden_between(stem, members):
    evil = tar_bytes([*FORGED, link("lib/out", "../../../host")])
    return [members[0], (f"hidden-{stem}.tar.zst", zstd.compress(evil)), *members[1:]]


def _payload_in_info(stem, members):
    info = info_members("evil", HONEST, extra=[member("lib/evil/more.txt", b"x")])
    return [members[0], (f"info-{stem}.tar.zst", zstd.compress(tar_bytes(info))), members[2]]


def _info_in_payload(stem, members):
    payload = tar_bytes([*HONEST, *FORGED])
    return [*members[:2], (f"pkg-{stem}.tar.zst", zstd.compress(payload))]


def _global_pax(headers: dict):
    def zip_members(stem, members):
        payload = tar_bytes(HONEST, global_pax=headers)
        return [*members[:2], (f"pkg-{stem}.tar.zst", zstd.compress(payload))]

    return zip_members


def conda_with(zip_members=None, payload=HONEST, info=None):
    return lambda folder: write_conda(folder, "evil", payload, info=info, zip_members=zip_members)


def tar_bz2_with(payload, info=None):
    return lambda folder: write_tar_bz2(folder, "evil", payload, info=info)


def _renamed_local_header(folder: Path) -> Path:
    path = write_conda(folder, "evil", HONEST)
    data = path.read_bytes()
    name = b"pkg-evil-1.0-0.tar.zst"
    at = data.index(name)  # the first occurrence is the local header, the index comes last
    path.write_bytes(data[:at] + b"pkh" + data[at + 3 :])
    return path


def _hidden_member(folder: Path) -> Path:
    path = write_conda(folder, "evil", HONEST, zip_members=_hidden_between)
    hide_zip_member(path, "hidden-evil-1.0-0.tar.zst")
    return path


def _dotted_paths_json_tar_bz2(folder: Path) -> Path:
    """The issue's case: a later member `info/./paths.json` replaces the real one on unpacking."""
    later = member("info/./paths.json", json.dumps({"paths": FORGED_PATHS}).encode())
    return write_tar_bz2(folder, "evil", [*HONEST, later])


def _pax_renamed(name: str):
    """A member whose PAX header renames it (tarfile and rattler both honour `path`)."""
    info, data = member("lib/evil/innocent.txt", b"evil\n")
    info.pax_headers = {"path": name}
    return info, data


#: Structure: name → (archive writer, what the refusal says).
STRUCTURE = {
    "conda-extra-tar-zst-member": (conda_with(_extra_zst), "zip members"),
    "conda-duplicate-pkg-member": (conda_with(_duplicate_pkg), "zip members"),
    "conda-member-hidden-from-the-zip-index": (_hidden_member, "between zip members"),
    "conda-local-header-renamed": (_renamed_local_header, "local zip header differs"),
    "conda-payload-in-info-tarball": (conda_with(_payload_in_info), "wrong tarball"),
    "conda-info-in-payload-tarball": (conda_with(_info_in_payload), "more than one member"),
    "conda-info-only-in-payload-tarball": (
        conda_with(payload=[*HONEST, member("info/about.json", b"{}")]),
        "wrong tarball",
    ),
    "conda-global-pax-path": (
        conda_with(_global_pax({"path": "info/paths.json"})),
        "more than one member",
    ),
    "conda-global-pax-header": (conda_with(_global_pax({"comment": "x"})), "PAX headers"),
    "conda-dot-component": (conda_with(payload=[member("lib/./x.txt", b"x")]), "not canonical"),
    "conda-double-slash": (conda_with(payload=[member("lib//x.txt", b"x")]), "not canonical"),
    "conda-backslash": (
        conda_with(payload=[member("lib\\..\\..\\x.txt", b"x")]),
        "a backslash",
    ),
    "conda-dotdot": (conda_with(payload=[member("../x.txt", b"x")]), "outside the prefix"),
    "conda-absolute": (
        conda_with(payload=[member("/tmp/lite-env-x.txt", b"x")]),
        "outside the prefix",
    ),
    "conda-duplicate-tar-member": (
        conda_with(payload=[member("lib/a.txt", b"a"), member("lib/a.txt", b"evil")]),
        "more than one member",
    ),
    "conda-pax-path-onto-paths-json": (
        conda_with(payload=[_pax_renamed("info/paths.json")]),
        "more than one member",
    ),
    "conda-hard-link": (
        conda_with(payload=[member("lib/h", type=tarfile.LNKTYPE, linkname="etc/passwd")]),
        "a hard link",
    ),
    "conda-fifo": (conda_with(payload=[member("lib/f", type=tarfile.FIFOTYPE)]), "FIFO"),
    "conda-char-device": (
        conda_with(payload=[member("lib/d", type=tarfile.CHRTYPE, devmajor=1, devminor=3)]),
        "a device",
    ),
    "tar-bz2-dotted-paths-json": (_dotted_paths_json_tar_bz2, "not canonical"),
    "tar-bz2-duplicate-paths-json": (
        tar_bz2_with([*HONEST, *FORGED]),
        "more than one member",
    ),
    "tar-bz2-pax-path-onto-paths-json": (
        tar_bz2_with([*HONEST, _pax_renamed("info/paths.json")]),
        "more than one member",
    ),
    "tar-bz2-dotdot": (tar_bz2_with([member("../../x.txt", b"x")]), "outside the prefix"),
}

#: paths.json, index.json and link.json: name → (archive writer, what the refusal says).
METADATA = {
    "paths-json-dotdot-entry": (
        conda_with(info=info_members("evil", HONEST, paths=FORGED_PATHS)),
        "'../../host/victim-1.0-0.conda': a path outside the prefix",
    ),
    "paths-json-absolute-entry": (
        conda_with(
            info=info_members("evil", HONEST, paths=[*paths_json(HONEST), {"_path": "/etc/passwd"}])
        ),
        "'/etc/passwd': a path outside the prefix",
    ),
    "paths-json-entry-not-in-archive": (
        conda_with(
            info=info_members("evil", HONEST, paths=[*paths_json(HONEST), {"_path": "lib/ghost"}])
        ),
        "lib/ghost: listed in paths.json, not in the archive",
    ),
    "paths-json-softlink-that-is-a-file": (
        conda_with(
            info=info_members(
                "evil", HONEST, paths=[{"_path": "lib/evil/ok.txt", "path_type": "softlink"}]
            )
        ),
        "paths.json says softlink, the archive has a file",
    ),
    "paths-json-a-string": (
        conda_with(info=info_members("evil", HONEST, paths="paths")),
        "unreadable metadata",
    ),
    "paths-json-entries-not-objects": (
        conda_with(info=info_members("evil", HONEST, paths=["lib/evil/ok.txt", 3])),
        "an entry without _path",
    ),
    "index-json-a-list": (
        conda_with(info=info_members("evil", HONEST, index=[])),
        "unreadable metadata",
    ),
    "index-json-site-packages-path-up": (
        conda_with(
            info=info_members(
                "evil",
                HONEST,
                index={
                    "name": "evil",
                    "version": "1.0",
                    "build": "0",
                    "python_site_packages_path": "../../..",
                },  # fmt: skip
            )
        ),
        "python_site_packages_path",
    ),
    "link-json-entry-point-up": (
        conda_with(
            info=info_members(
                "evil",
                HONEST,
                extra=[
                    member(
                        "info/link.json",
                        json.dumps(
                            {"noarch": {"entry_points": ["../../../evil = evil:main"]}}
                        ).encode(),
                    )
                ],
            )
        ),
        "is not a plain name",
    ),
}

#: Symlinks: name → (payload, what the refusal says).
LINKS = {
    "chain-through-another-link": (
        [link("a/b/c/x", "../../.."), link("up", "a/b/c/x/../../etc/passwd")],
        "up: a symlink pointing outside the prefix",
    ),
    "plain-chain-through-another-link": (
        [link("a/b/c/x", "../../../d"), link("d", "../etc")],
        "d: a symlink pointing outside the prefix",
    ),
    "absolute": ([link("lib/passwd", "/etc/passwd")], "a symlink pointing outside the prefix"),
    "up-too-far": ([link("lib/up", "../../host/secret.txt")], "pointing outside the prefix"),
    "not-plain": (
        [member("lib/x.txt", b"x"), link("lib/l", "./x.txt")],
        "a symlink target that is not plain",
    ),
    "member-under-a-link": (
        [link("lib/d", "../share"), member("lib/d/x.txt", b"x")],
        "inside a folder that is a symlink",
    ),
}


@pytest.fixture
def attack(tmp_path, lite_env):
    """Install a hostile package from a real local channel; return the CLI's result after
    checking that nothing outside the prefix and the cache changed and no host file came in."""
    channel = tmp_path / "channel"
    runtime_packages(channel)
    plant_canaries(tmp_path)
    (tmp_path / "environment.yml").write_text("channels: [./channel]\ndependencies: [evil]\n")

    def run(write, *, other=None):
        write(channel / "noarch")
        if other is not None:
            other(channel / "noarch")
        index_channel(channel)
        before = tree_state(tmp_path, skip=("cache", "out"))
        result = lite_env("install", "-p", tmp_path / "out" / "prefix", "environment.yml")
        after = tree_state(tmp_path, skip=("cache", "out"))
        after.pop("environment.lock", None)
        assert after == before
        assert not (tmp_path / "out" / "prefix").exists()
        assert not holds_secret(tmp_path / "out") and not holds_secret(tmp_path / "cache")
        assert "Traceback" not in result.stderr
        return result

    return run


def refused(result, reason: str, package: str = "evil-1.0-0") -> None:
    assert result.code == 1, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and package in first, result.stderr
    assert reason in result.stderr, result.stderr


@pytest.mark.parametrize("case", sorted(STRUCTURE))
def test_an_archive_that_is_not_canonical_is_refused_before_anything_is_unpacked(attack, case):
    write, reason = STRUCTURE[case]
    refused(attack(write), reason)


@pytest.mark.parametrize("case", sorted(LINKS))
def test_a_symlink_leading_outside_even_through_other_links_is_refused(attack, case):
    payload, reason = LINKS[case]
    refused(attack(conda_with(payload=payload)), reason)


@pytest.mark.parametrize("case", sorted(METADATA))
def test_hostile_metadata_is_refused_by_verify_and_channel_verify(tmp_path, lite_env, case):
    write, reason = METADATA[case]
    channel = tmp_path / "channel"
    package = write(channel / "noarch")
    assert any(reason in problem for problem in verify_package(package)), verify_package(package)
    result = lite_env("channel", "verify", channel)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {channel}: ") and reason in result.stderr


@pytest.mark.parametrize("case", ["paths-json-dotdot-entry", "link-json-entry-point-up"])
def test_hostile_metadata_is_refused_at_install(attack, case):
    write, reason = METADATA[case]
    refused(attack(write), reason)


def _links_package(name: str, payload) -> object:
    return lambda folder: write_conda(folder, name, payload)


@pytest.mark.parametrize(
    "first, second",
    [
        # a file of one package written through another package's link
        ([link("lib/x", "../share")], [member("lib/x/y/z.txt", b"z")]),
        # a link of one package whose target passes through another package's link
        ([link("lib/x", "../share/deep")], [link("lib/q/r", "../x/y/../../../../etc")]),
        ([link("lib/x", "../share/deep")], [link("lib/q/r", "../x/etc/passwd")]),
    ],
    ids=["file-through-link", "non-plain-link-through-link", "link-through-link"],
)
def test_links_of_several_packages_cannot_chain_out(attack, tmp_path, first, second):
    (tmp_path / "environment.yml").write_text(
        "channels: [./channel]\ndependencies: [evil, other]\n"
    )
    result = attack(_links_package("evil", first), other=_links_package("other", second))
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "symlink" in result.stderr, result.stderr


def test_a_canonical_package_with_inner_links_installs(tmp_path, lite_env):
    """The checks refuse no honest package: a relative link to a file, and one dangling
    (split packages point at a file of another package)."""
    payload = [
        member("lib/libk.so.1", b"\x00lib"),
        link("lib/libk.so", "libk.so.1"),
        link("lib/libm.so", "libm.so.2"),
    ]
    write_conda(tmp_path / "channel" / "noarch", "evil", payload)
    runtime_packages(tmp_path / "channel")
    index_channel(tmp_path / "channel")
    (tmp_path / "environment.yml").write_text("channels: [./channel]\ndependencies: [evil]\n")
    result = lite_env("install", "-p", tmp_path / "out" / "prefix", "environment.yml")
    assert result.code == 0, result.stderr
    lib = tmp_path / "out" / "prefix" / "lib"
    assert (lib / "libk.so").read_bytes() == b"\x00lib"


def test_channel_verify_checks_tar_bz2_as_install_does(tmp_path, lite_env):
    channel = tmp_path / "channel"
    write_tar_bz2(channel / "noarch", "good", [member("lib/good.txt", b"good\n")])
    _dotted_paths_json_tar_bz2(channel / "noarch")
    result = lite_env("channel", "verify", channel)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "noarch/evil-1.0-0.tar.bz2: 'info/./paths.json'" in result.stderr
    assert "good" not in result.stderr
    (channel / "noarch" / "evil-1.0-0.tar.bz2").unlink()
    result = lite_env("channel", "verify", channel)
    assert result.code == 0 and "1 packages verified" in result.stderr, result.stderr
