"""Every cited sentence checked against the passage it cites.

An answer is split into sentences; each that carries ``[n]`` is compared with source n:
its numbers must be there as numbers (2 is not 200), its negation must agree with the
source's closest sentence, and its content words must be there, or, for a paraphrase, its
meaning must be close to that sentence (the embedder's cosine). A sentence its sources do
not bear out gets the reason, and another retrieved source that does, if one does. A
sentence that makes a claim but cites nothing is marked uncited. Structured answers use
the same test per field value (``rag.answering.field_sources``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.answering.citations import marks, strip_marks
from rag.answering.sources import Source

# Share of a claim's content words its source must hold, unless the meaning is close anyway.
WORD_SHARE = 0.6
# The embedder's cosine between a claim and its source's closest sentence that counts as the
# same meaning in other words (all-MiniLM-L6-v2: paraphrases score about 0.7 to 0.9).
PARAPHRASE = 0.75

Similarity = Callable[[str, Sequence[str]], list[float]]


@dataclass(frozen=True, slots=True)
class Claim:
    """One sentence of an answer, and whether the sources it cites bear it out.

    ``start``/``end`` span the sentence in the answer, its marks included. ``supported`` is
    None for a sentence that cites nothing; ``problem`` says in plain words what was not
    found; ``suggested`` is another source that does hold it.
    """

    start: int
    end: int
    text: str
    cited: tuple[int, ...]
    supported: bool | None
    problem: str = ""
    suggested: int | None = None

    @property
    def flagged(self) -> bool:
        """Worth a reader's second look: unsupported, or a claim with no citation."""
        return self.supported is not True


def claim_from_dict(data: dict[str, object]) -> Claim:
    """A claim read back from JSON (an answer cache entry, a saved conversation)."""
    return Claim(**{**data, "cited": tuple(data["cited"])})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Quote:
    """A sentence of source ``number``, word for word, shown above the answer of a small model."""

    number: int
    text: str


_QUOTE_CANDIDATES = 80
# A quote must hold this share of the question's words (weighted by how rare each is among the
# sentences), or be this close in meaning (all-MiniLM-L6-v2's cosine), and never less close than
# the floor. On bench/eval/en.json (128 questions, 6 passages each) the best sentence by meaning
# alone was right 83 times and wrong 45; with these, right 86, wrong 26, none 16.
QUOTE_WORDS = 0.4
QUOTE_MEANING = 0.5
QUOTE_FLOOR = 0.2
# A sentence ends at . ! ? followed by a space, a mark or the end (not inside 2.87), at a
# CJK full stop, or at a line break; marks right after its end still belong to it.
_END = re.compile(r"(?:[.!?](?=[\s\[]|$)|[。！？；\n])(?:\s*\[\d[\d\s,;–-]*\])*")
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?!\d)")
_THOUSANDS = re.compile(r"(?<=\d)[,\u202f ](?=\d{3}(?!\d))")
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NEGATIONS = frozenset(
    "not no never none nor neither cannot can't don't doesn't didn't isn't aren't wasn't weren't won't "  # noqa: SIM905 - word lists read better as words
    "shouldn't mustn't without nothing nobody".split()
)
_NUMBER_WORDS = {
    **{w: float(i) for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "  # noqa: SIM905
        "seventeen eighteen nineteen twenty".split())},
    **{w: float(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)},  # noqa: SIM905
    "hundred": 100.0, "thousand": 1000.0, "million": 1e6, "billion": 1e9,
}
_SCALES = frozenset({"hundred", "thousand", "million", "billion"})
_NAME = re.compile(r"(?<=[\w,;)] )[A-Z][\w-]*[A-Za-z]")
_SUFFIX = re.compile(r"(?:ing|ed|es|s)$")
_CJK_FUNCTION = frozenset("的了是在和与及或为对把被也就都而")
_CJK_NEGATIONS = re.compile(r"[不没無无未非勿別别]")
_STOPWORDS = frozenset(
    "the and for are but not you your with that this from they them their have has had was were will would "  # noqa: SIM905
    "can could should must may might what which who whom whose when where why how all any each every both "
    "into onto over under about above below than then there here these those its it's our ours also only "
    "very just such more most other some same does did done being been one per via use used using according "
    "source sources document documents passage answer says said".split()
)
# Sentences that make no claim of their own: the model saying it found nothing.
_NO_ANSWER = re.compile(
    r"\b(?:(?:do|does|did)(?: not|n't) (?:say|mention|contain|include|know|state)|not (?:found|mentioned|stated|given)|"
    r"(?:can|could)(?:not| not|n't) (?:find|answer|tell|say|determine)|no (?:information|mention)|unable to)\b|"
    r"未(?:提及|找到|说明)|没有(?:提到|找到|相关)|无法",
    re.IGNORECASE,
)


