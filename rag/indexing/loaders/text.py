"""Plain text in any common encoding, streamed in blocks so a huge file never sits in memory."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

import charset_normalizer

from rag.documents import LoadResult, Section
from rag.errors import DocumentCorrupt, DocumentUnsupported

_SAMPLE_BYTES = 256 * 1024
_BLOCK_CHARS = 128 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


_WESTERN_LANGUAGES = {
    "English", "French", "German", "Spanish", "Portuguese", "Italian", "Dutch", "Danish", "Swedish",
    "Norwegian", "Finnish", "Catalan", "Indonesian", "Malay",
}


def detect_encoding(path: Path) -> str:
    """Name the file's text encoding, or raise ``DocumentUnsupported`` when it is not text.

    A byte-order mark decides first; then UTF-8 if the sample decodes as it; then
    charset-normalizer's best guess. Bytes that no encoding explains (NULs, control
    characters) mean a binary file with a text extension.
    """
    with path.open("rb") as f:
        sample = f.read(_SAMPLE_BYTES)
        truncated = bool(f.read(1))
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    if b"\x00" in sample:
        raise DocumentUnsupported(path, "binary data, not text")
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still UTF-8.
        if truncated and exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
    matches = list(charset_normalizer.from_bytes(sample))
    if not matches:
        raise DocumentUnsupported(path, "binary data, not text")
    # Western single-byte text decodes "well" in a dozen code pages; Windows-1252 is by far
    # the most common of them, so it wins whenever it reads as cleanly as the best guess.
    best = matches[0]
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + 0.1:
            return "cp1252"
    # A short sample of French or German reads "cleanly" in Baltic or Central European code
    # pages too; for a language Windows-1252 covers, it is the one to trust.
    if best.language in _WESTERN_LANGUAGES and _decodes(sample, "cp1252"):
        return "cp1252"
    return best.encoding


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        sample.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def decoded_blocks(path: Path, result: LoadResult) -> Iterator[tuple[int, str]]:
    """Yield ``(offset, text)`` blocks of the decoded file, each ending at a line break."""
    encoding = detect_encoding(path)
    offset = 0
    carry = ""
    replaced = 0
    try:
        with path.open("r", encoding=encoding, errors="replace", newline=None) as f:
            while True:
                piece = f.read(_BLOCK_CHARS)
                replaced += piece.count("\ufffd")
                text = carry + piece
                if len(piece) < _BLOCK_CHARS:  # end of file: the rest is the last block
                    carry = text
                    break
                cut = text.rfind("\n\n")
                if cut < len(text) // 2:
                    cut = text.rfind("\n")
                if cut <= 0:
                    if len(text) < 4 * _BLOCK_CHARS:
                        carry = text  # one very long line: read on to find its end
                        continue
                    cut = len(text) - 1
                block, carry = text[: cut + 1], text[cut + 1 :]
                yield offset, block
                offset += len(block)
    except (UnicodeError, LookupError) as exc:
        raise DocumentCorrupt(path, f"cannot decode as {encoding}: {exc}") from exc
    if carry:
        yield offset, carry
    if replaced:
        result.warnings.append(f"{replaced} characters could not be decoded as {encoding}")


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """Sections of a plain-text file, one per block of about 128K characters."""
    for offset, block in decoded_blocks(path, result):
        yield Section(text=block, offset=offset)
