"""Spreadsheets (XLSX through openpyxl, CSV through the csv module), row by row with headers.

Each sheet is read as a table whose first non-empty row is the header, so every line reads
"Region: North, Q3 revenue: 2870000" rather than a bare row of numbers. A merged cell's value
is repeated in every cell it covers, so each row still says its region. Rows are grouped
into sections of a few hundred characters, each headed "Sheet › rows 2–9", which is the
provenance a citation shows. Rows are streamed: a sheet of any length is read in bounded memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from rag.documents import LoadResult, Section
from rag.errors import DocumentCorrupt, DocumentEncrypted
from rag.indexing.loaders import tables
from rag.indexing.loaders.office import ole_container
from rag.indexing.loaders.text import detect_encoding

# Rows are grouped until a section holds about this many characters.
_SECTION_CHARS = 600
# Merged cells beyond this many (per sheet) are left as the file has them (blank but the first).
_MAX_MERGED_CELLS = 200_000
_MERGE = re.compile(rb"<(?:\w+:)?mergeCell\s+ref=\"([A-Z]+[0-9]+):([A-Z]+[0-9]+)\"")


def cell_text(value: object) -> str:
    """A cell as a person reads it: 12 not 12.0, dates as ISO dates, text trimmed."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.15g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return tables.clean_cell(value)


def table_sections(name: str, rows: Iterable[Sequence[object]], offset: int) -> Iterator[Section]:
    """Sections of one sheet: header-carrying lines grouped by row ranges (1-based, as shown)."""
    header: list[str] = []
    lines: list[str] = []
    first = last = 0
    for number, raw in enumerate(rows, start=1):
        row = [cell_text(c) for c in raw]
        if not any(row):
            continue
        if not header:
            header = row
            continue
        if not lines:
            first = number
        lines.append(tables.row_line(header, row))
        last = number
        if sum(len(line) + 1 for line in lines) >= _SECTION_CHARS:
            text = "\n".join(lines) + "\n"
            yield Section(text, offset, heading=_where(name, first, last))
            offset += len(text)
            lines = []
    if lines:
        yield Section("\n".join(lines) + "\n", offset, heading=_where(name, first, last))
    elif header and not lines:  # a sheet that is only a header row still says what it holds
        yield Section(" | ".join(c for c in header if c) + "\n", offset, heading=name)


def _where(sheet: str, first: int, last: int) -> str:
    rows = f"row {first}" if first == last else f"rows {first}–{last}"
    return f"{sheet} › {rows}" if sheet else rows


def load_xlsx(path: Path, result: LoadResult) -> Iterator[Section]:
    """Every sheet of a workbook, formulas as their last computed values."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    if ole_container(path):
        raise DocumentEncrypted(path)  # a password-protected workbook is an OLE container
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DocumentCorrupt(path, str(exc) or type(exc).__name__) from exc
    try:
        offset = 0
        for sheet in book.worksheets:
            result.pages += 1
            rows = unmerge(sheet.iter_rows(values_only=True), merged_ranges(sheet, result))
            for section in table_sections(sheet.title, rows, offset):
                offset = section.offset + len(section.text)
                yield section
    finally:
        book.close()


def merged_ranges(sheet: object, result: LoadResult) -> list[tuple[int, int, int, int]]:
    """A sheet's merged ranges as (first row, first column, last row, last column), 1-based.

    A read-only sheet does not parse them; they sit at the end of the sheet's XML, which is
    scanned here in blocks rather than parsed whole."""
    from openpyxl.utils.cell import coordinate_to_tuple

    source = sheet._get_source()  # type: ignore[attr-defined]  # the sheet's XML stream
    ranges, tail = [], b""
    try:
        while block := source.read(1 << 20):
            data, end = tail + block, 0
            for match in _MERGE.finditer(data):
                (r0, c0), (r1, c1) = (coordinate_to_tuple(m.decode()) for m in match.groups())
                ranges.append((r0, c0, r1, c1))
                end = match.end()
            tail = data[max(end, len(data) - 200) :]  # a range cut by the block's end is found next time
    finally:
        source.close()
    if sum((r1 - r0 + 1) * (c1 - c0 + 1) for r0, c0, r1, c1 in ranges) > _MAX_MERGED_CELLS:
        result.warnings.append(f"{len(ranges)} merged ranges are too many to repeat their values")
        return []
    return ranges


def unmerge(rows: Iterable[Sequence[object]], ranges: list[tuple[int, int, int, int]]) -> Iterator[Sequence[object]]:
    """Rows with each merged range's value (its top-left cell's) repeated over the whole range."""
    if not ranges:
        yield from rows
        return
    covered: dict[int, dict[int, tuple[int, int]]] = {}  # row -> column -> the range's top-left cell
    for r0, c0, r1, c1 in ranges:
        for r in range(r0, r1 + 1):
            covered.setdefault(r, {}).update({c: (r0, c0) for c in range(c0, c1 + 1)})
    values: dict[tuple[int, int], object] = {}
    for number, row in enumerate(rows, start=1):
        here = covered.get(number)
        if not here:
            yield row
            continue
        cells = list(row) + [None] * (max(here) - len(row))
        for column, top_left in here.items():
            if top_left == (number, column):
                values[top_left] = cells[column - 1]
            else:
                cells[column - 1] = values.get(top_left)
        yield cells


def load_csv(path: Path, result: LoadResult) -> Iterator[Section]:
    """A CSV (or TSV) file: encoding and delimiter detected, one table."""
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, errors="replace", newline="") as f:
        sample = f.read(64 * 1024)
        f.seek(0)
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
        result.pages = 1
        try:
            yield from table_sections("", csv.reader(f, dialect), 0)
        except csv.Error as exc:
            raise DocumentCorrupt(path, f"not readable as CSV ({exc})") from exc
