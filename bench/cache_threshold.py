"""Where to set the answer cache's near-match threshold, measured rather than guessed.

Pairs of questions embedded with the bundled all-MiniLM-L6-v2: paraphrases (same question,
other words: a cached answer is right for both) and neighbours (different questions about
the same documents: serving one's answer for the other would be wrong). A near match must
never serve a neighbour, so the threshold sits above every neighbour's similarity; the
print-out shows how many paraphrases still hit there.

    python bench/cache_threshold.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARAPHRASES = [
    ("How often does the pump need oil?", "How often does the pump need to be oiled?"),
    ("How often does the pump need oil?", "How frequently should the pump be oiled?"),
    ("When was the treaty signed?", "When did they sign the treaty?"),
    ("What is the capital of France?", "What's the capital city of France?"),
    ("Who is the owner of the budget review?", "Who owns the budget review?"),
    ("What was the revenue in Q3?", "What was Q3 revenue?"),
    ("How do I reset my password?", "How can I reset my password?"),
    ("What is the warranty period?", "How long is the warranty period?"),
    ("Where is the server room?", "Where can I find the server room?"),
    ("What does the contract say about termination?", "What does the contract say regarding termination?"),
    ("How many employees does the company have?", "How many people does the company employ?"),
    ("What are the office opening hours?", "When is the office open?"),
    ("Who wrote the report?", "Who is the author of the report?"),
    ("What is the deadline for the project?", "When is the project deadline?"),
    ("How much does the license cost?", "What is the price of the license?"),
    ("What causes volcanic winters?", "What is the cause of volcanic winters?"),
    ("Which bacteria live in a sourdough starter?", "What bacteria are found in sourdough starter?"),
    ("What is the maximum upload size?", "What's the largest file I can upload?"),
    ("How is the data backed up?", "How are backups of the data made?"),
    ("What is the notice period for resignation?", "How much notice must I give when resigning?"),
    ("Who approves travel expenses?", "Who signs off on travel expenses?"),
    ("What is the gross margin?", "What's the gross margin?"),
    ("How do I install the software?", "How is the software installed?"),
    ("What temperature should the room be kept at?", "At what temperature should the room be kept?"),
    ("Is remote work allowed?", "Are employees allowed to work remotely?"),
]

NEIGHBOURS = [
    ("How often does the pump need oil?", "How often does the pump need a new filter?"),
    ("How often does the pump need oil?", "Which pump needs oil least often?"),
    ("When was the treaty signed?", "Where was the treaty signed?"),
    ("What was the revenue in Q3?", "What was the revenue in Q2?"),
    ("What was the revenue in Q3?", "What was the gross margin in Q3?"),
    ("Who is the owner of the budget review?", "When is the budget review due?"),
    ("How do I reset my password?", "How do I change my username?"),
    ("What is the warranty period?", "What does the warranty not cover?"),
    ("Where is the server room?", "Who has access to the server room?"),
    ("What does the contract say about termination?", "What does the contract say about renewal?"),
    ("How many employees does the company have?", "How many offices does the company have?"),
    ("What are the office opening hours?", "What are the helpdesk opening hours?"),
    ("Who wrote the report?", "Who reviewed the report?"),
    ("What is the deadline for the project?", "What is the budget for the project?"),
    ("How much does the license cost?", "How long does the license last?"),
    ("What causes volcanic winters?", "How long do volcanic winters last?"),
    ("Which bacteria live in a sourdough starter?", "How often is the sourdough starter fed?"),
    ("What is the maximum upload size?", "What is the minimum password length?"),
    ("How is the data backed up?", "How is the data encrypted?"),
    ("What is the notice period for resignation?", "What is the probation period for new hires?"),
    ("Who approves travel expenses?", "Who approves overtime?"),
    ("What is the gross margin?", "What is the net margin?"),
    ("How do I install the software?", "How do I uninstall the software?"),
    ("What temperature should the room be kept at?", "What humidity should the room be kept at?"),
    ("Is remote work allowed?", "Is smoking allowed?"),
    ("What was revenue in 2023?", "What was revenue in 2024?"),
    ("Who is the CEO?", "Who is the CFO?"),
    ("What is the first step?", "What is the last step?"),
]


def main() -> None:
    from rag import offline

    offline.enforce()
    from rag.answering.answer_cache import SIMILAR_THRESHOLD, compatible
    from rag.embedding import Embedder

    embedder = Embedder()

    def cosines(pairs: list[tuple[str, str]]) -> np.ndarray:
        a = embedder.embed([p[0] for p in pairs])
        b = embedder.embed([p[1] for p in pairs])
        return (a * b).sum(axis=1)

    para, neigh = cosines(PARAPHRASES), cosines(NEIGHBOURS)
    print(f"paraphrases ({len(para)}): min {para.min():.3f}  median {np.median(para):.3f}  max {para.max():.3f}")
    print(f"neighbours  ({len(neigh)}): min {neigh.min():.3f}  median {np.median(neigh):.3f}  max {neigh.max():.3f}")
    worst = NEIGHBOURS[int(np.argmax(neigh))]
    print(f"closest neighbour pair ({neigh.max():.3f}): {worst[0]!r} / {worst[1]!r}")
    para_ok = np.array([compatible(a, b) for a, b in PARAPHRASES])
    neigh_ok = np.array([compatible(a, b) for a, b in NEIGHBOURS])
    print(f"the pivot-word guard (wh-words, negations, numbers) lets through {para_ok.mean():.0%} of paraphrases "
          f"and {neigh_ok.mean():.0%} of neighbours")
    guarded = neigh[neigh_ok]
    near = NEIGHBOURS[int(np.flatnonzero(neigh_ok)[np.argmax(guarded)])]
    print(f"closest neighbour the guard lets through ({guarded.max():.3f}): {near[0]!r} / {near[1]!r}")
    for threshold in (0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.97):
        print(f"threshold {threshold:.2f}: embeddings alone serve {np.mean(para >= threshold):4.0%} of paraphrases and "
              f"{int((neigh >= threshold).sum())} neighbours; with the guard {np.mean((para >= threshold) & para_ok):4.0%} "
              f"and {int(((neigh >= threshold) & neigh_ok).sum())}")
    used = (para >= SIMILAR_THRESHOLD) & para_ok
    wrong = (neigh >= SIMILAR_THRESHOLD) & neigh_ok
    print(f"in use: {SIMILAR_THRESHOLD:.2f} with the guard -> paraphrases served {used.mean():.0%}, "
          f"neighbours wrongly served {int(wrong.sum())} of {len(NEIGHBOURS)}")


if __name__ == "__main__":
    main()
