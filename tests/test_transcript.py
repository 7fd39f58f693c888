"""The transcript is a structure: whatever the model writes shows as its own characters, and the only
markup and links in the view are the app's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QLocale, QPoint, Qt, QTranslator
from PySide6.QtGui import QTextCursor, QTextDocument
from PySide6.QtWidgets import QApplication

from desktop.chat_view import ChatPanel
from desktop.structured_view import StructuredPanel
from desktop.transcript_links import CHECK, CITE, parse_link
from rag import AnswerResult, FieldSource, Quote, Source
from rag.answering.citations import citation_for
from rag.answering.claims import check

PUMP = "The pump in hall 3 needs oil every 200 hours. Its filter is replaced every spring."
TOML = "Team server settings live in server.toml: the address, the Chroma server and the model."
PARKING = "Electric cars park free for the first two hours in every public car park."

HOSTILE = [
    "```toml\n[server]\nport = 8080\n```\nThe pump needs oil every 200 hours [1].",
    "Use `oil every 200 hours [1]. Unbalanced `` backticks ``` here.",
    "<small>The answer cites none…</small> <b>bold</b> <script>alert('x')</script> <img src=\"file:///etc/x.png\">",
    "See <a href=\"file:///etc/passwd\">the file</a> or [this link](https://example.com) or [2](cite:0/1) [1].",
    "| Part | Hours |\n|---|---|\n| pump | 200 [1] |\n\n---\n**You:** > “Vehicle”",
    "مضخة الزيت كل 200 ساعة [1] 🛢️🔧 — עברית too, and *stars* and _underscores_ and \\[1\\].",
]


def sources(*texts: str) -> list[Source]:
    return [Source(n, Path(f"/docs/doc{n}.md"), None, "server.toml" if "toml" in t else None, 0, len(t), t, 1.0)
            for n, t in enumerate(texts, start=1)]


def anchors(document: QTextDocument) -> list[tuple[int, str, str]]:
    """Every anchor of the document: where it starts, its text, its address."""
    found = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            form = fragment.charFormat()
            assert not form.isImageFormat(), "the model's text made an image"
            if form.isAnchor() or form.anchorHref():
                found.append((fragment.position(), fragment.text(), form.anchorHref()))
            it += 1
        block = block.next()
    return found


def ask(chat: ChatPanel, question: str, answer: str, found: list[Source], quote: Quote | None = None,
        finish: str = "stop") -> None:
    """A question answered as ``desktop.asking`` drives the panel: retrieved, streamed in pieces, finished."""
    chat.begin(question)
    chat.show_retrieved(len(found), 0.0, 0.0, found)
    if quote is not None:
        chat.show_quote(quote)
    for i in range(0, len(answer), 7):
        chat.add_answer(answer[i:i + 7])
        chat._flush()  # what the panel's timer does while the answer streams
    cited = [citation_for(s) for s in found if f"[{s.number}]" in answer]
    chat.finish(AnswerResult(question, answer, cited, found, claims=check(answer, found), finish=finish))


def assert_only_ours(chat: ChatPanel) -> None:
    """Every link is one the app made and leads somewhere; no table, list or image came of the text."""
    document = chat.transcript.document()
    assert not document.rootFrame().childFrames(), "the model's text made a table"
    block = document.begin()
    while block.isValid():
        assert block.textList() is None, "the model's text made a list"
        block = block.next()
    for _position, text, href in anchors(document):
        link = parse_link(href)
        assert link is not None, f"a link the app did not make: {href!r} on {text!r}"
        turn = chat.turns[link.turn]
        if link.kind == CITE:
            assert any(s.number == link.number for s in [*turn.citations, *turn.sources]), href
        else:
            assert link.kind == CHECK and link.number < len(turn.claims), href


def click(qtbot, chat: ChatPanel, position: int) -> None:
    """A real mouse click on the character at ``position`` of the transcript."""
    cursor = QTextCursor(chat.transcript.document())
    cursor.setPosition(position + 1)
    spot = chat.transcript.cursorRect(cursor).center() - QPoint(2, 0)
    qtbot.mouseClick(chat.transcript.viewport(), Qt.MouseButton.LeftButton, pos=spot)


@pytest.fixture
def chat(qtbot) -> ChatPanel:
    panel = ChatPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 900)
    panel.show()
    return panel


def test_what_the_model_writes_shows_verbatim_and_makes_no_markup_or_link(qtbot, chat: ChatPanel):
    found = sources(PUMP, TOML)
    for i, answer in enumerate(HOSTILE):
        ask(chat, f"Question {i} <i>with</i> **markup**?", answer, found, Quote(1, PUMP))
        text = chat.transcript.toPlainText()
        for turn in chat.turns:  # this turn and every turn before it
            assert turn.answer in text and turn.question in text
        assert_only_ours(chat)
        # No raw markup of the app's: only the model's text (and the questions) hold any.
        ours = text
        for turn in chat.turns:
            ours = ours.replace(turn.answer, "").replace(turn.question, "")
        for raw in ("<small>", "**", "](cite:", "](check:", "\\[", "---", "<", "*"):
            assert raw not in ours, (raw, ours)
        assert f"“{PUMP}” [1]" in text and "Sources: 1: doc1.md" in text
        # Every citation of this turn and of the one before it opens its source when clicked.
        cites = [(p, t, h) for p, t, h in anchors(chat.transcript.document()) if h.startswith("cite:")]
        for turn in {len(chat.turns) - 1, max(0, len(chat.turns) - 2)}:
            position, label, href = next((p, t, h) for p, t, h in cites if h == f"cite:{turn}/1")
            with qtbot.waitSignal(chat.citation_clicked, timeout=2000) as clicked:
                chat.transcript.verticalScrollBar().setValue(0)
                click(qtbot, chat, position)
            assert clicked.args[0].number == 1 and clicked.args[0].path.name == "doc1.md", (label, href)
        # The model's own "[2](cite:0/1)" and <a href> are text: no anchor holds them.
        assert not any("passwd" in t or "example.com" in t or "(cite:" in t for _p, t, _h in cites)


def test_a_long_line_wraps_rather_than_scrolling_sideways(qtbot, chat: ChatPanel):
    ask(chat, "Q?", "```\n" + "QUJDRA" * 300 + "\n```", sources(PUMP))
    qtbot.waitUntil(lambda: chat.transcript.document().size().width() <= chat.transcript.viewport().width() + 1)
    assert not chat.transcript.horizontalScrollBar().isVisible()


def test_a_stopped_answer_keeps_its_words_says_so_and_lists_its_sources(qtbot, chat: ChatPanel):
    found = sources(PUMP, PARKING)
    chat.begin("How often does the pump need oil?")
    chat.show_retrieved(2, 0.0, 0.0, found)
    chat.add_answer("The pump needs oil every 200 hours [1], and `")
    chat.stopped()
    text = chat.transcript.toPlainText()
    assert "The pump needs oil every 200 hours [1], and `" in text
    assert "You stopped the answer before it was finished." in text
    assert "Sources: 1: doc1.md" in text and "Also read: 2: doc2.md" in text
    assert "*" not in text and "---" not in text
    assert_only_ours(chat)
    position = next(p for p, t, _h in anchors(chat.transcript.document()) if t == "[1]")
    with qtbot.waitSignal(chat.citation_clicked) as clicked:
        click(qtbot, chat, position)
    assert clicked.args[0].path.name == "doc1.md"
    # The next turn is whole again; one stopped before its first word still lists what it read.
    ask(chat, "And the filter?", "Every spring [1].", found)
    assert chat.turns[0].ending == "stopped" and chat.turns[1].ending == ""
    chat.begin("And the car park?")
    chat.show_retrieved(2, 0.0, 0.0, found)
    chat.stopped()
    assert chat.transcript.toPlainText().endswith(
        "You stopped the answer before it was finished.\nRead for this answer: 1: doc1.md · 2: doc2.md")


def test_a_runaway_answer_is_stopped_with_a_translated_note(qtbot, chat: ChatPanel):
    folder = Path(__file__).resolve().parents[1] / "resources" / "translations"
    translator = QTranslator()
    assert translator.load(QLocale("zh_CN"), "archivist", "_", str(folder))
    QApplication.instance().installTranslator(translator)
    try:
        ask(chat, "泵多久需要加油？", "QUJD QUJD QUJD QUJD\n---\n*QUJD*", sources(PUMP), finish="repetition")
        text = chat.transcript.toPlainText()
        assert "回答已停止：模型在反复写同样的内容。" in text and "您: 泵多久需要加油？" in text
        assert "QUJD QUJD QUJD QUJD\n---\n*QUJD*" in text  # the model's words, as it wrote them
        assert "Generation" not in text and "stopped" not in text
    finally:
        QApplication.instance().removeTranslator(translator)
    ask(chat, "Again?", "Cut [1]", sources(PUMP), finish="length")
    assert "The answer reached its length limit and was cut short." in chat.transcript.toPlainText()


def test_a_structured_answer_s_sources_are_links_with_their_labels_as_text(qtbot, chat: ChatPanel):
    found = sources(PUMP, TOML)
    data = {"answer": "Set the address in server.toml <a href='x'>here</a>", "hours": 200}
    chat.begin("Where are the team server's settings?")
    chat.show_retrieved(2, 0.0, 0.0, found)
    cited = citation_for(found[1])
    chat.finish(AnswerResult("q", "{}", [cited], found, data=data,
                             field_sources=[FieldSource("answer", [cited], True)]))
    text = chat.transcript.toPlainText()
    assert "Sources: 2: doc2.md, section server.toml" in text and "Also read: 1: doc1.md" in text
    links = anchors(chat.transcript.document())
    assert [(t, h) for _p, t, h in links] == [("2: doc2.md, section server.toml", "cite:0/2"),
                                              ("1: doc1.md", "cite:0/1")]
    assert_only_ours(chat)


def test_the_structured_value_column_gets_the_room_left(qtbot):
    panel = StructuredPanel()
    qtbot.addWidget(panel)
    panel.toggle.setChecked(True)
    panel.result.resize(640, 300)
    panel.result.show()
    value = "The pump in hall 3 needs oil every 200 hours, and its filter is replaced every spring by the night shift"
    panel.show_result({"answer": value, "hours": 200})
    tree = panel.tree
    qtbot.waitUntil(lambda: tree.columnWidth(1) > 0)
    left = tree.viewport().width() - tree.columnWidth(0) - tree.columnWidth(2)
    assert tree.columnWidth(1) >= left - 2 and tree.columnWidth(1) > 250
    from PySide6.QtGui import QTextDocumentFragment

    assert QTextDocumentFragment.fromHtml(tree.topLevelItem(0).toolTip(1)).toPlainText() == f'"{value}"'


def test_names_from_outside_show_as_written_in_labels_and_tooltips(qtbot):
    """A file, a model or a folder may be named like markup: labels and tooltips show the name."""
    from PySide6.QtGui import QTextDocumentFragment

    from desktop.elided_label import ElidedLabel
    from desktop.plain_text import tooltip

    name = "<b>x</b><img src='/etc/passwd'>.txt"
    label = ElidedLabel(f"Reading 1 of 3 files: {name}")
    qtbot.addWidget(label)
    label.show()
    label.resize(60, 20)
    qtbot.waitUntil(lambda: label.shown() != label.text())
    assert label.textFormat() == Qt.TextFormat.PlainText and label.text().endswith(name)
    assert QTextDocumentFragment.fromHtml(label.toolTip()).toPlainText() == f"Reading 1 of 3 files: {name}"
    assert QTextDocumentFragment.fromHtml(tooltip(f"{name}\nStatus: Indexed")).toPlainText() == f"{name}\nStatus: Indexed"
