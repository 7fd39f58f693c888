"""Chinese (and Japanese, Korean) documents: read right, split right, found."""

from __future__ import annotations

from pathlib import Path

from rag.answering.retrieval import SearchMode
from rag.documents import LoadResult
from rag.indexing import loaders
from rag.knowledge_base import KnowledgeBase
from rag.storage.keyword_index import terms

PAGES = [
    ["枫林镇公共图书馆工作日早上九点开门，晚上八点关门。", "周六上午十点开门，周日闭馆。"],
    ["逾期归还每天收取两角钱，每件最多收取五元。", "Overdue items cost 0.2 yuan a day."],
    ["儿童游泳课每周二和周四下午开课。", "十岁以下的儿童必须由家长陪同入池。"],
]


def make_cid_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF in reportlab's built-in Chinese CID font (STSong-Light): no font file embedded,
    text drawn through CMaps, as many Chinese PDFs are."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    for lines in pages:
        c.setFont("STSong-Light", 14)
        for i, line in enumerate(lines):
            c.drawString(72, 780 - 24 * i, line)
        c.showPage()
    c.save()
    return path


def test_cid_font_pdf_reads_as_the_right_characters_in_order(tmp_path: Path):
    pdf = make_cid_pdf(tmp_path / "guide.pdf", PAGES)
    result = LoadResult()
    sections = list(loaders.load(pdf, result))
    assert result.pages == 3
    assert [s.page for s in sections] == [1, 2, 3]
    for section, lines in zip(sections, PAGES, strict=True):
        assert section.text.split("\n")[:2] == lines


def test_keyword_terms_are_bigrams_for_cjk_and_words_for_latin():
    assert terms("枫林镇图书馆 opens at nine") == ["枫林", "林镇", "镇图", "图书", "书馆", "open", "at", "nine"]
    assert terms("図書館は")[:2] == ["図書", "書館"]
    assert terms("도서관은 몇") == ["도서", "서관", "관은", "몇"]
    assert terms("库") == ["库"]


def test_chinese_pdf_is_found_by_a_chinese_question(kb: KnowledgeBase, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_cid_pdf(docs / "guide.pdf", PAGES)
    (docs / "other.txt").write_text("The lighthouse keeper logged every passing ship.")
    assert kb.ingest([docs], "Docs").count("indexed") == 2
    for mode in (SearchMode(), SearchMode(vector=False)):
        best = kb.search("小孩几岁以下游泳要家长陪同？", "Docs", limit=3, mode=mode)[0]
        assert best.path.name == "guide.pdf" and best.page == 3 and "家长陪同" in best.text
    best = kb.search("书逾期归还要交多少钱？", "Docs", limit=1)[0]
    assert best.page == 2


def test_the_english_model_knows_it_cannot_read_chinese(embedder):
    assert embedder.coverage("How often does the pump need oil?") == 1.0
    assert embedder.coverage("旧沙发怎么处理？") < 0.2
