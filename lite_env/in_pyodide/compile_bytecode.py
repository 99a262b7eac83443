"""Compile `.pyc` files for site-packages and the standard library, inside Pyodide.

Run by lite_env.bytecode under node (lite_env.pyodide_node.program). `main` prints one
line of JSON: the files compiled, the problems met and the modules the preload imported.
"""

import importlib
import importlib.util
import json
import os
import py_compile
import site
import sys


def main(mode, preload, overlay, stdlib_out, stdlib_zip, stdlib_lazy=False):
    """Compile by `mode` (none, imported, all) into `overlay`; the stdlib zip into stdlib_out,
    without the top-level modules and packages the start did not import when `stdlib_lazy`
    (mode "imported"): those go to stdlib_out/lazy/, under lib-dynload (on sys.path after the
    zip), for the image to write on their first import."""
    site_packages = site.getsitepackages()[0]
    started = set(sys.modules)
    failed = []
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception as error:
            failed.append(f"{module}: {type(error).__name__}: {error}")
    if mode == "all":
        sources = [
            os.path.join(folder, name)
            for folder, _, names in os.walk(site_packages)
            for name in names
            if name.endswith(".py")
        ]
    else:
        sources = [
            m.__file__
            for m in list(sys.modules.values())
            if (getattr(m, "__file__", None) or "").startswith(site_packages + "/")
            and m.__file__.endswith(".py")
        ]
    count = 0
    for source in sorted(set(sources)):
        target = overlay + importlib.util.cache_from_source(source)
        try:
            py_compile.compile(
                source,
                cfile=target,
                dfile=source,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            count += 1
        except py_compile.PyCompileError as error:
            failed.append(f"{source}: {error.msg}")

    # the standard library: a copy of its zip with a .pyc beside each module imported so far
    # (Python's own start included) or, in mode "all", beside every module
    stdlib_count = 0
    if stdlib_out:
        import marshal
        import zipfile

        stdlib = next(p for p in sys.path if p.endswith(".zip"))
        loaded = {
            m.__file__[len(stdlib) + 1 :]
            for m in list(sys.modules.values())
            if (getattr(m, "__file__", None) or "").startswith(stdlib + "/")
        }
        stdlib_started = {name.split("/")[0].removesuffix(".py") for name in loaded}
        if stdlib_lazy and mode == "imported":
            dynload = next(p for p in sys.path if p.endswith("/lib-dynload"))
            lazy_folder = stdlib_out + "/lazy" + dynload
        else:
            lazy_folder = None
        with (
            zipfile.ZipFile(stdlib) as source,
            zipfile.ZipFile(stdlib_out + "/" + stdlib_zip, "w", zipfile.ZIP_DEFLATED) as target,
        ):
            for info in source.infolist():
                data = source.read(info)
                if lazy_folder and _lazy_member(info.filename, stdlib_started):
                    if not info.is_dir():
                        path = lazy_folder + "/" + info.filename
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        with open(path, "wb") as file:
                            file.write(data)
                    continue
                target.writestr(info, data)
                if not info.filename.endswith(".py") or (
                    mode != "all" and info.filename not in loaded
                ):
                    continue
                try:
                    code = compile(data, stdlib + "/" + info.filename, "exec", dont_inherit=True)
                except SyntaxError as error:
                    failed.append(f"{info.filename}: {error}")
                    continue
                flags = (1).to_bytes(4, "little")  # hash-based, unchecked
                pyc = importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(data)
                member = zipfile.ZipInfo(info.filename[:-3] + ".pyc", date_time=info.date_time)
                member.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(member, pyc + marshal.dumps(code))
                stdlib_count += 1
    imported = sorted(set(sys.modules) - started)
    result = {"compiled": count, "stdlib": stdlib_count, "failed": failed, "imported": imported}
    sys.__stdout__.write(json.dumps(result) + "\n")


def _lazy_member(name, started):
    """Whether a member of the standard library's zip leaves it for the lazy chunk: one of a
    top-level module or package that nothing imported, whose name the image's finder can
    import (other names, `_sysconfigdata-...` say, stay), with a plain relative path."""
    top = name.split("/")[0].removesuffix(".py")
    plain = not name.startswith("/") and ".." not in name.split("/")
    return plain and top.isidentifier() and top not in started
