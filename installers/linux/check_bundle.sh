#!/usr/bin/env bash
# Try a built bundle as a new user would: a clean home, no network, its command line (ingest,
# search, ask with the starter model), its self-test and its window (a screenshot under Xvfb).
#     installers/linux/check_bundle.sh build/dist/Archivist
set -euo pipefail
bundle=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
samples=$(cd "$here/../../resources/samples" && pwd)
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
# No network where the system lets us take it away (an unprivileged user namespace, or root).
isolate=()
if unshare -rn true 2>/dev/null; then isolate=(unshare -rn); elif unshare -n true 2>/dev/null; then isolate=(unshare -n); fi
run() {
    env -i PATH=/usr/bin:/bin HOME="$home" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen "${isolate[@]}" "$@"
}
cli="$bundle/archivist-cli"
run "$cli" ingest "$samples" | tail -3
found=$(run "$cli" search "How often do the bearings need oil?")
grep -q "200 operating hours" <<<"$found" || { echo "check: search did not find the oil interval: $found" >&2; exit 1; }
answer=$(run "$cli" ask "How often do the bearings need oil?")
echo "$answer" | tail -5
grep -q "Pump maintenance guide.pdf" <<<"$answer" || { echo "check: the answer lists no source" >&2; exit 1; }
run "$bundle/archivist" --self-test
if command -v Xvfb >/dev/null; then
    "$here/smoke.sh" "$home/window.png" "$bundle/archivist"
fi
echo "check: the bundle's command line, self-test and window work offline (${isolate[*]:-network not isolated})"
