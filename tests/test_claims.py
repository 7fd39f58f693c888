"""Each cited sentence is checked against the passage it cites; the window marks the ones to check."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QTextCursor

from desktop.chat_view import ChatPanel, ShownTurn
from rag.answering.citations import citation_for
from rag.answering.claims import check
from rag.answering.field_sources import supported
from rag.answering.sources import Source

INSTALL = "Install the pump on a level floor. Connect the inlet hose before the power."
CARE = "Maintenance. The bearings need oil every 200 operating hours. Use only ISO VG 46 hydraulic oil."
REPORT = "本季度公司实现营业收入2.87亿元，同比增长12.5%；毛利率为39.2%，经营活动产生的现金流量净额为1.03亿元。"


def sources(*texts: str) -> list[Source]:
    return [Source(n, Path(f"/docs/{n}.pdf"), n, None, 0, len(t), t, 1.0) for n, t in enumerate(texts, start=1)]


def by_text(answer: str, *texts: str) -> dict[str, tuple[bool | None, str, int | None]]:
    return {c.text: (c.supported, c.problem, c.suggested) for c in check(answer, sources(*texts))}


def test_a_faithful_sentence_passes_and_a_wrong_number_does_not():
    found = by_text("The bearings need oil every 200 operating hours [2]. They need oil every 20 hours [2].", INSTALL, CARE)
    assert found["The bearings need oil every 200 operating hours."] == (True, "", None)
    assert found["They need oil every 20 hours."] == (False, "20 is not in [2]", None)  # 20 is not 200


def test_a_reversed_instruction_and_an_invented_grade_are_caught():
    found = by_text("Do not use ISO VG 46 hydraulic oil [2]. Use ISO VG 435 oil [2].", INSTALL, CARE)
    assert found["Do not use ISO VG 46 hydraulic oil."][:2] == (False, "[2] says it without the negation")
    assert found["Use ISO VG 435 oil."][:2] == (False, "435 is not in [2]")


def test_a_name_or_a_number_borrowed_from_elsewhere_is_caught():
    minutes = ("The Lyon production line was approved at 4.5 million euros. "
               "Next meeting: 18 June 2026. Daniel will train 200 users by 15 August.")
    found = by_text("The Porto production line was approved at 4.5 million euros [1]. "
                    "The Lyon line was approved at 18 million euros [1]. "
                    "Daniel will train 200 users by 15 August, and the next meeting is on 18 June [1].", minutes)
    assert found["The Porto production line was approved at 4.5 million euros."][:2] == (False, "Porto is not in [1]")
    assert found["The Lyon line was approved at 18 million euros."][:2] == (False, "[1] gives 18 for something else")
    assert found["Daniel will train 200 users by 15 August, and the next meeting is on 18 June."][0] is True  # two joined


def test_the_right_passage_is_suggested_when_the_cited_one_lacks_the_claim():
    found = by_text("Install the pump on a level floor [2].", INSTALL, CARE)
    supported_, problem, suggested = found["Install the pump on a level floor."]
    assert supported_ is False and "does not mention" in problem and suggested == 1


def test_a_claim_without_a_citation_is_marked_and_a_refusal_is_not():
    found = by_text("The bearings need oil every 200 operating hours. I could not find the torque in the documents.",
                    INSTALL, CARE)
    assert found == {"The bearings need oil every 200 operating hours.": (None, "cites no source", 2)}


def test_sentences_split_at_their_ends_not_inside_numbers_and_marks_stay_with_them():
    answer = "Revenue was 2.87 million.[1] Margin was 39.2% [1]. It grew."
    claims = check(answer, sources("Revenue was 2.87 million and the margin was 39.2%."))
    assert [answer[c.start:c.end] for c in claims] == ["Revenue was 2.87 million.[1]", "Margin was 39.2% [1].", "It grew."]
    assert [c.supported for c in claims] == [True, True, None]


def test_chinese_figures_are_checked_number_by_number():
    found = by_text("本季度营业收入为2.87亿元[1]。毛利率为14.67%[1]。现金流量净额为1.03亿元[1]。", REPORT)
    assert found["本季度营业收入为2.87亿元。"][0] is True
    assert found["毛利率为14.67%。"][:2] == (False, "14.67 is not in [1]")
    assert found["现金流量净额为1.03亿元。"][0] is True


def test_structured_values_get_the_same_test():
    assert supported({"revenue": 2.87, "margin": 39.2}, [REPORT])
    assert not supported({"revenue": 1.72}, [REPORT])
    assert not supported("every 2 hours", [CARE])  # 2 is not 200, though "2" is in "200"
    assert not supported("2023-12-25T08:42:39Z", [REPORT])


def test_the_window_underlines_a_sentence_to_check_and_opens_the_passage_that_holds_it(qtbot):
    chat = ChatPanel()
    qtbot.addWidget(chat)
    found = sources(INSTALL, CARE)
    answer = "The bearings need oil every 200 operating hours [2].\n- Install the pump on a level floor [2]."
    chat.show_turns([ShownTurn("How is the pump set up?", answer, citations=[citation_for(found[1])], sources=found,
                               claims=check(answer, found))])
    document = chat.transcript.document()
    text = document.toPlainText()
    assert "Also read: 1: 1.pdf, page 1" in text and "Sentences to check: 1" in text

    def format_at(words: str):
        cursor = QTextCursor(document)
        cursor.setPosition(text.index(words) + 2)
        return cursor.charFormat()

    from PySide6.QtGui import QTextDocumentFragment

    tip = QTextDocumentFragment.fromHtml(format_at("Install the pump").toolTip()).toPlainText()  # shown as text
    assert tip.startswith("Not borne out by its source: [2] does not mention") and "[1] holds it" in tip
    assert format_at("Install the pump").underlineStyle() == format_at("Install the pump").UnderlineStyle.DotLine
    assert format_at("The bearings").toolTip() == ""  # borne out: left alone
    with qtbot.waitSignal(chat.citation_clicked) as clicked:
        chat.transcript.anchorClicked.emit(QUrl("check:0/1"))  # a click on the underlined sentence
    assert clicked.args[0].number == 1 and clicked.args[0].path.name == "1.pdf"


def test_the_cli_lists_the_sentences_to_check_and_every_source(capsys):
    from archivist.cli_answers import _print_answer
    from rag.answering.ask import AnswerResult

    found = sources(INSTALL, CARE)
    answer = "The bearings need oil every 20 operating hours [2]. Install the pump on a level floor."
    _print_answer(AnswerResult("q", answer, [citation_for(found[1])], found, claims=check(answer, found)), False)
    out = capsys.readouterr().out
    assert "[1] /docs/1.pdf, page 1  (read, not cited)" in out and "[2] /docs/2.pdf, page 2\n" in out
    assert "Check 2 of 2 sentence(s):" in out
    assert "“The bearings need oil every 20 operating hours.”: 20 is not in [2]" in out
    assert "“Install the pump on a level floor.”: cites no source; [1] holds it" in out

    _print_answer(AnswerResult("q", "The Lisbon office opens at 8:30pm.", [], found[:1]), False)
    assert "Sources (the answer cites none of them):" in capsys.readouterr().out


FLEET = ["Vehicle", "Model", "Plate number", "Driver"], [
    ["Pickup truck", "Ford Ranger", "B-KL 4821", "Tom Berger"],
    ["Electric car", "Renault Zoe", "B-EV 1022", "Lena Fischer"],
    ["Van", "VW Crafter", "B-VN 7310", "Maria Keller"],
    ["Forklift", "Linde H25", "none", "Daniel Okafor"],
]
GREENHOUSE = ("Greenhouse 2 grows the tomato and pepper seedlings. The heater in greenhouse 2 keeps the air above "
              "12 °C from October to March, so that frost never reaches the seedlings. Its propane is delivered every "
              "month by Gasversorgung Nord, who also services the burner once a year.")


def test_the_quote_is_a_sentence_that_answers_the_question_or_none(embedder):
    from samples import PROSE

    from rag.answering.claims import quote
    from rag.indexing.loaders.tables import render

    header, rows = FLEET
    fleet = "Fleet list, updated 2 March 2026.\n" + "\n".join(render([header, *rows]))
    pickup = quote("What is the plate number of the pickup?", sources(CARE, fleet), embedder.embed)
    assert pickup is not None and pickup.number == 2 and "Pickup truck" in pickup.text and "B-KL 4821" in pickup.text
    heater = quote("What does the greenhouse heater do and who supplies its gas?", sources(*PROSE, GREENHOUSE),
                   embedder.embed)
    assert heater is not None and heater.number == len(PROSE) + 1 and "heater" in heater.text
    # Passages that do not speak of it give no quote, not the closest filler.
    heater = quote("What does the greenhouse heater do and who supplies its gas?", sources(*PROSE), embedder.embed)
    assert heater is None
    oil = quote("How often do the bearings need oil?", sources(INSTALL, CARE, *PROSE), embedder.embed)
    assert oil is not None and oil.text == "The bearings need oil every 200 operating hours."
    report = quote("毛利率是多少？", sources(*PROSE, REPORT), embedder.embed)
    assert report is not None and "毛利率为39.2%" in report.text


def test_the_same_question_again_in_a_conversation_is_quoted_again(tmp_path: Path, embedder, starter_model: Path):
    """The second time, the passages are ones the conversation already sent: the quote comes from them."""
    from engine import STARTER_NAME, LlamaEngine, LlamaSettings
    from rag.answering.ask import Answered, AskOptions, Retrieved
    from rag.knowledge_base import KnowledgeBase
    from rag.storage.vectors import VectorStore

    (tmp_path / "care.txt").write_text(CARE + "\n")
    (tmp_path / "install.txt").write_text(INSTALL + "\n")
    engine = LlamaEngine(LlamaSettings(starter_model, context_size=2048, label=STARTER_NAME, stand_in=True),
                         idle_thread=False)
    kb = KnowledgeBase(VectorStore.embedded(tmp_path / "chroma"), embedder, tmp_path / "keyword", model=engine)
    try:
        kb.ingest([tmp_path / "care.txt", tmp_path / "install.txt"], "Docs")
        talk = kb.new_conversation("Docs").id
        options = AskOptions(conversation=talk, answer_tokens=4, use_cache=False, starts_within=0)
        quotes = []
        for _ in range(2):
            events = list(kb.ask("How often do the bearings need oil?", "Docs", options))
            assert isinstance(events[0], Retrieved) and isinstance(events[-1], Answered), events[-1]
            quotes.append(events[0].quote)
            assert events[-1].result.quote == events[0].quote
        assert quotes[0] is not None and quotes[0].text == "The bearings need oil every 200 operating hours."
        assert quotes[1] == quotes[0]  # the same passage, by the number it already has
    finally:
        engine.close()
