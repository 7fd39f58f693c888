"""Replace OpenCV's video libraries (FFmpeg) in a bundle with stubs (31 MiB, about 11 MB of the .deb).

    python installers/linux/stub_video_libs.py build/dist/Archivist/_internal

The app uses OpenCV only through RapidOCR, on images already in memory: image processing and
image codecs, never video. cv2 still needs FFmpeg's libraries to load, so each is replaced by a
stub of the same name that defines the functions cv2 takes from it (with their symbol
versions); a stub called by mistake (cv2.VideoCapture) names itself and aborts. The libraries
only FFmpeg needed (libvpx, OpenSSL 1.1, …) go. libavif stays: OpenCV's image codecs set it up
on their first use. Needs binutils' readelf and a C compiler (the build has one for llama.cpp).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

# The libraries cv2 links only for video I/O (FFmpeg).
LEFT_OUT = re.compile(r"lib(avcodec|avformat|avutil|swscale)-")


def _readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], capture_output=True, text=True, check=True).stdout


def _needed(lib: Path) -> list[str]:
    return re.findall(r"\(NEEDED\).*\[(.+)\]", _readelf("-d", str(lib)))


def _symbols(lib: Path, defined: bool) -> dict[str, tuple[str, str]]:
    """name -> (version or "", type) for the dynamic symbols ``lib`` defines or needs."""
    found = {}
    for line in _readelf("--dyn-syms", str(lib)).splitlines():
        fields = line.split()
        if len(fields) < 8 or not fields[0].endswith(":"):
            continue
        kind, section, name = fields[3], fields[6], fields[7]
        if (section != "UND") != defined or fields[4] == "LOCAL":
            continue
        base, _, version = name.replace("@@", "@").partition("@")
        found[base] = (version, kind)
    return found


def _stub(real: Path, wanted: dict[str, tuple[str, str]], work: Path) -> None:
    """Compile a library named as ``real`` that defines ``wanted`` (all functions), over ``real``."""
    soname = re.search(r"\(SONAME\).*\[(.+)\]", _readelf("-d", str(real))).group(1)
    versions: dict[str, list[str]] = {}
    lines = ["#include <stdio.h>", "#include <stdlib.h>",
             "static void left_out(const char *name) {",
             f'    fprintf(stderr, "%s: not in this package ({soname} is a stub: no video in cv2)\\n", name);',
             "    abort();", "}"]
    for name, (version, kind) in sorted(wanted.items()):
        if kind != "FUNC":
            raise SystemExit(f"{real.name}: cv2 uses {name}, a {kind}, which a stub cannot stand in for")
        lines.append(f'void {name}(void) {{ left_out("{name}"); }}')
        versions.setdefault(version, []).append(name)
    source, script = work / f"{soname}.c", work / f"{soname}.map"
    source.write_text("\n".join(lines) + "\n")
    # The version nodes cv2 asks for (FFmpeg's LIBAVCODEC_62, …), if the library has any.
    script.write_text("".join(f"{v} {{ global: {'; '.join(names)}; }};\n" for v, names in versions.items() if v))
    flags = [f"-Wl,--version-script={script}"] if script.read_text() else []
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-s", f"-Wl,-soname,{soname}", *flags, "-o", str(real), str(source)],
                   check=True)


def stub_video_libraries(internal: Path) -> int:
    """Stub cv2's video libraries in the bundle folder ``internal``; the bytes saved."""
    cv2 = next(internal.glob("cv2/cv2*.so"))
    libs = internal / "opencv_python_headless.libs"
    before = sum(f.stat().st_size for f in libs.iterdir())
    wanted = _symbols(cv2, defined=False)
    with tempfile.TemporaryDirectory() as work:
        for name in _needed(cv2):
            if LEFT_OUT.match(name) and (libs / name).is_file():
                offered = _symbols(libs / name, defined=True)
                _stub(libs / name, {s: offered[s] for s in wanted if s in offered}, Path(work))
    # What no library left needs any more (FFmpeg's codecs, OpenSSL 1.1) goes.
    kept, todo = set(), [cv2]
    while todo:
        for name in _needed(todo.pop()):
            if name not in kept and (libs / name).is_file():
                kept.add(name)
                todo.append(libs / name)
    for lib in libs.iterdir():
        if lib.name not in kept:
            lib.unlink()
    return before - sum(f.stat().st_size for f in libs.iterdir())


if __name__ == "__main__":
    saved = stub_video_libraries(Path(sys.argv[1]))
    print(f"cv2's video libraries stubbed: {saved / 2**20:.0f} MiB less")
