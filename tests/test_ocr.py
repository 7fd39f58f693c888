"""Scans and images: their text recognized (RapidOCR, for real), with pages, boxes, a way to
stop, a way to turn it off, and clear reasons when an image cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from samples import FONTS, make_image_pdf, make_pdf, make_scanned_pdf, scan

from engine.cancel import CancelToken
from rag.documents import LoadResult
from rag.errors import DocumentCorrupt, DocumentEmpty, DocumentTooLarge, DocumentUnsupported
from rag.indexing import loaders
from rag.indexing.ingest import ChunkOptions
from rag.knowledge_base import KnowledgeBase
from rag.storage.vectors import VectorStore

BEARINGS = ["Maintenance schedule", "", "The bearings need oil every 200 operating hours.", "Use only ISO VG 46 hydraulic oil."]
INVOICE = ["Invoice 2024-118", "", "Total due: 1,482.50 EUR by 30 June.", "Payable to Harbour Cranes Ltd."]


def read(path: Path, **given) -> tuple[list, LoadResult]:
    result = LoadResult(**given)
    return list(loaders.load(path, result)), result


def words(text: str) -> str:
    return " ".join(text.split())


def test_a_scanned_page_in_a_pdf_is_read_with_its_page_and_boxes(tmp_path: Path):
    pdf = make_scanned_pdf(tmp_path / "manual.pdf", ["Installation: mount the pump on a level concrete base.", BEARINGS])
    found, result = read(pdf)
    assert [s.page for s in found] == [1, 2]
    assert result.recognized == [2]
    assert not found[0].recognized  # the page with a text layer is read from it
    text = words(found[1].text)
    assert "bearings need oil every 200 operating hours" in text
    assert "iso vg 46" in text.lower()  # PP-OCR reads this "VG" as "vG"; search ignores case
    # Each line keeps where it sits on the page: the title above the oil, all within the page.
    title, *_ = found[1].recognized
    oil = next(box for start, end, box in found[1].recognized if "ISO" in found[1].text[start:end])
    assert title[2][3] < oil[1] and all(0 <= v <= 1 for v in oil)


def test_recognized_text_is_searchable_and_its_citation_says_so(tmp_path: Path, kb: KnowledgeBase):
    scan(INVOICE).save(tmp_path / "invoice.png")
    report = kb.ingest([tmp_path / "invoice.png"], "Docs")
    assert report.outcomes[0].recognized == 1, report.outcomes
    record = kb.status("Docs").files[0]
    assert record.recognized == 1
    passage = kb.search("How much is due on the invoice?", "Docs", limit=1)[0]
    assert "1,482.50" in passage.text
    assert passage.box is not None
    assert passage.location == "invoice.png, text recognized"


def test_a_multi_page_tiff_is_a_document_of_pages(tmp_path: Path):
    frames = [scan(BEARINGS).convert("L"), scan(INVOICE).convert("L")]
    frames[0].save(tmp_path / "fax.tiff", save_all=True, append_images=frames[1:], compression="tiff_lzw")
    found, result = read(tmp_path / "fax.tiff")
    assert result.pages == 2 and result.recognized == [1, 2]
    assert [s.page for s in found] == [1, 2]
    assert "iso vg 46" in found[0].text.lower() and "Harbour Cranes" in found[1].text


@pytest.mark.skipif(not Path(FONTS["zh"]).exists(), reason="no CJK font (tests/setup-system.sh installs fonts-wqy-microhei)")
def test_chinese_is_recognized(tmp_path: Path):
    scan(["第三季度营业收入为2.87亿元，同比增长12%。", "毛利率为39.2%。"], language="zh").save(tmp_path / "报表.png")
    found, _ = read(tmp_path / "报表.png")
    text = "".join(found[0].text.split())
    assert "营业收入为2.87亿元" in text and "毛利率为39.2%" in text


def test_recognition_turned_off_says_so(tmp_path: Path):
    scan(BEARINGS).save(tmp_path / "scan.png")
    with pytest.raises(DocumentUnsupported, match="text recognition is turned off"):
        read(tmp_path / "scan.png", recognize=False)
    pdf = make_scanned_pdf(tmp_path / "scan.pdf", [BEARINGS])
    with pytest.raises(DocumentEmpty, match="text recognition is turned off"):
        read(pdf, recognize=False)


def test_the_setting_reaches_the_knowledge_base(tmp_path: Path, embedder):
    kb = KnowledgeBase(VectorStore.embedded(tmp_path / "c"), embedder, tmp_path / "k", ChunkOptions(recognize_text=False))
    scan(BEARINGS).save(tmp_path / "scan.png")
    report = kb.ingest([tmp_path / "scan.png"], "Docs")
    assert report.failures[0].reason == "an image, and text recognition is turned off in Settings"


def test_stop_takes_effect_between_pages(tmp_path: Path):
    pdf = make_scanned_pdf(tmp_path / "long.pdf", [BEARINGS, INVOICE, BEARINGS])
    cancel = CancelToken()
    done: list[int] = []

    def page_done(page: int) -> None:
        done.append(page)
        cancel.cancel()

    found, result = read(pdf, cancel=cancel, page_done=page_done)
    assert done == [1] and len(found) == 1  # the first page is kept, nothing after it is read
    assert not result.warnings


def test_a_stopped_scan_is_finished_by_the_next_ingest(tmp_path: Path, kb: KnowledgeBase):
    pdf = make_scanned_pdf(tmp_path / "long.pdf", [BEARINGS, INVOICE])
    cancel = CancelToken()
    seen: list[float] = []

    def progress(state) -> None:
        seen.append(state.current_fraction)
        if state.current_fraction >= 0.5:
            cancel.cancel()

    report = kb.ingest([pdf], "Docs", progress=progress, cancel=cancel)
    assert report.cancelled and 0.5 in seen  # progress came per page
    assert kb.status("Docs").files[0].status == "pending"
    report = kb.ingest([pdf], "Docs")
    assert report.outcomes[0].status == "indexed" and report.outcomes[0].recognized == 2


def test_pages_with_nothing_to_read_are_named(tmp_path: Path):
    with pytest.raises(DocumentEmpty, match="no text could be recognized"):
        read(make_image_pdf(tmp_path / "drawings.pdf"))
    pdf = make_scanned_pdf(tmp_path / "mixed.pdf", [BEARINGS, []])
    found, result = read(pdf)
    assert len(found) == 1 and result.warnings == ["1 page(s) without text: 2"]


def test_a_short_text_layer_is_kept_when_the_image_holds_no_more(tmp_path: Path):
    found, result = read(make_pdf(tmp_path / "title.pdf", ["Annual report"]))
    assert words(found[0].text) == "Annual report" and result.recognized == []


def test_bad_images_are_refused_with_a_reason(tmp_path: Path):
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(DocumentCorrupt, match="not a readable image"):
        read(tmp_path / "cut.png")
    Image.new("1", (12_000, 12_000), 1).save(tmp_path / "huge.png")  # 144 million pixels, a few kilobytes
    with pytest.raises(DocumentTooLarge, match="too large"):
        read(tmp_path / "huge.png")


def test_a_pdf_pypdf_rejects_gets_a_lenient_read(tmp_path: Path):
    whole = make_pdf(tmp_path / "whole.pdf", ["The harbour crane is inspected every March.", "Second page."]).read_bytes()
    cut = tmp_path / "cut-short.pdf"
    cut.write_bytes(whole[: whole.rindex(b"xref")])  # a download that stopped before the end
    found, result = read(cut)
    assert "inspected every March" in found[0].text
    assert result.warnings[0].startswith("read leniently, the strict reader failed (")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")
    with pytest.raises(DocumentCorrupt, match="a lenient read failed too"):
        read(tmp_path / "broken.pdf")


def test_the_source_view_marks_a_recognized_passage_on_the_page_image(tmp_path: Path, qtbot, kb: KnowledgeBase):
    from desktop.source_view import SourcePanel

    make_scanned_pdf(tmp_path / "manual.pdf", ["Installation guide.", BEARINGS])
    kb.ingest([tmp_path / "manual.pdf"], "Docs")
    hit = kb.search("which hydraulic oil", "Docs", limit=1)[0]
    assert hit.page == 2 and hit.box is not None
    from rag import Source

    panel = SourcePanel()
    qtbot.addWidget(panel)
    panel.resize(700, 900)
    panel.show()
    panel.show_citation(Source(1, hit.path, hit.page, hit.heading, hit.start, hit.end, hit.text, 1.0, (hit.chunk_id,), hit.box))
    assert panel.image_area.isVisible() and not panel.pdf.isVisible()
    image = panel.image.pixmap().toImage()
    left, top, right, bottom = hit.box
    inside = image.pixelColor(int((left + right) / 2 * image.width()), int(bottom * image.height()) + 2)
    assert inside.blue() < inside.red() - 40, inside.name()  # the mark's yellow, not the page's white
    # A PDF page with a text layer is still shown by the PDF view.
    panel.show_citation(Source(2, tmp_path / "manual.pdf", 1, None, 0, 10, "Installation guide.", 1.0))
    assert panel.pdf.isVisible() and not panel.image_area.isVisible()
