"""Tables as text a reader (and an embedder) can follow: each row carries its header."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def clean_cell(value: object) -> str:
    """A cell as one line of text: whitespace collapsed, ``None`` empty."""
    if value is None:
        return ""
    return " ".join(str(value).split())


def row_line(header: Sequence[str], row: Sequence[str]) -> str:
    """``Region: North, Q3 revenue: 2.87M``; cells without a header name stand alone, and a
    row that is one merged cell across the table (a note, a sub-title) is that cell's text."""
    filled = [cell for cell in row if cell]
    if len(filled) >= 3 and len(set(filled)) == 1 and not any(ch.isdigit() for ch in filled[0]):
        return filled[0]
    parts = []
    for i, cell in enumerate(row):
        if not cell:
            continue
        name = header[i] if i < len(header) else ""
        parts.append(f"{name}: {cell}" if name and name != cell else cell)
    return ", ".join(parts)


def render(rows: Iterable[Sequence[object]], has_header: bool = True) -> list[str]:
    """Render a table row by row; the first non-empty row is the header when ``has_header``."""
    header: list[str] = []
    lines: list[str] = []
    for raw in rows:
        row = [clean_cell(c) for c in raw]
        if not any(row):
            continue
        if has_header and not header:
            header = row
            continue
        lines.append(row_line(header, row) if header else " | ".join(c for c in row if c))
    if has_header and header and not lines:
        lines.append(" | ".join(c for c in header if c))
    return lines