def check(answer: str, sources: Sequence[Source], similarity: Similarity | None = None) -> list[Claim]:
    """The answer's claims, each checked against the sources it cites (``sources``: every
    source the answer could cite, by number). ``similarity(claim, sentences)`` gives cosines."""
    by_number = {s.number: s for s in sources}
    claims = []
    for start, end in _sentences(answer):
        piece = answer[start:end]
        cited = tuple(n for n in marks(piece) if n in by_number)
        text = " ".join(strip_marks(piece).split())
        if not _terms(text) and not _numbers(text):
            continue  # "The answer is [2]." claims nothing to check
        if not cited:
            if not _NO_ANSWER.search(text):
                holder = next((s.number for s in sources if not _unsupported(text, s.text, "", similarity)), None)
                claims.append(Claim(start, end, text, (), None, "cites no source", holder))
            continue
        problem = ""
        for n in cited:
            problem = _unsupported(text, by_number[n].text, f"[{n}]", similarity)
            if not problem:
                break
        if not problem:
            claims.append(Claim(start, end, text, cited, True))
            continue
        others = [s.number for s in sources if s.number not in cited]
        suggested = next((n for n in others if not _unsupported(text, by_number[n].text, "", similarity)), None)
        claims.append(Claim(start, end, text, cited, False, problem, suggested))
    return claims


