"""Retrieval quality on labelled question sets: recall@5 and MRR@10 per retriever.

Each set (bench/eval/*.json) holds documents and questions; every question names its
document and a phrase of the passage that answers it. A retrieved passage is a hit when it
comes from that document and its span overlaps the phrase. Printed per set: keyword only,
vector only and fused (reciprocal rank fusion), over the bundled embedding model, and again
over the multilingual model when it is present (downloaded from Settings, or a folder given).

Then two figures of their own: a spreadsheet whose answers each sit in one cell (is the
right row the first passage?), and the per-field support rate of structured answers (the
share of fields whose value the retrieved passages bear out) with the starter model.

    python bench/retrieval_eval.py [--multilingual FOLDER] [SET ...]      (default: every set)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rag import offline  # noqa: E402

offline.enforce()

from rag.answering.retrieval import SearchMode  # noqa: E402
from rag.embedding import Embedder  # noqa: E402
from rag.indexing.ingest import ChunkOptions  # noqa: E402
from rag.knowledge_base import KnowledgeBase  # noqa: E402
from rag.storage.vectors import VectorStore  # noqa: E402

MODES = {"keyword only": SearchMode(vector=False), "vector only": SearchMode(keyword=False), "fused": SearchMode()}


@dataclass
class Score:
    recall5: float
    mrr10: float
    misses: list[str]


def evaluate(kb: KnowledgeBase, folder: Path, data: dict, mode: SearchMode) -> Score:
    found5 = 0
    reciprocal = 0.0
    misses = []
    for question in data["questions"]:
        text = data["documents"][question["doc"]]
        start = text.index(question["passage"])
        end = start + len(question["passage"])
        path = folder / f"{question['doc']}.txt"
        rank = None
        for i, passage in enumerate(kb.search(question["q"], "Eval", limit=10, mode=mode), start=1):
            if passage.path == path and passage.start < end and passage.end > start:
                rank = i
                break
        if rank is not None and rank <= 5:
            found5 += 1
        else:
            misses.append(question["q"])
        reciprocal += 1.0 / rank if rank else 0.0
    n = len(data["questions"])
    return Score(found5 / n, reciprocal / n, misses)


def run_set(name: str, embedder: Embedder, chunking: ChunkOptions) -> dict[str, Score]:
    data = json.loads((HERE / "eval" / f"{name}.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "docs"
        folder.mkdir()
        for doc, text in data["documents"].items():
            (folder / f"{doc}.txt").write_text(text, encoding="utf-8")
        kb = KnowledgeBase(VectorStore.embedded(root / "chroma"), embedder, root / "keyword", chunking)
        report = kb.ingest([folder], "Eval")
        assert not report.failures, report.failures
        scores = {label: evaluate(kb, folder, data, mode) for label, mode in MODES.items()}
        chunks = report.chunks
    print(f"\n{name}: {len(data['documents'])} documents ({chunks} chunks of up to {chunking.max_tokens} tokens), "
          f"{len(data['questions'])} questions; embedder {embedder.model_id}")
    for label, score in scores.items():
        print(f"  {label:13} recall@5 {score.recall5:.3f}   MRR@10 {score.mrr10:.3f}")
    fused = scores["fused"]
    best_single = max(scores["keyword only"].mrr10, scores["vector only"].mrr10)
    verdict = "beats" if fused.mrr10 > best_single and fused.recall5 >= max(s.recall5 for s in scores.values()) else "does NOT beat"
    print(f"  fused {verdict} both single retrievers")
    if fused.misses:
        print(f"  fused misses: {'; '.join(fused.misses[:5])}{' …' if len(fused.misses) > 5 else ''}")
    return scores


def spreadsheet(embedder: Embedder) -> None:
    """60 rows of made-up staff records; each question's answer is one cell of one row."""
    import openpyxl

    cities = ["Lyon", "Utrecht", "Porto", "Graz", "Turku", "Cork", "Brno", "Gdansk", "Bilbao", "Ghent"]
    teams = ["Payroll", "Logistics", "Legal", "Support", "Research", "Facilities"]
    rows = [(f"Person {i:02d}", cities[i % 10], teams[i % 6], 4000 + 17 * i, f"2026-{1 + i % 12:02d}-15") for i in range(60)]
    questions = [
        ("What is the phone extension of Person 17?", 17), ("In which city does Person 42 work?", 42),
        ("Which team is Person 05 in?", 5), ("When does Person 33 start?", 33), ("Where is Person 58 based?", 58),
        ("What extension does Person 09 have?", 9),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.title = "Staff"
        sheet.append(["Name", "City", "Team", "Extension", "Start date"])
        for row in rows:
            sheet.append(list(row))
        book.save(root / "staff.xlsx")
        kb = KnowledgeBase(VectorStore.embedded(root / "chroma"), embedder, root / "keyword")  # the app's chunking
        kb.ingest([root / "staff.xlsx"], "Eval")
        first = 0
        for question, index in questions:
            line = f"Name: {rows[index][0]}, City: {rows[index][1]}"
            top = kb.search(question, "Eval", limit=5)
            first += bool(top) and line in top[0].text
        print(f"\nspreadsheet (60 rows, {len(questions)} questions, each answered by one cell): "
              f"right row in the first passage {first}/{len(questions)}")


def support_rate(embedder: Embedder, documents: int = 6) -> None:
    """Structured answers (key facts) over the English set: the share of fields the sources bear out."""
    from archivist.extract import extract
    from engine import LlamaEngine, LlamaSettings
    from engine.catalog import starter_model_path
    from rag.answering.schemas import resolve

    data = json.loads((HERE / "eval" / "en.json").read_text(encoding="utf-8"))
    engine = LlamaEngine(LlamaSettings(starter_model_path(), context_size=4096), idle_thread=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "docs"
        folder.mkdir()
        for doc, text in list(data["documents"].items())[:documents]:
            (folder / f"{doc}.txt").write_text(text, encoding="utf-8")
        kb = KnowledgeBase(VectorStore.embedded(root / "chroma"), embedder, root / "keyword", model=engine)
        kb.ingest([folder], "Eval")
        fields = supported = cited = 0
        for row in extract(kb, "Eval", resolve("key_facts")):
            for f in row.result.field_sources if row.result else []:
                fields += 1
                supported += f.supported
                cited += bool(f.citations)
    engine.close()
    print(f"\nper-field support ({documents} documents, key_facts schema, {engine.name}): "
          f"{supported}/{fields} fields borne out by the sources ({supported / max(1, fields):.0%}), "
          f"{cited}/{fields} cite a source")


def multilingual_folder(given: str | None) -> Path | None:
    """The multilingual embedding model: the folder given, or where Settings downloads it."""
    from archivist.composition import models_dir
    from archivist.settings import Settings
    from engine.catalog import CATALOG, installed_model

    if given:
        return Path(given)
    model = next(m for m in CATALOG if m.kind == "embedding")
    return installed_model(models_dir(Settings.load()), model)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--multilingual", metavar="FOLDER", help="a multilingual sentence-transformers model")
    parser.add_argument("sets", nargs="*")
    args = parser.parse_args()
    names = args.sets or sorted(p.stem for p in (HERE / "eval").glob("*.json"))
    embedders = [Embedder()]
    folder = multilingual_folder(args.multilingual)
    if folder is not None:
        embedders.append(Embedder(folder))
    else:
        print("multilingual model: not present (Settings › Get a model, or --multilingual FOLDER); bundled model only")
    for embedder in embedders:
        for name in names:
            run_set(name, embedder, ChunkOptions(64, 16))
    if not args.sets:
        spreadsheet(embedders[0])
        support_rate(embedders[0])


if __name__ == "__main__":
    main()
