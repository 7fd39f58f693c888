"""Loaders: text with provenance out of every supported format, and a clear reason when not."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from pypdf import PdfReader
from samples import PROSE, make_docx, make_image_pdf, make_pdf, make_table_pdf

from rag.documents import LoadResult
from rag.errors import DocumentCorrupt, DocumentEmpty, DocumentEncrypted, DocumentUnreadable, DocumentUnsupported
from rag.indexing import loaders


def sections(path: Path):
    result = LoadResult()
    return list(loaders.load(path, result)), result


def test_pdf_keeps_page_numbers(tmp_path):
    pdf = make_pdf(tmp_path / "report.pdf", ["First page about lighthouses.", "", "Third page about bread."])
    found, result = sections(pdf)
    assert result.pages == 3
    assert [s.page for s in found] == [1, 3]
    assert "lighthouses" in found[0].text and "bread" in found[1].text
    assert found[1].offset == len(found[0].text)
    assert any("without text: 2" in w for w in result.warnings)


def test_pdf_with_empty_user_password_is_opened(tmp_path):
    pdf = make_pdf(tmp_path / "restricted.pdf", ["Printing is restricted but reading is not."], user_password="", owner_password="boss")
    found, _ = sections(pdf)
    assert "reading is not" in found[0].text


def test_pdf_with_user_password_is_skipped(tmp_path):
    pdf = make_pdf(tmp_path / "secret.pdf", ["Top secret."], user_password="hunter2")
    with pytest.raises(DocumentEncrypted, match="password-protected, skipped"):
        sections(pdf)


def test_image_only_pdf_says_no_text_layer(tmp_path):
    with pytest.raises(DocumentEmpty, match="no text layer"):
        sections(make_image_pdf(tmp_path / "scan.pdf"))


@pytest.mark.parametrize("payload", [b"%PDF-1.7\n1 0 obj <<", b"this is not a pdf at all", b"%PDF-1.4\n" + bytes(range(256)) * 40])
def test_corrupt_pdf(tmp_path, payload):
    path = tmp_path / "broken.pdf"
    path.write_bytes(payload)
    with pytest.raises((DocumentCorrupt, DocumentEmpty)):
        sections(path)


def test_truncated_pdf(tmp_path):
    good = make_pdf(tmp_path / "good.pdf", PROSE)
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    try:
        found, _ = sections(cut)
    except (DocumentCorrupt, DocumentEmpty) as exc:
        assert exc.path == cut
    else:  # pypdf may recover the pages before the cut; what it returns must be real text
        assert all(s.text.strip() for s in found)


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("utf-8", "Grüße aus Köln — naïve café"),
        ("latin-1", "Grüße aus Köln, naïve café, déjà vu, à bientôt, garçon, très élevé"),
        ("cp1252", "Smart “quotes” and the euro sign € in a Windows file, naïve café"),
        ("utf-16", "UTF-16 with a byte-order mark: Grüße"),
        ("gb18030", "中文文本的编码检测应该正确地识别出简体中文。这是一段足够长的中文句子，用于测试。"),
        ("shift_jis", "日本語のテキストファイルです。文字コードの自動判定をテストします。"),
    ],
)
def test_text_encodings_detected(tmp_path, encoding, text):
    path = tmp_path / "note.txt"
    path.write_bytes(text.encode(encoding))
    found, _ = sections(path)
    assert found[0].text.strip() == text


def test_binary_with_text_extension(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(DocumentUnsupported, match="binary"):
        sections(path)


def test_empty_and_whitespace_files(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("")
    with pytest.raises(DocumentEmpty, match="empty"):
        sections(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n  \t\n")
    with pytest.raises(DocumentEmpty):
        sections(blank)


def test_unreadable_paths(tmp_path):
    with pytest.raises(DocumentUnreadable, match="does not exist"):
        sections(tmp_path / "missing.txt")
    link = tmp_path / "dangling.txt"
    link.symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(DocumentUnreadable):
        sections(link)
    with pytest.raises(DocumentUnsupported, match="unsupported file type .exe"):
        sections(tmp_path / "setup.exe")


def test_huge_text_file_is_streamed(tmp_path):
    path = tmp_path / "huge.txt"
    paragraph = ("All work and no play makes Jack a dull boy. " * 20 + "\n\n").encode()
    with path.open("wb") as f:
        for _ in range(40 * 2**20 // len(paragraph)):
            f.write(paragraph)
    tracemalloc.start()
    total = 0
    count = 0
    offset = 0
    for section in loaders.load(path, LoadResult()):
        assert section.offset == offset
        offset += len(section.text)
        total += len(section.text)
        count += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == path.stat().st_size
    assert count > 50
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 40 MiB file: not streamed"


def test_markdown_heading_trail(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(
        "Preface text.\n\n# Guide\n\nIntro.\n\n## Install\n\nRun the installer.\n\n```\n# not a heading\n```\n\n"
        "Setext Title\n============\n\nUnder setext.\n\n### Deep\n\nDeep text.\n"
    )
    found, _ = sections(path)
    headings = [s.heading for s in found]
    assert headings == [None, "Guide", "Guide › Install", "Setext Title", "Setext Title › Deep"]
    install = found[2]
    assert "# not a heading" in install.text
    full = path.read_text()
    for s in found:
        assert full[s.offset : s.offset + len(s.text)] == s.text


def test_html_blocks_headings_and_tables(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Quarterly</title><script>var x = 'hidden';</script></head><body>"
        "<p>Opening words.</p><h1>Sales</h1><p>By region:</p>"
        "<table><tr><th>Region</th><th>Q3 revenue</th></tr><tr><td>North</td><td>2.87M</td></tr>"
        "<tr><td>South</td><td>1.10M</td></tr></table><h2>Notes</h2><ul><li>One</li><li>Two</li></ul></body></html>"
    )
    found, _ = sections(path)
    assert [s.heading for s in found] == ["Quarterly", "Sales", "Sales › Notes"]
    assert "hidden" not in "".join(s.text for s in found)
    assert "Region: North, Q3 revenue: 2.87M" in found[1].text
    assert "Region: South, Q3 revenue: 1.10M" in found[1].text


def test_docx_headings_and_tables(tmp_path):
    path = make_docx(
        tmp_path / "memo.docx",
        [
            ("p", "Before any heading."),
            ("h1", "Budget"),
            ("p", "The budget for next year."),
            ("table", [["Item", "Cost"], ["Servers", "12000"], ["Licences", "3400"]]),
            ("h2", "Risks"),
            ("p", "Prices may rise."),
        ],
    )
    found, _ = sections(path)
    assert [s.heading for s in found] == [None, "Budget", "Budget › Risks"]
    assert "Item: Servers, Cost: 12000" in found[1].text


def test_pdf_tables_keep_their_headers_and_merged_cells(tmp_path):
    """A ruled table's rows carry the column headers, a merged cell is on every row it
    spans, and the prose around the table keeps its place: no cell soup."""
    rows = [["Region", "Quarter", "Revenue", "Margin"], ["North", "Q1", "2.87M", "39.2%"], ["", "Q2", "3.10M", "40.1%"],
            ["South", "Q1", "1.20M", "22.0%"], ["Note: figures unaudited", "", "", ""]]
    path = make_table_pdf(tmp_path / "results.pdf", rows, spans=[((0, 1), (0, 2)), ((0, 4), (3, 4))])
    found, result = sections(path)
    assert found[0].text.splitlines() == [
        "Quarterly results",
        "The table below lists revenue by region.",
        "Region: North, Quarter: Q1, Revenue: 2.87M, Margin: 39.2%",
        "Region: North, Quarter: Q2, Revenue: 3.10M, Margin: 40.1%",
        "Region: South, Quarter: Q1, Revenue: 1.20M, Margin: 22.0%",
        "Note: figures unaudited",
        "More prose follows the table.",
    ]
    assert not result.warnings


def test_a_pdf_table_over_two_pages_keeps_its_header(tmp_path):
    rows = [["Part", "Stock", "Bin"]] + [[f"P-{i:03}", str(i * 7), f"B{i % 9}"] for i in range(80)]
    found, _ = sections(make_table_pdf(tmp_path / "stock.pdf", rows))
    assert len(found) > 1
    assert "Part: P-000, Stock: 0, Bin: B0" in found[0].text
    assert "Part: P-079, Stock: 553, Bin: B7" in found[-1].text.splitlines()
    rest = [line for page in found[1:] for line in page.text.splitlines()]
    assert rest[-1] == "More prose follows the table." and all(line.startswith("Part: ") for line in rest[:-1])


def test_pdf_lines_that_are_not_tables_leave_the_text_as_it_was(tmp_path):
    """A rule under a title and a box around one paragraph are not tables."""
    path = make_table_pdf(tmp_path / "ruled.pdf", [["A lone boxed paragraph"]], rule_under_title=True)
    found, _ = sections(path)
    assert found[0].text.rstrip() == PdfReader(path).pages[0].extract_text().rstrip()


def test_docx_that_is_encrypted_or_corrupt(tmp_path):
    ole = tmp_path / "locked.docx"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    with pytest.raises(DocumentEncrypted):
        sections(ole)
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DocumentCorrupt):
        sections(broken)


def test_merged_cells_are_repeated_in_every_row_they_span(tmp_path):
    """A question about one cell finds its row: a merged region or quarter is on each row."""
    import docx
    import openpyxl

    document = docx.Document()
    table = document.add_table(rows=4, cols=3)
    for r, values in enumerate([["Region", "Quarter", "Revenue"], ["North", "Q1", "10.2M"], ["", "Q2", "11.7M"], ["South", "Q1", "7.9M"]]):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    table.cell(1, 0).merge(table.cell(2, 0))  # "North" spans two rows
    document.save(tmp_path / "sales.docx")
    found, _ = sections(tmp_path / "sales.docx")
    assert "Region: North, Quarter: Q2, Revenue: 11.7M" in found[0].text

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sales"
    for row in (["Region", "Quarter", "Revenue"], ["North", "Q1", 10.2], [None, "Q2", 11.7], ["South", "Q1", 7.9], ["Note", None, None]):
        sheet.append(row)
    sheet.merge_cells("A2:A3")
    sheet.merge_cells("A5:C5")  # a note across the whole row stays one note
    book.save(tmp_path / "sales.xlsx")
    found, result = sections(tmp_path / "sales.xlsx")
    lines = found[0].text.splitlines()
    assert lines[:3] == ["Region: North, Quarter: Q1, Revenue: 10.2", "Region: North, Quarter: Q2, Revenue: 11.7",
                         "Region: South, Quarter: Q1, Revenue: 7.9"]
    assert lines[3] == "Note" and not result.warnings


def test_every_entry_of_the_loader_table_names_a_loader():
    from rag.indexing import loaders

    assert {name: callable(loaders._loader(name)) for name in set(loaders.LOADERS.values())} == dict.fromkeys(
        set(loaders.LOADERS.values()), True)


RACE = """
import sys, threading
from pathlib import Path
from rag.documents import LoadResult
from rag.indexing import loaders
from server.web.pdf_pages import page_png
from archivist.pdf_marks import passage_rects

