"""The model downloader against a real HTTP server on loopback: resume, verify, cancel, refuse."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine import CancelToken, ChecksumMismatch, DownloadCancelled, DownloadError, NotEnoughDisk, UnverifiedDownload
from engine.download import DownloadProgress, download, mirrored

PAYLOAD = os.urandom(3 * 2**20 + 12345)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Behaviour:
    """How the server misbehaves: cut the first transfer short, corrupt bytes, lie about the hash."""

    cut_after: int | None = None
    corrupt: bool = False
    published_sha: str = SHA
    ranges_seen: list[str] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/hub/model.gguf":  # like the hub: a redirect that carries the LFS sha256
            self.send_response(302)
            self.send_header("Location", "/cdn/model.gguf")
            self.send_header("X-Linked-ETag", f'"{self.behaviour.published_sha}"')
            self.send_header("X-Linked-Size", str(len(PAYLOAD)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != "/cdn/model.gguf":
            self.send_error(404)
            return
        body = bytearray(PAYLOAD)
        if self.behaviour.corrupt:
            body[1000] ^= 0xFF
        start = 0
        header = self.headers.get("Range")
        self.behaviour.ranges_seen.append(header or "")
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        data = bytes(body[start:])
        if self.behaviour.cut_after is not None:
            cut, self.behaviour.cut_after = self.behaviour.cut_after, None
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    behaviour = Behaviour()
    handler = type("BoundHandler", (Handler,), {"behaviour": behaviour})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", behaviour
    httpd.shutdown()


def test_unverified_download_is_refused_unless_accepted(server, tmp_path: Path):
    base, behaviour = server
    with pytest.raises(UnverifiedDownload, match="no published checksum"):
        download(f"{base}/hub/model.gguf", tmp_path / "model.gguf")
    assert not list(tmp_path.iterdir()) and not behaviour.ranges_seen  # refused before any transfer
    seen: list[DownloadProgress] = []
    # Accepted: still checked against the sha256 the server publishes.
    target = download(f"{base}/hub/model.gguf", tmp_path / "model.gguf", progress=seen.append, accept_unverified=True)
    assert target.read_bytes() == PAYLOAD
    assert seen[-1].done == seen[-1].total == len(PAYLOAD) and seen[-1].rate > 0
    assert not list(tmp_path.glob("*.part*"))


def test_cut_transfer_resumes_with_a_range_request(server, tmp_path: Path):
    base, behaviour = server
    behaviour.cut_after = 1_000_000
    with pytest.raises(DownloadError, match="try again to resume"):
        download(f"{base}/hub/model.gguf", tmp_path / "model.gguf", SHA, timeout=5)
    part = tmp_path / "model.gguf.part"
    assert part.exists() and 0 < part.stat().st_size < len(PAYLOAD)
    assert not (tmp_path / "model.gguf").exists()  # a partial file is never taken for the model
    download(f"{base}/hub/model.gguf", tmp_path / "model.gguf", SHA)
    assert (tmp_path / "model.gguf").read_bytes() == PAYLOAD
    assert behaviour.ranges_seen[-1] == f"bytes={part_size_hint(behaviour)}-"


def part_size_hint(behaviour: Behaviour) -> int:
    return int(behaviour.ranges_seen[-1].removeprefix("bytes=").rstrip("-"))


def test_corrupted_download_is_rejected_and_removed(server, tmp_path: Path):
    base, behaviour = server
    behaviour.corrupt = True
    with pytest.raises(ChecksumMismatch, match=SHA):
        download(f"{base}/hub/model.gguf", tmp_path / "model.gguf", accept_unverified=True)
    assert not (tmp_path / "model.gguf").exists() and not (tmp_path / "model.gguf.part").exists()


def test_pinned_checksum_wins(server, tmp_path: Path):
    base, _ = server
    with pytest.raises(ChecksumMismatch):
        download(f"{base}/cdn/model.gguf", tmp_path / "model.gguf", sha256="0" * 64)


def test_cancel_keeps_the_part_for_later(server, tmp_path: Path):
    base, _ = server
    cancel = CancelToken()

    def stop_early(progress: DownloadProgress) -> None:
        if progress.done > 0:
            cancel.cancel()

    with pytest.raises(DownloadCancelled):
        download(f"{base}/hub/model.gguf", tmp_path / "model.gguf", SHA, progress=stop_early, cancel=cancel)
    assert (tmp_path / "model.gguf.part").exists()
    download(f"{base}/hub/model.gguf", tmp_path / "model.gguf", SHA)
    assert hashlib.sha256((tmp_path / "model.gguf").read_bytes()).hexdigest() == SHA


def test_not_enough_disk_is_refused_before_writing(server, tmp_path: Path, monkeypatch):
    import shutil

    import engine.download as download_module  # noqa: F401
    download_module = sys.modules["engine.download"]

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(download_module.shutil, "disk_usage", lambda _p: usage._replace(free=1024))
    base, _ = server
    with pytest.raises(NotEnoughDisk, match="GiB is free"):
        download(f"{base}/hub/model.gguf", tmp_path / "model.gguf", SHA)
    assert not (tmp_path / "model.gguf.part").exists() or (tmp_path / "model.gguf.part").stat().st_size == 0


def test_errors_are_plain(server, tmp_path: Path):
    base, _ = server
    with pytest.raises(DownloadError, match="404"):
        download(f"{base}/missing.gguf", tmp_path / "x.gguf", accept_unverified=True)
    with pytest.raises(DownloadError, match="connection failed"):
        download("http://127.0.0.1:9/model.gguf", tmp_path / "y.gguf", timeout=2, accept_unverified=True)


def test_mirror_keeps_the_path():
    url = "https://huggingface.co/ggml-org/gpt-oss-20b-GGUF/resolve/main/gpt-oss-20b-mxfp4.gguf"
    assert mirrored(url, "http://models.intranet:8080/hf/") == (
        "http://models.intranet:8080/hf/ggml-org/gpt-oss-20b-GGUF/resolve/main/gpt-oss-20b-mxfp4.gguf"
    )


def test_an_embedding_model_is_a_folder_of_its_own(tmp_path: Path):
    from engine.catalog import CATALOG, LANGUAGE_MODELS, installed_model

    model = next(m for m in CATALOG if m.kind == "embedding")
    assert model not in LANGUAGE_MODELS
    assert model.folder(tmp_path) == tmp_path / "embedding" / model.key
    for file in model.files[:-1]:
        (model.folder(tmp_path) / file.name).parent.mkdir(parents=True, exist_ok=True)
        (model.folder(tmp_path) / file.name).write_text("{}")
    assert installed_model(tmp_path, model) is None  # one file still missing
    (model.folder(tmp_path) / model.files[-1].name).parent.mkdir(parents=True, exist_ok=True)
    (model.folder(tmp_path) / model.files[-1].name).write_text("{}")
    assert installed_model(tmp_path, model) == model.folder(tmp_path)
