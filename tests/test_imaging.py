"""C libraries as their own packages (zlib's headers, libpng, freetype, qhull) and pillow: built
from their recipes, linked by probe side modules compiled here against the installed packages,
and used from Pyodide under node through an image."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPOSITORY, conda_package
from test_compiled import (
    PYTEST_DRIVER,
    SITE,
    SUITES,
    packed_image,
    recipe_channel,
    run_in_pyodide,
    run_json,
    suite_result,
    upstream_suites,
)

from lite_env.channel.index import index_channel
from lite_env.channel.recipes import PypiSource, recipe_sources
from lite_env.channel.toolchain import CFLAGS, LDFLAGS, ensure_toolchain
from lite_env.install import install_prefix
from lite_env.solve import solve
from lite_env.spec import read_spec

LIBRARIES = ("zlib", "libpng", "freetype", "qhull")
EXT_SUFFIX = ".cpython-314-wasm32-emscripten.so"
PROBES = f"{SUITES}/probes"
#: Probe side modules: each uses its library through its public API, called with ctypes.
PROBE_SOURCES = {
    # no -lz: the runtime resolves zlib's symbols
    "zlib": (
        "",
        r"""
#include <zlib.h>
const char *probe_version(void) { return zlibVersion(); }
long probe_deflate(const unsigned char *data, unsigned long size, unsigned char *out,
                   unsigned long room) {
  uLongf written = room;
  int code = compress2(out, &written, data, size, 9);
  return code == Z_OK ? (long)written : code;
}
long probe_inflate(const unsigned char *data, unsigned long size, unsigned char *out,
                   unsigned long room) {
  uLongf written = room;
  int code = uncompress(out, &written, data, size);
  return code == Z_OK ? (long)written : code;
}
unsigned long probe_crc32(const unsigned char *data, unsigned long size) {
  return crc32(0L, data, size);
}
""",
    ),
    "libpng": (
        "-lpng16",
        r"""
#include <string.h>
#include <png.h>
const char *probe_version(void) { return png_get_libpng_ver(NULL); }
long probe_encode(const unsigned char *rgba, int width, int height, unsigned char *out,
                  unsigned long room) {
  png_image image;
  memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = PNG_FORMAT_RGBA;
  png_alloc_size_t written = room;
  if (!png_image_write_to_memory(&image, out, &written, 0, rgba, 0, NULL)) return -1;
  return (long)written;
}
long probe_decode(const unsigned char *data, unsigned long size, unsigned char *rgba,
                  unsigned long room) {
  png_image image;
  memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, data, size)) return -1;
  image.format = PNG_FORMAT_RGBA;
  if (PNG_IMAGE_SIZE(image) > room) { png_image_free(&image); return -2; }
  if (!png_image_finish_read(&image, NULL, rgba, 0, NULL)) return -3;
  return (long)image.width * 65536 + image.height;
}
""",
    ),
    "freetype": (
        "-lfreetype",
        r"""
#include <ft2build.h>
#include FT_FREETYPE_H
int probe_version(void) {
  FT_Library library; FT_Int major, minor, patch;
  if (FT_Init_FreeType(&library)) return -1;
  FT_Library_Version(library, &major, &minor, &patch);
  FT_Done_FreeType(library);
  return major * 10000 + minor * 100 + patch;
}
/* Render one character of a font file; returns its lit pixels, its size in size[0..1]. */
long probe_render(const char *path, unsigned long character, int pixels, int *size) {
  FT_Library library; FT_Face face; FT_Error error; long lit = 0;
  if ((error = FT_Init_FreeType(&library))) return -1000 - error;
  if ((error = FT_New_Face(library, path, 0, &face))) return -2000 - error;
  FT_Set_Pixel_Sizes(face, 0, pixels);
  if ((error = FT_Load_Char(face, character, FT_LOAD_RENDER))) return -3000 - error;
  FT_Bitmap *bitmap = &face->glyph->bitmap;
  int mono = bitmap->pixel_mode == FT_PIXEL_MODE_MONO;
  for (unsigned row = 0; row < bitmap->rows; row++)
    for (unsigned column = 0; column < bitmap->width; column++) {
      unsigned char *line = bitmap->buffer + row * bitmap->pitch;
      lit += mono ? (line[column / 8] >> (7 - column % 8)) & 1 : line[column] > 127;
    }
  size[0] = bitmap->width;
  size[1] = bitmap->rows;
  FT_Done_Face(face);
  FT_Done_FreeType(library);
  return lit;
}
""",
    ),
    "qhull": (
        "-lqhull_r",
        r"""
