#!/usr/bin/env bash
# The system libraries Qt's X11 plugin loads (the .deb depends on the same ones), for `make run`
# and the tests. Installs the missing ones with apt where it may (root, or sudo without a
# password); else names the one command that does, and exits 1, before Qt would abort with
# "could not load the Qt platform plugin xcb". Elsewhere than Debian/Ubuntu it does nothing.
set -euo pipefail
[ "$(uname -s)" = Linux ] && command -v dpkg >/dev/null 2>&1 || exit 0
need=()
for lib in libgl1 libegl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 \
           libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xkb1 libxcb-shape0 libxcb-randr0 libdbus-1-3; do
  dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib")
done
[ ${#need[@]} -eq 0 ] && exit 0
install=(apt-get install -y -qq --no-install-recommends "${need[@]}")
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing the libraries the window needs: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  echo "installing the libraries the window needs: ${need[*]}"
  sudo -n env DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
else
  echo "The window needs system libraries this machine lacks. Install them with:" >&2
  echo "    sudo apt-get install ${need[*]}" >&2
  exit 1
fi
