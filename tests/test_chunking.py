"""The chunker: token budgets respected, boundaries preferred, offsets exact, CJK handled."""

from __future__ import annotations

from samples import PROSE

from rag.documents import Section
from rag.indexing.chunking import chunk_section, chunk_sections


def tokens(embedder, text: str) -> int:
    return len(embedder.token_offsets(text))


def test_budget_offsets_and_overlap(embedder):
    text = "\n\n".join(PROSE * 6)
    section = Section(text=text, offset=1000, page=4, heading="H")
    chunks = chunk_section(section, embedder, max_tokens=64, overlap=16)
    assert len(chunks) > 5
    for i, chunk in enumerate(chunks):
        assert tokens(embedder, chunk.text) <= 64
        assert text[chunk.start - 1000 : chunk.end - 1000] == chunk.text
        assert (chunk.page, chunk.heading, chunk.index) == (4, "H", i)
    covered = sorted((c.start, c.end) for c in chunks)
    for (s1, e1), (s2, _) in zip(covered, covered[1:]):
        assert s2 <= e1 + 2, "a gap between chunks loses text"


def test_prefers_paragraph_then_sentence_boundaries(embedder):
    chunks = chunk_section(Section("\n\n".join(PROSE), 0), embedder, max_tokens=60, overlap=0)
    for chunk in chunks[:-1]:
        assert chunk.text.rstrip()[-1] in ".!?", f"cut mid-sentence: {chunk.text[-40:]!r}"
    starts = {p[:20] for p in PROSE}
    assert any(c.text[:20] in starts for c in chunks[1:])


def test_overlap_starts_at_a_sentence_when_one_is_near(embedder):
    long_paragraph = " ".join(PROSE)  # one paragraph: cuts must fall at sentence ends
    chunks = chunk_section(Section(long_paragraph, 0), embedder, max_tokens=60, overlap=30)
    for before, after in zip(chunks, chunks[1:]):
        assert after.start < before.end, "no overlap"
        assert long_paragraph[after.start - 1] == " ", "overlap starts inside a word"
        assert after.text[0].isupper(), f"overlap starts mid-sentence: {after.text[:30]!r}"


def test_a_single_endless_word_is_still_cut(embedder):
    text = "x" * 5000
    chunks = chunk_section(Section(text, 0), embedder, max_tokens=32, overlap=4)
    assert "".join(c.text for c in chunks).replace(" ", "").count("x") >= 5000
    assert all(tokens(embedder, c.text) <= 32 for c in chunks)


def test_cjk_sentence_ends_and_sizes(embedder):
    sentence = "知识库应该能够找到中文文档中的答案。"
    text = sentence * 40
    chunks = chunk_section(Section(text, 0), embedder, max_tokens=48, overlap=8)
    assert len(chunks) > 10
    for chunk in chunks[:-1]:
        assert tokens(embedder, chunk.text) <= 48
        assert chunk.text.endswith("。")


def test_numbering_runs_across_sections(embedder):
    sections = [Section(p, i * 1000, page=i + 1) for i, p in enumerate(PROSE)]
    chunks = list(chunk_sections(sections, embedder, max_tokens=32, overlap=0))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {c.page for c in chunks} == {1, 2, 3, 4, 5}