#include <stdio.h>
#include "libqhull_r/qhull_ra.h"
/* The triangulated convex hull of `count` points: its facets, its vertices in *vertices. */
long probe_hull(double *points, int count, int dimension, int *vertices) {
  qhT context;
  qhT *qh = &context;
  int curlong, totlong;
  qh_zero(qh, stderr);
  int code = qh_new_qhull(qh, dimension, count, points, 0, "qhull Qt", NULL, stderr);
  long facets = code ? -code : qh->num_facets;
  *vertices = code ? 0 : qh->num_vertices;
  qh_freeqhull(qh, !qh_ALL);
  qh_memfreeshort(qh, &curlong, &totlong);
  return facets;
}
""",
    ),
}
#: Loads the probes with ctypes; `probe(name)` returns one.
PROBE_LOADER = f"""
import ctypes
def probe(name):
    return ctypes.CDLL("/{PROBES}/" + name + "_probe.so")
"""


# -- without the toolchain --------------------------------------------------------------------


def test_the_stand_in_backend_reports_the_sdists_pkg_info(tmp_path, monkeypatch):
    from lite_env.channel import pkginfo_backend

    pkg_info = "Metadata-Version: 2.1\nName: matplotlib\nVersion: 3.10.9\n\nLong text\n"
    (tmp_path / "PKG-INFO").write_text(pkg_info)
    monkeypatch.chdir(tmp_path)
    assert pkginfo_backend.get_requires_for_build_wheel() == []
    folder = pkginfo_backend.prepare_metadata_for_build_wheel(str(tmp_path / "out"))
    assert folder == "matplotlib-3.10.9.dist-info"
    assert (tmp_path / "out" / folder / "METADATA").read_text() == pkg_info


def test_meson_sdists_are_downloaded_through_the_stand_in_backend():
    for name in ("matplotlib", "numpy", "pandas"):
        source = recipe_sources(REPOSITORY / "recipes" / name)[0]
        assert isinstance(source, PypiSource) and source.backend == "mesonpy"
    # matplotlib's second sdist, pybind11 (headers only), is downloaded with its own backend
    [_, pybind11] = recipe_sources(REPOSITORY / "recipes" / "matplotlib")
    assert pybind11.spec == "pybind11==3.1.0" and pybind11.backend is None
    [pillow] = recipe_sources(REPOSITORY / "recipes" / "pillow")
    assert pillow.backend is None  # setuptools reads its metadata without building


# -- with the toolchain (root, Debian's archive, PyPI, npm, node) ------------------------------


@pytest.fixture(scope="module")
def toolchain(cache_dir):
    return ensure_toolchain(cache_dir)


@pytest.fixture(scope="module")
def imaging_channel(tmp_path_factory, cache_dir, toolchain):
    """The runtime, the libraries and pillow in a channel, with pytest, pillow's own tests and
    the probes compiled against the installed libraries."""
    folder = tmp_path_factory.mktemp("imaging")
    channel = recipe_channel(folder, ("pyodide-python", *LIBRARIES, "pillow"), cache_dir)
    (folder / "environment.yml").write_text(
        f"channels: [{channel}]\ndependencies: [python 3.14.*, {', '.join(LIBRARIES)}]\n"
    )
    records = solve(read_spec(folder / "environment.yml"), cache_dir=cache_dir)
    prefix = install_prefix(records, folder / "prefix", cache_dir=cache_dir)
    files = upstream_suites(cache_dir, {"pillow": ("Tests/",)})
    for name, (libraries, source) in PROBE_SOURCES.items():
        files[f"{PROBES}/{name}_probe.so"] = compile_probe(
            toolchain, prefix, folder / "probes", name, source, libraries
        )
    conda_package(channel, "imaging-suites", "1.0", files=files)
    index_channel(channel)
    return channel


def compile_probe(toolchain, prefix: Path, folder: Path, name: str, source: str, libraries: str):
    """A side module from `source`, compiled and linked against the installed libraries."""
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.c").write_text(source)
    command = [
        str(toolchain.bin / "emcc"), *CFLAGS.split(), f"-I{prefix}/include",
        f"-I{prefix}/include/freetype2", f"{name}.c", *LDFLAGS.split(), f"-L{prefix}/lib",
        *libraries.split(), "-o", f"{name}_probe.so",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return (folder / f"{name}_probe.so").read_bytes()


@pytest.fixture(scope="module")
def imaging_image(imaging_channel, tmp_path_factory, cache_dir):
    folder = tmp_path_factory.mktemp("imaging-image")
    packages = (*LIBRARIES, "pillow", "pytest", "imaging-suites")
    return packed_image(imaging_channel, packages, folder, cache_dir)


@pytest.mark.slow
def test_the_libraries_are_side_modules_in_conda_layout(imaging_channel):
    repodata = json.loads((imaging_channel / "emscripten-wasm32" / "repodata.json").read_text())
    depends = {record["name"]: record["depends"] for record in repodata["packages.conda"].values()}
    for name in LIBRARIES:
        assert "pyodide-abi >=2026.0,<2026.1.0a0" in depends[name]
    assert "libpng >=1.6.58,<1.7.0a0" in depends["freetype"]  # libpng's run_exports
    # pillow: the freetype package; zlib is the runtime's, no package at run time
    assert "freetype >=2.14.3,<3.0a0" in depends["pillow"]
    assert not [spec for spec in depends["pillow"] if spec.startswith("zlib")]


@pytest.mark.slow
def test_a_side_module_gets_zlib_from_the_runtime(imaging_image):
    code = PROBE_LOADER + (
        "import json, zlib\n"
        "z = probe('zlib')\n"
        "z.probe_version.restype = ctypes.c_char_p\n"
        "z.probe_crc32.restype = ctypes.c_ulong\n"
        "data = b'lite-env ' * 500\n"
        "out = ctypes.create_string_buffer(len(data) + 64)\n"
        "size = z.probe_deflate(data, len(data), out, len(out))\n"
        "back = ctypes.create_string_buffer(len(data))\n"
        "packed = zlib.compress(data)\n"
        "inflated = z.probe_inflate(packed, len(packed), back, len(back))\n"
        "print('JSON', json.dumps({'version': z.probe_version().decode(),\n"
        "    'deflated': size, 'python_inflates': zlib.decompress(out.raw[:size]) == data,\n"
        "    'probe_inflates': inflated == len(data) and back.raw == data,\n"
        "    'crc32': z.probe_crc32(data, len(data)) == zlib.crc32(data)}))\n"
    )
    result = run_json(imaging_image, code)
    assert result["version"] == "1.3.1"
    assert 0 < result["deflated"] < 100
    assert result["python_inflates"] and result["probe_inflates"] and result["crc32"]


@pytest.mark.slow
def test_libpng_writes_and_reads_png_in_pyodide(imaging_image):
    code = PROBE_LOADER + (
        "import io, json, struct, zlib\n"
        "from PIL import Image\n"
        "png = probe('libpng')\n"
        "png.probe_version.restype = ctypes.c_char_p\n"
        "pixels = bytes(range(24))  # 3 x 2 RGBA\n"
        "out = ctypes.create_string_buffer(4096)\n"
        "size = png.probe_encode(pixels, 3, 2, out, len(out))\n"
        "encoded = out.raw[:size]\n"
        "# a 2 x 2 RGBA PNG written by hand: filter byte 0 before each row\n"
        "rows = b'\\0' + bytes(range(8)) + b'\\0' + bytes(range(8, 16))\n"
        "def chunk(kind, body):\n"
        "    return struct.pack('>I', len(body)) + kind + body + struct.pack(\n"
        "        '>I', zlib.crc32(kind + body))\n"
        "handmade = (b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 2, 2,\n"
        "    8, 6, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))\n"
        "back = ctypes.create_string_buffer(16)\n"
        "shape = png.probe_decode(handmade, len(handmade), back, len(back))\n"
        "opened = Image.open(io.BytesIO(encoded))\n"
        "print('JSON', json.dumps({'version': png.probe_version().decode(),\n"
        "    'signature': encoded[:8].hex(), 'decoded_shape': [shape // 65536, shape % 65536],\n"
        "    'decoded': back.raw == bytes(range(16)), 'pillow_size': list(opened.size),\n"
        "    'pillow_mode': opened.mode, 'pillow_pixels': opened.tobytes() == pixels}))\n"
    )
    result = run_json(imaging_image, code)
    assert result["version"] == "1.6.58"
    assert result["signature"] == "89504e470d0a1a0a"
    assert result["decoded_shape"] == [2, 2] and result["decoded"]
    # pillow (its own PNG code and the runtime's zlib) reads what libpng wrote
    assert result["pillow_size"] == [3, 2] and result["pillow_mode"] == "RGBA"
    assert result["pillow_pixels"]


@pytest.mark.slow
def test_freetype_renders_truetype_and_gzipped_pcf_fonts(imaging_image):
    fonts = f"/{SUITES}/pillow/Tests/fonts"
    code = PROBE_LOADER + (
        "import gzip, json, shutil\n"
        "ft = probe('freetype')\n"
        f"with open('{fonts}/10x20-ISO8859-1.pcf', 'rb') as pcf:\n"
        "    data = pcf.read()\n"
        "with open('/tmp/10x20.pcf.gz', 'wb') as packed:\n"
        "    packed.write(gzip.compress(data))\n"
        "result = {'version': ft.probe_version()}\n"
        f"for name, path in (('ttf', b'{fonts}/FreeMono.ttf'), ('pcf.gz', b'/tmp/10x20.pcf.gz')):\n"
        "    size = (ctypes.c_int * 2)()\n"
        "    lit = ft.probe_render(path, ord('A'), 48, size)\n"
        "    result[name] = [lit, size[0], size[1]]\n"
        "print('JSON', json.dumps(result))\n"
    )
    result = run_json(imaging_image, code)
    assert result["version"] == 21403
    lit, width, rows = result["ttf"]
    assert 20 < width < 48 and 20 < rows <= 48 and lit > 100, result
    # FreeType's gzip stream reads the compressed PCF with the runtime's zlib
    lit, width, rows = result["pcf.gz"]
    assert (width, rows) != (0, 0) and lit > 10, result


@pytest.mark.slow
def test_qhull_triangulates_a_convex_hull(imaging_image):
    code = PROBE_LOADER + (
        "import itertools, json\n"
        "qhull = probe('qhull')\n"
        "corners = [c for c in itertools.product((0.0, 1.0), repeat=3)] + [(0.5, 0.5, 0.5)]\n"
        "points = (ctypes.c_double * 27)(*[x for point in corners for x in point])\n"
        "vertices = ctypes.c_int()\n"
        "facets = qhull.probe_hull(points, 9, 3, ctypes.byref(vertices))\n"
        "print('JSON', json.dumps({'facets': facets, 'vertices': vertices.value}))\n"
    )
    # a cube: six faces of two triangles each, its eight corners; the center is inside
    assert run_json(imaging_image, code) == {"facets": 12, "vertices": 8}


@pytest.mark.slow
def test_pillow_saves_and_opens_png_with_text_in_pyodide(imaging_image):
    code = (
        "import io, json\n"
        "from PIL import Image, ImageDraw, ImageFont, features, _imaging\n"
        "image = Image.new('RGB', (64, 32), 'white')\n"
        "draw = ImageDraw.Draw(image)\n"
        f"font = ImageFont.truetype('/{SUITES}/pillow/Tests/fonts/FreeMono.ttf', 24)\n"
        "draw.text((2, 2), 'Ab', font=font, fill='black')\n"
        "draw.rectangle((40, 8, 60, 28), fill=(255, 0, 0))\n"
        "buffer = io.BytesIO()\n"
        "image.save(buffer, 'PNG', optimize=True)\n"
        "again = Image.open(io.BytesIO(buffer.getvalue()))\n"
        "dark = sum(1 for p in again.crop((0, 0, 38, 32)).getdata() if p[0] < 128)\n"
        "print('JSON', json.dumps({'extension': _imaging.__file__, 'format': again.format,\n"
        "    'size': list(again.size), 'red': again.getpixel((50, 20)), 'dark': dark,\n"
        "    'same': again.tobytes() == image.tobytes(), 'png_bytes': len(buffer.getvalue()),\n"
        "    'zlib': features.check('zlib'), 'freetype': features.version('freetype2'),\n"
        "    'jpeg': features.check('jpg')}))\n"
    )
    result = run_json(imaging_image, code)
    assert result["extension"] == f"/{SITE}/PIL/_imaging{EXT_SUFFIX}"
    assert result["format"] == "PNG" and result["size"] == [64, 32] and result["same"]
    assert result["red"] == [255, 0, 0] and result["dark"] > 30
    assert result["zlib"] and result["freetype"] == "2.14.3"
    assert result["jpeg"] is False  # disabled in the recipe, reported as unsupported


#: Pillow's tests that open or save JPEG, TIFF or MPO files without checking for the codec
#: (upstream always builds it): the recipe disables those codecs.
PILLOW_NEEDS_JPEG_OR_TIFF = (
    "Tests/test_file_png.py::TestFilePng::test_exif_from_jpg",
    *(
        f"Tests/test_image.py::TestImage::{name}"
        for name in (
            "test_pathlib", "test_fp_name", "test_tempfile", "test_no_resource_warning_on_save",
            "test_no_new_file_on_error", "test_load_on_nonexclusive_multiframe",
            "test_exif_jpeg", "test_close_graceful",
        )
    ),
)  # fmt: skip


@pytest.mark.slow
def test_pillow_upstream_tests_pass_in_pyodide(imaging_image):
    files = ("test_file_png.py", "test_image.py", "test_imagedraw.py", "test_imagefont.py")
    arguments = [f"Tests/{name}" for name in files]
    for nodeid in PILLOW_NEEDS_JPEG_OR_TIFF:
        arguments += ["--deselect", nodeid]
    code = PYTEST_DRIVER + f"run_suite('/{SUITES}/pillow', *{arguments!r})\n"
    done = run_in_pyodide(imaging_image, code)
    exit_code, reports = suite_result(done)
    outcomes = [outcome for _, outcome, _ in reports]
    counts = {outcome: outcomes.count(outcome) for outcome in set(outcomes)}
    print("pillow upstream tests:", counts, "exit code", exit_code)
    print(*[line for line in done.stdout.splitlines() if "INTERNALERROR" in line][-30:], sep="\n")
    failed = [nodeid for nodeid, outcome, _ in reports if outcome == "failed"]
    assert exit_code == 0 and not failed, failed
    assert counts.get("passed", 0) > 600, counts
