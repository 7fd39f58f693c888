#!/usr/bin/env bash
# Build Archivist.app and a .dmg on macOS. Signing and notarisation run only when an
# identity is configured:
#   ARCHIVIST_SIGN_IDENTITY   "Developer ID Application: …" (codesign)
#   ARCHIVIST_NOTARY_PROFILE  a notarytool keychain profile (xcrun notarytool store-credentials)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
VERSION=$($PY -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
QT_QPA_PLATFORM=offscreen $PY installers/icons.py
rm -rf build/dist build/work build/onnx build/ocr
$PY installers/export_embedder.py build/onnx  # the bundle runs it on onnxruntime, without torch
$PY installers/compact_ocr_models.py build/ocr  # RapidOCR's models with float16 weights, checked
$PY -m PyInstaller --noconfirm --log-level WARN --distpath build/dist --workpath build/work installers/archivist.spec
APP=build/dist/Archivist.app
if [ -n "${ARCHIVIST_SIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp --sign "$ARCHIVIST_SIGN_IDENTITY" "$APP"
    codesign --verify --strict --verbose=2 "$APP"
else
    echo "no ARCHIVIST_SIGN_IDENTITY: the app is not signed (Gatekeeper will ask users to confirm)"
fi
mkdir -p build/packages
DMG="build/packages/Archivist-$VERSION-macos-$(uname -m).dmg"
rm -f "$DMG"
staging=$(mktemp -d)
cp -R "$APP" "$staging/"
ln -s /Applications "$staging/Applications"
hdiutil create -volname Archivist -srcfolder "$staging" -ov -format UDZO "$DMG"
rm -rf "$staging"
if [ -n "${ARCHIVIST_SIGN_IDENTITY:-}" ] && [ -n "${ARCHIVIST_NOTARY_PROFILE:-}" ]; then
    codesign --sign "$ARCHIVIST_SIGN_IDENTITY" --timestamp "$DMG"
    xcrun notarytool submit "$DMG" --keychain-profile "$ARCHIVIST_NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
else
    echo "no notarisation profile: skipped"
fi
du -sh "$APP" "$DMG"
