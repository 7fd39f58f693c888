#!/usr/bin/env bash
# Start the installed (or bundled) app under Xvfb and save a screenshot of its window.
#     installers/linux/smoke.sh OUT.png [ARCHIVIST_BINARY]
set -euo pipefail
out=$1
app=${2:-archivist}
display=":$(( 60 + $$ % 30 ))"
Xvfb "$display" -screen 0 1400x900x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true; rm -rf "$scratch"' EXIT
scratch=$(mktemp -d)
sleep 1
DISPLAY=$display QT_QPA_PLATFORM=xcb ARCHIVIST_CONFIG_DIR="$scratch/config" \
    "$app" --data-dir "$scratch/data" --screenshot "$out"
test -s "$out"
echo "screenshot: $out ($(du -k "$out" | cut -f1) KiB)"
