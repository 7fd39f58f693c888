"""What of the packaging can be checked here: the resource helper frozen or not, the Windows
installer script compiling, the CI workflow's shape, the Linux package's metadata."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTALLERS = ROOT / "installers"


def test_resources_are_found_frozen_or_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from resources import resource_path

    assert resource_path("schemas", "key_facts.json").is_file()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("vocab", "o200k_base.tiktoken") == tmp_path / "resources" / "vocab" / "o200k_base.tiktoken"


@pytest.mark.skipif(shutil.which("makensis") is None, reason="NSIS is not installed (tests/setup-system.sh installs it)")
def test_windows_installer_script_compiles(tmp_path: Path):
    bundle = tmp_path / "Archivist"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "archivist.exe").write_bytes(b"MZ stand-in for the PyInstaller bundle")
    (bundle / "_internal" / "base_library.zip").write_bytes(b"PK")
    out = tmp_path / "Archivist-Setup.exe"
    result = subprocess.run(
        ["makensis", "-V2", "-DVERSION=0.1.0", f"-DBUNDLE={bundle}", f"-DOUTFILE={out}", "archivist.nsi"],
        cwd=INSTALLERS / "windows", capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_bytes()[:2] == b"MZ" and out.stat().st_size > 50_000


def test_workflow_builds_and_self_tests_on_every_platform():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "installers.yml").read_text())
    jobs = workflow["jobs"]
    assert {job["runs-on"].split("-")[0] for job in jobs.values()} == {"ubuntu", "windows", "macos"}
    for name, job in jobs.items():
        commands = " ".join(step.get("run", "") for step in job["steps"])
        assert "--self-test" in commands, f"{name} never runs the self-test"
        assert "archivist-cli" in commands or "make installer" in commands, f"{name} never runs the command line"
        assert any("upload-artifact" in step.get("uses", "") for step in job["steps"]), name
    assert "makensis" in " ".join(s.get("run", "") for s in jobs["windows"]["steps"])
    assert "installers/macos/build.sh" in " ".join(s.get("run", "") for s in jobs["macos"]["steps"])
    # llama.cpp for every CPU, not the runner's: the flags the Makefile uses for Linux too.
    flags = workflow["env"]["LLAMA_CMAKE_ARGS"]
    makefile = (ROOT / "Makefile").read_text()
    for flag in ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON"):
        assert flag in flags and flag in makefile, flag
    for name in ("windows", "macos"):
        assert 'CMAKE_ARGS="$LLAMA_CMAKE_ARGS' in " ".join(s.get("run", "") for s in jobs[name]["steps"]), name


def test_linux_package_files_are_well_formed():
    control = (INSTALLERS / "linux" / "control").read_text()
    fields = dict(line.split(": ", 1) for line in control.splitlines() if ": " in line and not line.startswith(" "))
    assert {"Package", "Version", "Architecture", "Depends", "Description", "Maintainer"} <= set(fields)
    # The Chinese window needs a font that draws it; a Debian without one showed empty boxes.
    assert "fonts-noto-cjk |" in fields["Depends"]
    entry = (INSTALLERS / "linux" / "archivist.desktop").read_text().splitlines()
    assert entry[0] == "[Desktop Entry]"
    keys = dict(line.split("=", 1) for line in entry[1:] if "=" in line)
    assert keys["Exec"].startswith("/opt/archivist/archivist") and keys["Icon"] == "archivist" and keys["Type"] == "Application"
    for script in ("postinst", "postrm"):
        assert subprocess.run(["sh", "-n", str(INSTALLERS / "linux" / script)]).returncode == 0
    for script in ("linux/build.sh", "linux/smoke.sh", "macos/build.sh"):
        assert subprocess.run(["bash", "-n", str(INSTALLERS / script)]).returncode == 0
    compile((INSTALLERS / "archivist.spec").read_text(), "archivist.spec", "exec")


def test_self_test_passes_without_a_display(tmp_path: Path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "desktop.app", "--self-test"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "PASS  vocabulary", "PASS  knowledge base", "PASS  index samples", "PASS  answer a question", "PASS  model load and unload",
        "PASS  text recognition"]
    assert "store, embedder and" in lines[1] and "after launch" in lines[3]
    assert "llama.cpp CPU variant" in lines[1] and "sapphirerapids" not in lines[1].split("skipped")[0]
    assert lines[-1].startswith("OK: 6 of 6 checks passed")


def test_make_run_names_the_missing_window_libraries_before_qt_aborts(tmp_path: Path):
    """A machine without libxcb-cursor0 (PySide6 6.5+ needs it) where the user may not install:
    installers/linux/window-libs.sh, which `make run` calls first, names the one command."""
    script = ROOT / "installers" / "linux" / "window-libs.sh"
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, body in {"dpkg": '[ "$2" != libxcb-cursor0 ]', "id": "echo 1000", "sudo": "exit 1",
                       "uname": "echo Linux", "apt-get": "exit 0"}.items():
        (shims / name).write_text(f"#!/bin/sh\n{body}\n")
        (shims / name).chmod(0o755)
    done = subprocess.run(["/bin/bash", str(script)], capture_output=True, text=True,
                          env={"PATH": f"{shims}:/usr/bin:/bin"})
    assert done.returncode == 1
    assert "sudo apt-get install libxcb-cursor0" in done.stderr


def test_the_window_libraries_are_what_the_deb_depends_on():
    script = (ROOT / "installers" / "linux" / "window-libs.sh").read_text()
    libraries = re.search(r"for lib in (.*?); do", script, re.S).group(1).replace("\\", " ").split()
    depends = (ROOT / "installers" / "linux" / "control").read_text().split("Depends:")[1].split("\n")[0]
    assert libraries and all(lib in depends for lib in libraries)
    assert "installers/linux/window-libs.sh" in (ROOT / "Makefile").read_text().split("\nrun:")[1].split("\n\n")[0]


def test_the_bundle_leaves_out_only_what_the_app_never_imports_on_loading():
    """archivist.spec's excludes keep the .deb under 300 MB (issue 26): the frameworks that only make
    the embedding export, and packages reached only through optional plugins. None may be imported
    unconditionally when one of our modules loads, or the frozen app would fail at start."""
    spec = ast.parse((INSTALLERS / "archivist.spec").read_text())
    excludes = next(ast.literal_eval(node.value) for node in spec.body
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "excludes")
    assert {"torch", "sentence_transformers", "hypothesis", "mypy", "uvloop", "aiohttp", "PIL._avif"} <= set(excludes)
    excluded = tuple(excludes)
    for package in ("archivist", "desktop", "rag", "engine", "resources"):
        for source in (ROOT / package).rglob("*.py"):
            for node in ast.parse(source.read_text()).body:  # module level, not in a function or a try
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                for name in names:
                    assert not any(name == e or name.startswith(e + ".") for e in excluded), f"{source}: {name}"
