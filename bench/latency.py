"""The first word of an answer: how long it takes, how much the model reads first, and whether
the key fact is still among the sources it reads.

Through the knowledge-base process as the window uses it (the starter model unless the
settings name another), on labelled questions over the shipped samples, docs/deployment.md and
the eval corpus (bench/eval/en.json): each question asked with the prompt bounded by the
context window alone (``starts_within=0``: the path before this change) and sized to the
machine (``starts_within=5``, the default), in the same run. Printed per config: time to the
first answer token p50/p95, prompt tokens read per question (and those the model's cache held),
and the share of questions whose key fact is in the sources sent.

Then the budget at a stated reading speed (``--stated-speed``, tokens a second: 20 is gpt-oss-20b
on a laptop's CPU), in this process, without generating: the prompt tokens and the key fact, and
the first word that speed implies. Last, a cold ``archivist-cli ask`` (process start to its first
answer token), each way.

    python bench/latency.py [--questions 16] [--stated-speed 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from rag import offline  # noqa: E402

offline.enforce()

from archivist import KnowledgeBaseProcess, Settings  # noqa: E402
from engine import AnswerDelta, ReasoningDelta  # noqa: E402
from rag.answering.ask import Answered, AskFailed, AskOptions, Retrieved  # noqa: E402
from rag.answering.claims import supports  # noqa: E402
from rag.answering.prompting import build_request  # noqa: E402
from rag.answering.sources import render  # noqa: E402
from rag.service.client import KnowledgeBaseClient  # noqa: E402

SAMPLE_QUESTIONS = [
    ("How often do the bearings need oil, and which oil?", "every 200 operating hours ISO VG 46"),
    ("How much space must be left around the motor?", "30 cm"),
    ("What does error E4 mean?", "supply voltage is too low"),
    ("When must the inlet filter be replaced?", "every spring"),
    ("How much was approved for the Lyon production line?", "4.5 million euros"),
    ("When is the next project meeting?", "18 June 2026"),
    ("Where will the support team move?", "second floor"),
    ("How do I run several replicas of the server?", "watches_folders"),
]
COLLECTION = "Latency"


def questions(count: int) -> list[tuple[str, str]]:
    data = json.loads((HERE / "eval" / "en.json").read_text(encoding="utf-8"))
    picked = random.Random(7).sample(data["questions"], max(0, count - len(SAMPLE_QUESTIONS)))
    return (SAMPLE_QUESTIONS + [(q["q"], q["passage"]) for q in picked])[:count]


def corpus(folder: Path) -> list[Path]:
    data = json.loads((HERE / "eval" / "en.json").read_text(encoding="utf-8"))
    folder.mkdir()
    for key, text in data["documents"].items():
        (folder / f"{key}.txt").write_text(text, encoding="utf-8")
    return [folder, ROOT / "resources" / "samples", ROOT / "docs" / "deployment.md"]


def ask_timed(kb: KnowledgeBaseClient, question: str, starts_within: float) -> dict[str, object]:
    began = time.perf_counter()
    first = None
    sources: list[str] = []
    result = None
    for event in kb.ask(question, COLLECTION, AskOptions(use_cache=False, answer_tokens=24, starts_within=starts_within)):
        if isinstance(event, Retrieved):
            sources = [s.text for s in event.sources]
        elif isinstance(event, ReasoningDelta | AnswerDelta) and first is None:
            first = time.perf_counter() - began
        elif isinstance(event, Answered):
            result = event.result
        elif isinstance(event, AskFailed):
            raise event.error
    assert result is not None
    return {"first": first or result.timings.total, "prompt": result.usage.prompt, "cached": result.usage.cached,
            "sources": sources}


def summary(label: str, rows: list[dict[str, object]], facts: list[str]) -> None:
    firsts = sorted(float(r["first"]) for r in rows)
    p95 = firsts[min(len(firsts) - 1, round(0.95 * (len(firsts) - 1)))]
    found = sum(any(supports(fact, [text]) or fact.lower() in text.lower() for text in r["sources"])  # type: ignore[union-attr]
                for r, fact in zip(rows, facts, strict=True))
    print(f"  {label:<40} first token p50 {statistics.median(firsts):5.1f} s, p95 {p95:5.1f} s; "
          f"prompt {statistics.mean(int(r['prompt']) for r in rows):6.0f} tokens "
          f"({statistics.mean(int(r['cached']) for r in rows):4.0f} held by the cache), "
          f"{statistics.mean(len(r['sources']) for r in rows):4.1f} sources; "  # type: ignore[arg-type]
          f"key fact in the sources {found / len(rows):4.0%}", flush=True)


def through_the_process(settings: Settings, asked: list[tuple[str, str]], paths: list[Path]) -> None:
    process = KnowledgeBaseProcess(settings)
    process.start()
    kb = KnowledgeBaseClient(process)
    try:
        report = kb.ingest(paths, COLLECTION)
        print(f"  {report.count('indexed')} documents indexed; model {kb.model_status()}", flush=True)
        ask_timed(kb, "What is this collection about?", 0.0)  # the model loads; not counted
        facts = [fact for _q, fact in asked]
        for label, seconds in (("context window only (before)", 0.0), ("sized to the machine, 5 s (now)", 5.0)):
            rows = [ask_timed(kb, question, seconds) for question, _fact in asked]
            summary(label, rows, facts)
    finally:
        kb.close()


def stated_speed(settings: Settings, asked: list[tuple[str, str]], speed: float) -> None:
    """The budget a slow reader gets, in this process: sources packed, nothing generated."""
    from archivist.composition import open_knowledge_base

    kb = open_knowledge_base(settings)
    try:
        assert kb.model is not None
        kb.speeds._speeds[kb.model.name] = speed
        kb.speeds.learn = lambda *_args: None  # type: ignore[method-assign] - keep the stated speed
        for label, seconds in (("context window only (before)", 0.0), ("sized to the machine, 5 s (now)", 5.0)):
            prompts, found = [], 0
            for question, fact in asked:
                events = kb.ask(question, COLLECTION, AskOptions(use_cache=False, answer_tokens=1, starts_within=seconds))
                retrieved = next(e for e in events if isinstance(e, Retrieved))
                events.close()  # stop before the model writes: only the prompt matters here
                texts = [s.text for s in retrieved.sources]
                found += any(supports(fact, [t]) or fact.lower() in t.lower() for t in texts)
                fixed = kb.model.prompt_tokens(build_request(question, [], [], None, "low", 1))  # instructions, question
                prompts.append(fixed + sum(kb.model.count_tokens(render(s)) for s in retrieved.sources))
            read = statistics.mean(prompts)
            print(f"  {label:<40} prompt ~{read:6.0f} tokens: first word after ~{read / speed:5.1f} s at "
                  f"{speed:g} tokens/s; key fact in the sources {found / len(asked):4.0%}", flush=True)
    finally:
        kb.close()


def cold_cli(data: Path, question: str) -> None:
    for label, seconds in (("context window only (before)", "0"), ("sized to the machine, 5 s (now)", "5")):
        began = time.perf_counter()
        command = [str(Path(sys.executable).with_name("archivist-cli")), "--data-dir", str(data), "ask", question,
                   "-c", COLLECTION, "--format", "events", "--no-cache", "--starts-within", seconds]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ}) as cli:
            first = None
            for line in cli.stdout:  # type: ignore[union-attr]
                if first is None and ('"AnswerDelta"' in line or '"ReasoningDelta"' in line):
                    first = time.perf_counter() - began
            cli.wait()
        print(f"  {label:<40} launch to first answer token {first or float('nan'):5.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--stated-speed", type=float, default=20.0)
    args = parser.parse_args()
    asked = questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=str(root / "data"))
        paths = corpus(root / "eval")
        print(f"1. through the knowledge-base process, {len(asked)} questions (each way, the same run):", flush=True)
        through_the_process(settings, asked, paths)
        print(f"2. at a stated reading speed of {args.stated_speed:g} tokens/s (gpt-oss-20b on a laptop's CPU):",
              flush=True)
        stated_speed(settings, asked, args.stated_speed)
        print("3. a cold `archivist-cli ask` (nothing running):", flush=True)
        cold_cli(root / "data", asked[0][0])


if __name__ == "__main__":
    main()
