#!/usr/bin/env bash
# System packages the tests need beyond Python: Xvfb and (installers/linux/window-libs.sh) the X
# libraries Qt's xcb plugin loads, for the test that shows a real window; NSIS, to compile the Windows installer script; Redis,
# the team server's shared answer cache; libGL, which OpenCV (text recognition) loads; a
# Chinese font, to draw the scans the text-recognition tests read; Chromium, the browser the team
# server's page is tested in (tests/test_web.py drives it with Playwright: Playwright's own browser
# downloads are unreachable here). Installed once (idempotent); skipped with a
# note where apt is not available.
set -euo pipefail
need=()
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v makensis >/dev/null 2>&1 || need+=(nsis)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v initdb >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)  # replicas sharing one database
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
"$(dirname "$0")/../installers/linux/window-libs.sh" || true  # the X libraries Qt loads; says what is missing
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages for the tests: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "note: cannot install ${need[*]} here; tests that need them will be skipped" >&2
fi
