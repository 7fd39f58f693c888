"""Uploads in a folder that several replicas share: a copy is written whole or not at all, whichever
replica writes it and whichever reads it; and where that folder is (``[server] uploads_folder``)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.errors import ArchivistError
from server.cli import load_config
from server.uploads import PARTIAL, Uploads

CHUNK = 64 * 1024


def versions(count: int, size: int = 2 * 2**20) -> list[bytes]:
    """``count`` contents of different sizes, each byte saying which it is: a mix of two shows."""
    return [bytes([65 + n]) * (size + n * 4099) for n in range(count)]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(f"{PARTIAL}*"))


def test_two_replicas_writing_one_copy_at_once_leave_one_whole_and_readers_never_see_part(tmp_path: Path):
    shared = tmp_path / "shared"
    replicas = [Uploads(tmp_path / "one", root=shared, replica="one"),
                Uploads(tmp_path / "two", root=shared, replica="two")]
    target = replicas[0].copy_of("alice", "/home/alice/report.pdf")
    assert target == replicas[1].copy_of("alice", "/home/alice/report.pdf") and target.is_relative_to(shared)
    contents = versions(4)
    done = threading.Event()
    seen: list[bytes] = []

    def write(number: int) -> None:
        for _ in range(6):
            with replicas[number % 2].writing(target) as out:
                data = contents[number]
                for start in range(0, len(data), CHUNK):  # written in pieces, as a request's body arrives
                    out.write(data[start:start + CHUNK])

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(target.read_bytes())
            except FileNotFoundError:  # before the first copy is whole
                continue

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with ThreadPoolExecutor(len(contents)) as pool:
            list(pool.map(write, range(len(contents))))
    finally:
        done.set()
        reader.join()
    assert target.read_bytes() in contents
    assert seen and all(copy in contents for copy in seen), {(len(c), c[:1]) for c in seen if c not in contents}
    assert leftovers(shared) == []


def test_a_copy_is_written_under_a_name_of_its_own_and_an_error_leaves_the_old_copy(tmp_path: Path):
    uploads = Uploads(tmp_path, replica="app1")
    target = uploads.copy_of("bob", "C:\\Reports\\q3.pdf")
    with uploads.writing(target) as out:
        out.write(b"the first version")
        partial, = leftovers(uploads.root)
        assert partial.startswith(f"{PARTIAL}app1-") and not target.exists()
    assert target.read_bytes() == b"the first version" and leftovers(uploads.root) == []

    class Dropped(Exception):
        """The connection went in the middle of the body."""

    with pytest.raises(Dropped), uploads.writing(target) as out:
        out.write(b"half of the second")
        raise Dropped
    assert target.read_bytes() == b"the first version" and leftovers(uploads.root) == []
    if (target.stat().st_mode & 0o777) != 0o600:
        pytest.fail(f"a copy is readable by others: {oct(target.stat().st_mode)}")


def test_the_uploads_folder_is_set_in_server_toml(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    assert load_config(home)[1].uploads_folder == home / "uploads"
    (home / "server.toml").write_text(f'[server]\nuploads_folder = "{tmp_path / "share"}"\n', encoding="utf-8")
    assert load_config(home)[1].uploads_folder == tmp_path / "share"
    (home / "server.toml").write_text('[server]\nuploads_folder = "kept"\n', encoding="utf-8")
    assert load_config(home)[1].uploads_folder == home / "kept"
    offered = tmp_path / "offered"
    for uploads in (offered / "uploads", tmp_path):  # inside an offered folder, or around one
        (home / "server.toml").write_text(f'[server]\nfolders = ["{offered}"]\nuploads_folder = "{uploads}"\n',
                                          encoding="utf-8")
        with pytest.raises(ArchivistError, match="and the uploads folder .* overlap"):
            load_config(home)
    (home / "server.toml").write_text("[server]\nuploads_folder = 3\n", encoding="utf-8")
    with pytest.raises(ArchivistError, match="uploads_folder = 3"):
        load_config(home)