def _unsupported(claim: str, source: str, name: str, similarity: Similarity | None) -> str:
    """Why ``source`` does not bear ``claim`` out, or "" when it does."""
    source_n, claim_n = normalise(source), normalise(claim)
    numbers = _numbers(claim_n)
    held = set(_numbers(source_n))
    missing = [n for n in numbers if n not in held]
    if missing:
        return f"{_shown(missing[0])} is not in {name}".strip()
    absent = [n for n in _names(claim) if n.casefold() not in source_n]
    if absent:
        return f"{absent[0]} is not in {name}".strip()
    sentences = _source_sentences(source_n)
    wanted = _terms(claim_n)
    scored = sorted(((len(wanted & _terms(s)), s) for s in sentences), key=lambda pair: -pair[0]) or [(0, source_n)]
    ranked = [s for _overlap, s in scored]
    # The sentences the claim speaks of: the closest, and the next ones when the claim joins them.
    best = scored[0][0]
    near = [s for i, (overlap, s) in enumerate(scored[:3]) if i == 0 or overlap >= max(2, best // 2)]
    # A number must stand there, not anywhere in the passage.
    elsewhere = [n for n in numbers if n not in set(_numbers(" ".join(near)))]
    if elsewhere:
        return f"{name or 'the source'} gives {_shown(elsewhere[0])} for something else".strip()
    if _negated(claim_n) and not any(_negated(s) for s in near):
        return f"{name} says it without the negation".strip()
    if not _negated(claim_n) and all(_negated(s) for s in near):
        return f"{name} says the opposite".strip()
    if not wanted:
        return ""
    have = _terms(source_n)
    lacking = [w for w in wanted if w not in have]
    if 1 - len(lacking) / len(wanted) >= WORD_SHARE:
        return ""
    if similarity is not None and max(similarity(claim, ranked[:3]), default=0.0) >= PARAPHRASE:
        return ""
    words = ", ".join(f"“{w}”" for w in sorted(lacking)[:3])
    return f"{name or 'the source'} does not mention {words}"


def supports(value: str, texts: Sequence[str]) -> bool:
    """Whether ``texts`` hold ``value``: as a phrase, or its numbers as numbers and most of its words."""
    haystack = normalise(" ".join(texts))
    needle = normalise(value)
    if not needle:
        return True
    held = set(_numbers(haystack))
    if any(n not in held for n in _numbers(needle)):
        return False
    if needle in haystack:
        return True
    wanted = _terms(needle)
    return not wanted or len(wanted & _terms(haystack)) / len(wanted) >= 0.8


def normalise(text: str) -> str:
    """Case, width and spacing folded; 1,250,000 read as 1250000."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return _THOUSANDS.sub("", text)


def _sentences(answer: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _END.finditer(answer):
        if answer[start:match.end()].strip():
            spans.append((start, match.end()))
        start = match.end()
    if answer[start:].strip():
        spans.append((start, len(answer)))
    # Leading spaces are not part of a sentence.
    return [(s + len(answer[s:e]) - len(answer[s:e].lstrip()), e) for s, e in spans]


def _source_sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in _sentences(text)]


def quote(question: str, sources: Sequence[Source], embed: Callable[[Sequence[str]], np.ndarray]) -> Quote | None:
    """The source sentence that best answers the question, word for word, or None when none does
    (a quote cannot misquote, but it can quote the wrong thing: on the labelled set it held the key
    fact far more often than the starter's answer, and a wrong quote is worse than none).

    A sentence answers when it holds most of the question's words, the rare ones weighing more
    (``QUOTE_WORDS``: the pickup's row, not the electric car's that shares only "plate number"),
    or says the same in other words (the embedder's cosine of at least ``QUOTE_MEANING``); of
    those, the best by meaning and words together. ``sources``: what the answer is drawn from,
    the passages an earlier turn sent included."""
    candidates = [(s.number, " ".join(text.split())) for s in sources for text in _source_sentences(s.text)]
    candidates = [(n, t) for n, t in candidates if len(t.split()) >= 3 or _CJK.search(t)][:_QUOTE_CANDIDATES]
    if not candidates:
        return None
    wanted = _quote_words(normalise(question))
    held = [_quote_words(normalise(t)) for _n, t in candidates]
    # A word few sentences hold tells them apart; one that every row of a table holds does not.
    weight = {w: math.log((len(held) + 1) / (sum(w in h for h in held) + 1)) + 1 for w in wanted}
    total = sum(weight.values())
    vectors = embed([question, *(t for _n, t in candidates)])
    cosines = vectors[1:] @ vectors[0]
    best: tuple[float, int, str] | None = None
    for (number, text), words, cosine in zip(candidates, held, cosines, strict=True):
        share = sum(weight[w] for w in wanted & words) / total if total else 0.0
        if cosine < QUOTE_FLOOR or (share < QUOTE_WORDS and cosine < QUOTE_MEANING):
            continue
        if best is None or cosine + share > best[0]:
            best = (float(cosine + share), number, text)
    return None if best is None else Quote(best[1], best[2])


def _quote_words(text: str) -> set[str]:
    """A text's content words and its numbers (a number asked about is a word to find)."""
    return _terms(text) | {"#" + _shown(n) for n in _numbers(text)}


def _numbers(text: str) -> list[float]:
    """The numbers of a text, in digits or in English words ("twenty cents", "two hundred")."""
    found = [float(n) for n in _NUMBER.findall(_THOUSANDS.sub("", text))]
    total, current = 0.0, 0.0
    run: list[str] = []
    for word in [*re.findall(r"[a-z]+|\S", text.casefold()), ""]:
        value = _NUMBER_WORDS.get(word)
        if value is not None and not (word in _SCALES and not run):
            run.append(word)
            if word in _SCALES:
                current = max(current, 1.0) * value
                if value >= 1000:
                    total, current = total + current, 0.0
            else:
                current += value
            continue
        if run and word in ("and", "-"):  # two hundred and fifty, twenty-one
            continue
        if run and run != ["one"]:  # "one" alone is mostly a pronoun ("the new one")
            found.append(total + current)
        total, current, run = 0.0, 0.0, []
    return found


def _shown(number: float) -> str:
    return str(int(number)) if math.isfinite(number) and number.is_integer() else f"{number:g}"


def _terms(text: str) -> set[str]:
    """Content words (crudely stemmed: replaces, replaced -> replac); for Chinese or Japanese, characters (a word
    there has no spaces around it, and a paraphrase keeps most characters but few pairs)."""
    found: set[str] = set()
    for word in _WORD.findall(text.casefold()):
        if _CJK.search(word):
            found.update(c for c in word if _CJK.match(c) and c not in _CJK_FUNCTION)
        elif len(word) > 2 and word not in _STOPWORDS and not word.isdigit():
            found.add(_SUFFIX.sub("", word) if len(word) > 4 else word)
    return found


def _names(text: str) -> list[str]:
    """Proper names: capitalised words not opening a sentence (Lyon, Maria, ISO)."""
    return [m.group() for m in _NAME.finditer(text) if m.group().casefold() not in _STOPWORDS]


def _negated(text: str) -> bool:
    words = set(re.findall(r"[\w']+", text.casefold()))
    return bool(words & _NEGATIONS) or "n't" in text or bool(_CJK_NEGATIONS.search(text))
