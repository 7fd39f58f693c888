"""Refresh the Chinese translation: extract the window's strings, fill them in, compile the .qm.

    python resources/translations/build.py        (run after changing strings in desktop/)
Fails, naming them, when a string has no translation in zh_CN.py.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from zh_CN import ZH_CN  # noqa: E402


def main() -> int:
    ts = HERE / "archivist_zh_CN.ts"
    tools = Path(sys.executable).parent
    sources = sorted(str(p) for p in (ROOT / "desktop").glob("*.py"))
    subprocess.run([str(tools / "pyside6-lupdate"), *sources, "-no-obsolete", "-ts", str(ts)], check=True, capture_output=True)
    tree = ET.parse(ts)
    tree.getroot().set("language", "zh_CN")
    missing = []
    for message in tree.getroot().iter("message"):
        source = message.find("source").text or ""
        translation = message.find("translation")
        if source in ZH_CN:
            translation.text = ZH_CN[source]
            translation.attrib.pop("type", None)
        else:
            missing.append(source)
    tree.write(ts, encoding="utf-8", xml_declaration=True)
    if missing:
        print("no translation for:", *missing, sep="\n  ", file=sys.stderr)
        return 1
    subprocess.run([str(tools / "pyside6-lrelease"), str(ts), "-qm", str(HERE / "archivist_zh_CN.qm")], check=True, capture_output=True)
    print(f"{ts.name}: every string translated; archivist_zh_CN.qm written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
