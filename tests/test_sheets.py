"""Spreadsheets and slides: every row read with its header, every slide a page, notes kept."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rag.documents import LoadResult
from rag.errors import DocumentCorrupt, DocumentEncrypted
from rag.indexing import loaders
from rag.knowledge_base import KnowledgeBase

REGIONS = ["North", "South", "East", "West", "Central", "Coast", "Highlands", "Islands"]


def make_xlsx(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sales = book.active
    sales.title = "Revenue"
    sales.append(["Region", "Manager", "Q3 revenue", "Closed on"])
    for i, region in enumerate(REGIONS):
        sales.append([region, f"Manager {i}", 1_250_000 + 231_000 * i + 0.5 * (i == 2), dt.datetime(2026, 9, 30)])
    sales.append(["Total", None, "=SUM(C2:C9)", None])
    staff = book.create_sheet("Staff")
    staff.append(["Name", "Office", "Extension"])
    staff.append(["Ada Moreau", "Lyon", 4411])
    staff.append(["Bram Visser", "Utrecht", 4472])
    book.save(path)
    return path


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Quarterly review"
    first.placeholders[1].text = "Revenue grew in every region"
    first.notes_slide.notes_text_frame.text = "Mention the new Lyon office."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Targets"
    table = second.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate([["Region", "Target"], ["North", "3.1M"], ["South", "2.4M"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    deck.save(path)
    return path


def read(path: Path) -> tuple[list, LoadResult]:
    result = LoadResult()
    return list(loaders.load(path, result)), result


def test_xlsx_rows_carry_their_headers_and_sheet(tmp_path: Path):
    sections, result = read(make_xlsx(tmp_path / "sales.xlsx"))
    assert result.pages == 2
    text = "".join(s.text for s in sections)
    assert "Region: East, Manager: Manager 2, Q3 revenue: 1712000.5, Closed on: 2026-09-30" in text
    assert "Name: Bram Visser, Office: Utrecht, Extension: 4472" in text
    assert sections[0].heading.startswith("Revenue › rows 2–")
    assert sections[-1].heading == "Staff › rows 2–3"
    offsets = [s.offset for s in sections]
    assert offsets == sorted(offsets) and offsets[0] == 0


def test_csv_with_semicolons_in_a_western_code_page(tmp_path: Path):
    path = tmp_path / "prices.csv"
    path.write_bytes("Article;Prix;Dépôt\nCafé moulu;4,20 €;Orléans\nThé vert;3,10 €;Nîmes\n".encode("cp1252"))
    sections, _ = read(path)
    assert sections[0].text == "Article: Café moulu, Prix: 4,20 €, Dépôt: Orléans\nArticle: Thé vert, Prix: 3,10 €, Dépôt: Nîmes\n"
    assert sections[0].heading == "rows 2–3"


def test_pptx_slides_are_pages_with_titles_tables_and_notes(tmp_path: Path):
    sections, result = read(make_pptx(tmp_path / "review.pptx"))
    assert result.pages == 2
    assert [(s.page, s.heading) for s in sections] == [(1, "Quarterly review"), (2, "Targets")]
    assert "Revenue grew in every region" in sections[0].text
    assert "Speaker notes: Mention the new Lyon office." in sections[0].text
    assert "Region: North, Target: 3.1M" in sections[1].text


@pytest.mark.parametrize("suffix", [".xlsx", ".pptx"])
def test_broken_and_protected_office_files(tmp_path: Path, suffix: str):
    broken = tmp_path / f"broken{suffix}"
    broken.write_bytes(b"PK\x03\x04 not really a zip archive" * 20)
    with pytest.raises(DocumentCorrupt):
        read(broken)
    locked = tmp_path / f"locked{suffix}"
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(DocumentEncrypted):
        read(locked)


def test_the_row_holding_the_answer_comes_first(kb: KnowledgeBase, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_xlsx(docs / "sales.xlsx")
    make_pptx(docs / "review.pptx")
    (docs / "memo.txt").write_text("The Lyon office opened in March. Parking is behind the building.")
    assert kb.ingest([docs], "Docs").count("indexed") == 3
    best = kb.search("What was the Q3 revenue of the Highlands region?", "Docs", limit=3)[0]
    assert best.path.name == "sales.xlsx"
    line = next(line for line in best.text.splitlines() if "Highlands" in line)
    assert "Q3 revenue: 2636000" in line
    assert best.heading.startswith("Revenue › rows")
    best = kb.search("Which extension does Bram Visser have?", "Docs", limit=1)[0]
    assert "Extension: 4472" in best.text and best.heading == "Staff › rows 2–3"
