"""Checkable answers, measured.

1. The sentence checker (``rag.answering.claims``) on a labelled set made from the eval corpus
   (bench/eval/en.json, 60 short documents): every sentence of a document, cited to it,
   is a claim it supports; so is the same sentence reworded (synonyms), two sentences joined
   into one, and a handful of hand-written paraphrases. Altered copies are claims it does not
   support: a number changed, a negation added or taken away, a name from another
   document, a sentence of another document, a number taken from another sentence of the
   same document. Printed: how often a supported claim is flagged (false alarms) and how
   often each kind of unsupported one is caught, with the lexical and numeric check alone
   and with the embedder's similarity for paraphrases.

2. Answers of the starter model to labelled questions (the shipped samples, and questions
   of the eval corpus with the phrase that answers them), with the current instructions, with
   tighter ones, and decoded under the citation grammar (every sentence ends with its [n]):
   citation precision (the share of cited sentences the checker finds borne out, and the
   share of citations that point at the passage holding the answer), the share of answers
   whose key fact is right, and the share whose key fact is in the best-matching source
   sentence quoted verbatim (what a quote above the answer would show).

Part 2 runs the starter model unless told otherwise: ``--model FILE.gguf`` (gpt-oss-20b, say,
with ``--gpu-layers 999`` on a GPU machine) or ``--server URL --server-model NAME`` (an
OpenAI-compatible server: vLLM or llama.cpp's serving gpt-oss, as a team runs it).

    python bench/claims.py [--parts 1,2] [--questions 40] [--configs shipped,tighter,grammar]
                           [--model FILE.gguf [--gpu-layers N] | --server URL --server-model NAME]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rag import offline  # noqa: E402

offline.enforce()

from engine import LanguageModel, LlamaEngine, LlamaSettings, RemoteEngine  # noqa: E402
from engine.catalog import starter_model_path  # noqa: E402
from rag.answering import prompting  # noqa: E402
from rag.answering.ask import Answered, AskOptions  # noqa: E402
from rag.answering.claims import check, quote  # noqa: E402
from rag.answering.prompting import INSTRUCTIONS  # noqa: E402
from rag.answering.sources import Source  # noqa: E402
from rag.embedding import Embedder  # noqa: E402
from rag.knowledge_base import KnowledgeBase  # noqa: E402
from rag.storage.vectors import VectorStore  # noqa: E402

SAMPLES = HERE.parent / "resources" / "samples"
SYNONYMS = {"opens": "starts", "closes": "shuts", "must": "has to", "may": "can", "every": "each", "about": "around",
            "begins": "starts", "buy": "purchase", "help": "assist", "need": "require", "needs": "requires",
            "large": "big", "small": "little", "quickly": "fast", "start": "begin", "near": "close to"}
PARAPHRASES = [  # (source sentence, the same claim in other words)
    ("The bearings need oil every 200 operating hours.", "Oil the bearings after each 200 hours of operation."),
    ("Use only ISO VG 46 hydraulic oil.", "The only oil to use is hydraulic oil of grade ISO VG 46."),
    ("Leave at least 30 cm of free space around the motor for cooling.",
     "The motor needs 30 cm or more of clearance so that it stays cool."),
    ("Error E4 on the display means the supply voltage is too low.", "When the display shows E4, the voltage supplied is too low."),
    ("A rattling noise usually means air in the system: open the bleed screw until water comes out.",
     "If it rattles, there is probably air inside; let it out through the bleed screw until water appears."),
    ("The Lyon production line was approved at 4.5 million euros.", "Approval was given for the Lyon line, at a cost of 4.5 million euros."),
    ("Lena proposed moving the support team to the second floor in May.",
     "In May the support staff could relocate to the second floor, as Lena suggested."),
    ("Replace the inlet filter every spring, or sooner if the flow drops by more than a fifth.",
     "Change the inlet filter each spring, earlier if the flow falls by over 20 percent."),
    ("Nothing leaves your computer: the documents, the index and the model all stay here.",
     "Documents, index and model all remain on your own machine."),
    ("Daniel reported that customer data has been moved to the new system.",
     "According to Daniel, the customer records are now in the new system."),
]
AUXILIARIES = re.compile(r"\b(is|are|was|were|can|must|will|may|should|does|do|has|have)\b")
NEGATED = re.compile(r"\b(is|are|was|were|can|must|will|may|should|does|do|has|have) not\b|\bno\b|\bnever\b")
NUMBER = re.compile(r"\b(\d+(?:\.\d+)?|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
                    r"forty|fifty|hundred)\b")
NAME = re.compile(r"(?<=[a-z,] )[A-Z][a-z]{2,}")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 5]


def labelled(documents: dict[str, str], rng: random.Random) -> list[tuple[str, str, str, bool]]:
    """(kind, claim, the cited document's text, supported)."""
    cases: list[tuple[str, str, str, bool]] = []
    names = sorted({n for text in documents.values() for n in NAME.findall(text)})
    keys = sorted(documents)
    for key in keys:
        text = documents[key]
        own = sentences(text)
        for sentence in own:
            cases.append(("verbatim", sentence, text, True))
            words = sentence.split()
            reworded = " ".join(SYNONYMS.get(w, w) for w in words)
            if reworded != sentence:
                cases.append(("reworded", reworded, text, True))
            number = NUMBER.search(sentence)
            if number:
                value = number.group()
                changed = str(int(float(value)) * 10) if value[0].isdigit() else {"hundred": "thousand"}.get(value, "seventeen")
                cases.append(("number changed", sentence[:number.start()] + changed + sentence[number.end():], text, False))
                others = [n.group() for s in own if s != sentence for n in NUMBER.finditer(s) if n.group() != value]
                if others:
                    swapped = sentence[:number.start()] + rng.choice(others) + sentence[number.end():]
                    cases.append(("number from another sentence", swapped, text, False))
            if NEGATED.search(sentence):
                cases.append(("negation removed", NEGATED.sub(lambda m: m.group(1) or "", sentence, count=1), text, False))
            elif AUXILIARIES.search(sentence):
                cases.append(("negation added", AUXILIARIES.sub(lambda m: m.group(1) + " not", sentence, count=1), text, False))
            name = NAME.search(sentence)
            if name and names:
                other = rng.choice([n for n in names if n not in text] or names)
                cases.append(("name from another document", sentence[:name.start()] + other + sentence[name.end():], text, False))
            after = own.index(sentence) + 1
            if after < len(own):
                second = own[after]
                cases.append(("two sentences joined", sentence.rstrip(".") + ", and " + second[0].lower() + second[1:],
                              text, True))
            stranger = rng.choice(sentences(documents[rng.choice([k for k in keys if k != key])]))
            cases.append(("sentence of another document", stranger, text, False))
    samples = "\n".join(p.read_text(encoding="utf-8") for p in SAMPLES.glob("*.t*") if p.suffix in (".txt",))
    samples += "\n" + "\n".join(source for source, _ in PARAPHRASES)
    for source, paraphrase in PARAPHRASES:
        cases.append(("hand-written paraphrase", paraphrase, source + " " + samples, True))
    return cases


def part1(embedder: Embedder) -> None:
    data = json.loads((HERE / "eval" / "en.json").read_text(encoding="utf-8"))
    cases = labelled(data["documents"], random.Random(7))

    def similarity(claim: str, texts: list[str]) -> list[float]:
        vectors = embedder.embed([claim, *texts])
        return [float(v) for v in vectors[1:] @ vectors[0]]

    print(f"1. the sentence checker on {len(cases)} labelled claims from {len(data['documents'])} documents:")
    rows: dict[str, dict[str, list[bool]]] = {}
    seconds: dict[str, float] = {}
    for label, sim in (("lexical and numeric", None), ("+ embedder for paraphrases", similarity)):
        started = time.perf_counter()
        for kind, claim, text, _supported in cases:
            source = Source(1, Path("doc.txt"), None, None, 0, len(text), text, 1.0)
            flagged = check(f"{claim} [1]", [source], sim)
            rows.setdefault(kind, {}).setdefault(label, []).append(bool(flagged) and flagged[0].supported is False)
        seconds[label] = (time.perf_counter() - started) / len(cases)
    labels = list(seconds)
    print(f"  {'kind of claim':32} {'n':>4}  " + "  ".join(f"{lab:>26}" for lab in labels))
    for kind, by_label in rows.items():
        supported = next(s for k, _c, _t, s in cases if k == kind)
        what = "false alarms" if supported else "caught"
        cells = "  ".join(f"{sum(v) / len(v):>13.0%} {what:>12}" for v in by_label.values())
        print(f"  {kind:32} {len(next(iter(by_label.values()))):>4}  {cells}")
    print("  time per claim: " + ", ".join(f"{lab} {seconds[lab] * 1000:.1f} ms" for lab in labels))


def key_fact_right(text: str, fact: str) -> bool:
    """Whether ``text`` states the key fact: its numbers and most of its words."""
    from rag.answering.claims import supports

    return supports(fact, [text])


# Instructions tried against those the app sends: every sentence to end with its [N], numbers
# and negations copied as written. Not adopted: on the starter they gave no more citations and
# no more right answers (see the closing note of the issue on checkable answers).
TIGHTER = INSTRUCTIONS.replace(
    "- After each claim, cite the source it comes from as [N], using the source's id; cite several as [1][3].",
    "- End every sentence that states a fact with the id of the source it comes from, as [N]; cite several "
    "as [1][3].",
).replace(
    "- Be concise and precise.",
    "- Copy numbers, dates, names and units exactly as the source writes them, and keep its negations "
    '("only", "never", "do not") as they are.\n- Be concise: a few sentences, each with its [N].',
)


def part2(embedder: Embedder, engine: LanguageModel, answer_tokens: int, questions: int, configs: set[str]) -> None:
    data = json.loads((HERE / "eval" / "en.json").read_text(encoding="utf-8"))
    labelled_questions = [
        ("How often do the bearings need oil, and which oil?", "every 200 operating hours ISO VG 46", "samples"),
        ("How much space must be left around the motor?", "30 cm", "samples"),
        ("What does error E4 mean?", "supply voltage is too low", "samples"),
        ("When must the inlet filter be replaced?", "every spring", "samples"),
        ("How much was approved for the Lyon production line?", "4.5 million euros", "samples"),
        ("When is the next project meeting?", "18 June 2026", "samples"),
        ("By when must Daniel plan the training, and for how many users?", "200 users by 15 August", "samples"),
        ("Where will the support team move?", "second floor", "samples"),
    ]
    rng = random.Random(3)
    picked = rng.sample(data["questions"], min(questions, len(data["questions"])))
    labelled_questions += [(q["q"], q["passage"], q["doc"]) for q in picked]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        kb = KnowledgeBase(VectorStore.embedded(root / "chroma"), embedder, root / "keyword", model=engine)
        docs = root / "eval"
        docs.mkdir()
        for key, text in data["documents"].items():
            (docs / f"{key}.txt").write_text(text, encoding="utf-8")
        kb.ingest([docs], "Eval")
        kb.ingest(sorted(SAMPLES.iterdir()), "Samples")
        print(f"2. {engine.name} on {len(labelled_questions)} labelled questions "
              f"({sum(w == 'samples' for _q, _f, w in labelled_questions)} over the shipped samples, the rest over "
              "the eval corpus):", flush=True)
        assert TIGHTER != INSTRUCTIONS, "the instructions changed: update TIGHTER"
        for name, label, instructions, grammar in (("shipped", "instructions as shipped", INSTRUCTIONS, False),
                                                   ("tighter", "tighter instructions (tried)", TIGHTER, False),
                                                   ("grammar", "decoded under the citation grammar", INSTRUCTIONS, True)):
            if name not in configs:
                continue
            prompting.INSTRUCTIONS = instructions
            answer_all(kb, embedder, labelled_questions, label, grammar, answer_tokens)
        prompting.INSTRUCTIONS = INSTRUCTIONS


def answer_all(kb: KnowledgeBase, embedder: Embedder, questions: list[tuple[str, str, str]], label: str,
               grammar: bool, answer_tokens: int) -> None:
    totals = {"answers": 0, "cited sentences": 0, "borne out": 0, "citations": 0, "to the answer passage": 0,
              "key fact right": 0, "key fact in quote": 0, "cites nothing": 0, "sentences": 0, "uncited": 0}
    started = time.perf_counter()
    for question, fact, where in questions:
        collection = "Samples" if where == "samples" else "Eval"
        events = list(kb.ask(question, collection, AskOptions(answer_tokens=answer_tokens, use_cache=False,
                                                                  cite_every_sentence=grammar)))
        result = events[-1].result if isinstance(events[-1], Answered) else None
        if result is None:
            continue
        totals["answers"] += 1
        cited = [c for c in result.claims if c.cited]
        totals["sentences"] += len(result.claims)
        totals["uncited"] += len(result.claims) - len(cited)
        totals["cited sentences"] += len(cited)
        totals["borne out"] += sum(c.supported is True for c in cited)
        totals["cites nothing"] += not result.citations
        for citation in result.citations:
            totals["citations"] += 1
            totals["to the answer passage"] += key_fact_right(citation.text, fact)
        totals["key fact right"] += key_fact_right(result.answer, fact)
        quoted = quote(question, result.sources, embedder.embed)  # what the window shows above a starter's answer
        totals["key fact in quote"] += bool(quoted) and key_fact_right(quoted.text, fact)
    elapsed = time.perf_counter() - started
    n = max(1, totals["answers"])
    print(f"  {label} ({totals['answers']} answers in {elapsed:.0f} s):")
    print(f"    citation precision: {totals['borne out'] / max(1, totals['cited sentences']):.0%} of "
          f"{totals['cited sentences']} cited sentences borne out by their source; "
          f"{totals['to the answer passage'] / max(1, totals['citations']):.0%} of {totals['citations']} citations "
          "point at a passage that holds the key fact")
    print(f"    sentences with a claim but no citation: {totals['uncited']} of {totals['sentences']}; "
          f"answers citing nothing: {totals['cites nothing'] / n:.0%}")
    print(f"    key fact right: in the generated answer {totals['key fact right'] / n:.0%}; in the best-matching "
          f"source sentence, quoted verbatim, {totals['key fact in quote'] / n:.0%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="1,2")
    parser.add_argument("--questions", type=int, default=40, help="questions of the eval corpus in part 2")
    parser.add_argument("--configs", default="shipped,tighter,grammar", help="part 2's ways of asking: shipped, tighter, grammar")
    parser.add_argument("--model", type=Path, help="part 2 with this GGUF instead of the starter (gpt-oss-20b, say)")
    parser.add_argument("--gpu-layers", type=int, default=-1, help="layers of --model to offload (-1: automatic)")
    parser.add_argument("--server", help="part 2 with an OpenAI-compatible server's model (vLLM, llama.cpp's server)")
    parser.add_argument("--server-model", default="gpt-oss-20b", help="the model's name on --server")
    parser.add_argument("--api-key", default="", help="--server's key, if it wants one")
    parser.add_argument("--answer-tokens", type=int,
                        help="tokens an answer may take, reasoning included (default: 160 for the starter, else 2048)")
    args = parser.parse_args()
    if args.model and args.server:
        parser.error("--model and --server: one or the other")
    embedder = Embedder()
    embedder.embed(["warm up"])
    parts = {p.strip() for p in args.parts.split(",")}
    if "1" in parts:
        part1(embedder)
    if "2" in parts:
        engine: LanguageModel
        if args.server:
            engine = RemoteEngine(args.server, args.server_model, api_key=args.api_key)
        elif args.model:
            engine = LlamaEngine(LlamaSettings(args.model, context_size=16384, gpu_layers=args.gpu_layers), idle_thread=False)
        else:  # the previous figures' setting: two threads, as on the machine the README's figures come from
            engine = LlamaEngine(LlamaSettings(starter_model_path(), context_size=8192, threads=2,
                                               label="the starter model (SmolLM2-135M)"), idle_thread=False)
        tokens = args.answer_tokens or (2048 if args.model or args.server else 160)
        try:
            part2(embedder, engine, tokens, args.questions, {c.strip() for c in args.configs.split(",")})
        finally:
            engine.close()


if __name__ == "__main__":
    main()