files = [Path(p) for p in sys.argv[1:]]
failed = []

def work(n):
    try:
        for k in range(40):
            path = files[(n + k) % len(files)]
            if n % 3 == 0:  # an ingest's read: text layer, ruled tables, PDFium's lenient read
                list(loaders.load(path, LoadResult(recognize=False)))
            elif n % 3 == 1:  # the page a browser shows for a citation
                page_png(path, 1)
            else:  # where the cited passage stands on it
                passage_rects(path, 0, "needs oil")
    except Exception as error:
        failed.append(repr(error))

threads = [threading.Thread(target=work, args=(n,)) for n in range(9)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(failed)
sys.exit(1 if failed else 0)
"""


def test_pdfs_read_and_rendered_on_many_threads_at_once_do_not_crash_the_process(tmp_path: Path):
    """PDFium is not thread-safe: a team server reading PDFs for ingests while rendering cited pages
    for browsers crashed (a segmentation fault, two runs in three) until every call held one lock."""
    import subprocess
    import sys

    files = [make_pdf(tmp_path / f"doc{i}.pdf", [f"Manual {i}. The pump needs oil every 200 hours."] * 2) for i in range(3)]
    files.append(make_table_pdf(tmp_path / "table.pdf", [["Part", "Hours"], ["pump", "200"], ["valve", "400"]]))
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", RACE, *map(str, files)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"exit {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
