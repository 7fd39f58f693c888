"""Retrieval quality on labelled question sets: recall@5 and MRR@10 per retriever.

Each set (bench/eval/*.json) holds documents and questions; every question names its
document and a phrase of the passage that answers it. A retrieved passage is a hit when it
comes from that document and its span overlaps the phrase. Printed per set: keyword only,
vector only and fused (reciprocal rank fusion), over the bundled embedding model, and again
over the multilingual model when it is present (downloaded from Settings, or a folder given).

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

from rag.embedding import Embedder  # noqa: E402
from rag.ingest import ChunkOptions  # noqa: E402
from rag.knowledge_base import KnowledgeBase  # noqa: E402
from rag.retrieval import SearchMode  # noqa: E402
from rag.store import VectorStore  # noqa: E402

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


def multilingual_folder(given: str | None) -> Path | None:
    """The multilingual embedding model: the folder given, or where Settings downloads it."""
    from engine.catalog import CATALOG, installed_model
    from rag.composition import models_dir
    from rag.settings import Settings

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


if __name__ == "__main__":
    main()
