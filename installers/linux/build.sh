#!/usr/bin/env bash
# Build Archivist's Linux packages from a checkout: the frozen one-folder bundle, trimmed,
# then a portable .tar.gz and a .deb made with dpkg-deb. Prints sizes and build time.
#
#     installers/linux/build.sh            (make installer runs this; needs the .venv of make test)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
VERSION=$($PY -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
OUT=build/packages
BUNDLE=build/dist/Archivist
started=$(date +%s)
mib() { du -sm "$1" | cut -f1; }

PIP="$PY -m pip install --quiet --disable-pip-version-check -c constraints.txt"
$PIP -e '.[installer]'
QT_QPA_PLATFORM=offscreen $PY installers/icons.py
if [ -z "${REUSE_BUNDLE:-}" ]; then  # REUSE_BUNDLE=1: package the bundle already in build/dist
    rm -rf build/dist build/work build/onnx build/ocr
    # The embedding model runs from its ONNX export in the bundle: torch stays out (archivist.spec).
    $PY installers/export_embedder.py build/onnx
    $PY installers/compact_ocr_models.py build/ocr  # RapidOCR's models with float16 weights, checked
    # rapidocr asks for opencv-python, which brings a second Qt and ffmpeg; the headless build of
    # the same version is the same cv2 without them. Swapped for the build, put back after.
    cv=$($PY -c 'import importlib.metadata as m; print(m.version("opencv-python"))')
    $PY -m pip uninstall --quiet -y opencv-python
    $PIP "opencv-python-headless==$cv"
    trap '$PY -m pip uninstall --quiet -y opencv-python-headless; $PIP "opencv-python==$cv"' EXIT
    # Python's bytecode stored, not zlib-compressed: the package's xz compresses it as one stream,
    # 16 MB instead of 28 MB (the folder grows by 43 MB).
    PYINSTALLER_ZLIB_COMPRESSION_LEVEL=0 \
        $PY -m PyInstaller --noconfirm --log-level WARN --distpath build/dist --workpath build/work installers/archivist.spec
    ln -s archivist "$BUNDLE/archivist-cli"  # the command line (installers/launcher.py)
fi
before=$(mib "$BUNDLE")
# The bundle must carry llama.cpp's CPU variants: built for one CPU it crashes on another.
variants=$(find "$BUNDLE" -name 'libggml-cpu-*' | wc -l)
[ "$variants" -ge 10 ] || { echo "the bundle holds $variants llama.cpp CPU variants; rebuild with the Makefile's flags" >&2; exit 1; }

# Trim what the app never loads: headers and static libraries, type stubs, Qt's own
# translations beyond the ones we ship, and bytecode caches.
internal="$BUNDLE/_internal"
find "$internal" \( -name '*.pyi' -o -name '*.a' -o -name '__pycache__' -o -name '*.h' -o -name '*.hpp' \) -prune -exec rm -rf {} +
find "$internal" -path '*PySide6/Qt/translations/*' ! -name 'qtbase_zh_CN.qm' ! -name 'qtbase_en.qm' -delete 2>/dev/null || true
# OpenCV's video libraries (FFmpeg): stubs, as RapidOCR never reads a video with it.
$PY installers/linux/stub_video_libs.py "$internal"
# pdfminer's character maps (for CJK PDFs) are gzip files, one by one 8 MB in the package:
# stored in gzip without compression (still read with gzip.open), xz makes them 1 MB together.
$PY - "$internal" <<'EOF'
import gzip, pathlib, sys
for cmap in pathlib.Path(sys.argv[1]).glob("pdfminer/cmap/*.gz"):
    cmap.write_bytes(gzip.compress(gzip.decompress(cmap.read_bytes()), compresslevel=0, mtime=0))
EOF
# Symbol tables and debug sections of the libraries shipped with them (libpython, Rust and Cython
# extensions: about 60 MB), as Debian strips its packages. Not the auditwheel-repaired ones (in
# NAME.libs, or finding their libraries there): patchelf moved their sections and strip breaks
# them (numpy's OpenBLAS: "ELF load command ... not page-aligned").
find "$internal" -type f -name '*.so*' ! -path '*.libs/*' -print0 | while IFS= read -r -d '' lib; do
    readelf -S "$lib" 2>/dev/null | grep -qE ' \.(symtab|debug_info) ' || continue
    readelf -d "$lib" | grep -qE 'R(UN)?PATH.*\.libs' && continue
    strip --strip-unneeded "$lib"
done
# A library present under several names as copies (llama.cpp's libllama.so, .so.0, .so.0.5.0):
# one file, under the name the loader asks for (its SONAME), the other names links to it.
find "$internal" -type f -name '*.so*' -print0 | while IFS= read -r -d '' lib; do
    soname=$(readelf -d "$lib" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    real="$(dirname "$lib")/$soname"
    if [ -n "$soname" ] && [ "$(basename "$lib")" != "$soname" ] && [ -f "$real" ] && [ ! -L "$real" ] && cmp -s "$lib" "$real"; then
        ln -sf "$soname" "$lib"
    fi
done
after=$(mib "$BUNDLE")
# What a user gets, tried before it is packed: the command line and the window, clean home, no network.
installers/linux/check_bundle.sh "$BUNDLE"

rm -rf "$OUT" && mkdir -p "$OUT"
tar -C build/dist -czf "$OUT/archivist-$VERSION-linux-$ARCH.tar.gz" Archivist

# The .deb: the bundle in /opt, a launcher on the PATH, a menu entry and an icon.
root=build/deb-root
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
         "$root/usr/share/icons/hicolor/scalable/apps" "$root/usr/share/icons/hicolor/256x256/apps"
cp -a "$BUNDLE" "$root/opt/archivist"
ln -s /opt/archivist/archivist "$root/usr/bin/archivist"
ln -s /opt/archivist/archivist-cli "$root/usr/bin/archivist-cli"
cp installers/linux/archivist.desktop "$root/usr/share/applications/"
cp resources/icons/archivist.svg "$root/usr/share/icons/hicolor/scalable/apps/archivist.svg"
cp installers/linux/archivist.png "$root/usr/share/icons/hicolor/256x256/apps/archivist.png"
installed=$(du -sk "$root" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$installed/" installers/linux/control > "$root/DEBIAN/control"
install -m 755 installers/linux/postinst installers/linux/postrm "$root/DEBIAN/"
# xz -9: its 64 MiB window catches what repeats across files (llama.cpp's CPU variants). -Sextreme
# saved 50 KB more for minutes of build time.
dpkg-deb --build --root-owner-group -Zxz -z9 "$root" "$OUT/archivist_${VERSION}_${ARCH}.deb" >/dev/null

echo "bundle: ${before} MiB as built, ${after} MiB after trimming"
for f in "$OUT"/*; do echo "package: $(basename "$f") $(mib "$f") MiB ($(stat -c %s "$f") bytes)"; done
echo "installed: $(( installed / 1024 )) MiB"
echo "build time: $(( $(date +%s) - started )) s"
