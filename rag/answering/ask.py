"""Asking: a question in, a grounded answer with citations out, as a stream of events.

cache -> retrieve (or whole documents) -> pack sources into the context budget -> prompt ->
the engine streams reasoning and answer -> citations mapped back -> cache and conversation.
Events: ``Retrieved``, then the engine's own ``Loading`` (weights), ``Reading`` (the prompt),
``ReasoningDelta`` and ``AnswerDelta``, then exactly one ``Answered`` or ``AskFailed``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from annotated_types import Interval

from engine import (
    AnswerDelta,
    ArchivistError,
    CancelToken,
    Done,
    Failed,
    GenerationRequest,
    LanguageModel,
    Loading,
    Reading,
    ReasoningDelta,
    Usage,
)
from rag.answering.answer_cache import AnswerCache
from rag.answering.citations import Citation, citation_from_dict, resolve
from rag.answering.claims import Claim, Quote, Similarity, check, claim_from_dict, quote
from rag.answering.conversations import ConversationStore, Turn
from rag.answering.field_sources import FieldSource, split
from rag.answering.prompting import Turn as PromptTurn
from rag.answering.prompting import build_request, cited_grammar, user_message
from rag.answering.reading_speed import ReadingSpeeds
from rag.answering.schemas import NamedSchema
from rag.answering.sources import Source, merge, pack, whole_document_sources
from rag.documents import Passage, path_to_text, text_to_path

RETRIEVAL, WHOLE = "retrieval", "whole documents"


Effort = Literal["low", "medium", "high"]  # how long gpt-oss reasons before answering


@dataclass(frozen=True, slots=True)
class AskOptions:
    """How to answer. ``paths`` limits the sources to those files; ``schema`` asks for JSON."""

    paths: Sequence[Path] | None = None
    schema: NamedSchema | None = None
    conversation: str | None = None
    effort: Effort = "low"
    passages: Annotated[int, Interval(ge=1, le=64)] = 12
    answer_tokens: Annotated[int, Interval(ge=1, le=131_072)] | None = None
    use_cache: bool = True
    cite_every_sentence: bool = False  # decode under ``cited_grammar``: no sentence without its [n]
    # Seconds until the first word: the sources fit what the model reads in that time on this
    # machine (``reading_speed``); 0: only the context window bounds them. Whole documents asked
    # for by ``paths`` are bounded by the context window alone.
    starts_within: Annotated[float, Interval(ge=0, le=3600)] = 5.0


@dataclass(frozen=True, slots=True)
class StageTimings:
    """Seconds per stage of one answer."""

    cache: float = 0.0
    retrieval: float = 0.0
    packing: float = 0.0
    load: float = 0.0
    first_token: float = 0.0
    generation: float = 0.0
    total: float = 0.0


@dataclass(frozen=True, slots=True)
class AnswerResult:
    """A finished answer: the text, what it cites, and how it was made."""

    question: str
    answer: str
    citations: list[Citation]
    sources: list[Source]
    dropped_citations: int = 0
    data: Any = None
    reasoning: str = ""
    mode: str = RETRIEVAL
    usage: Usage = field(default_factory=Usage)
    timings: StageTimings = field(default_factory=StageTimings)
    cached: str | None = None
    conversation: str | None = None
    field_sources: list[FieldSource] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    model: str = ""  # the name of the model that wrote it
    stand_in: bool = False  # the model is a small stand-in (the starter): check each sentence
    quote: Quote | None = None  # for a small model: the best source sentence, word for word
    finish: str = "stop"  # "length": cut at its token limit; "repetition": stopped, going round in a loop

    @property
    def flagged(self) -> list[Claim]:
        """The sentences a reader should check: not found in their source, or citing none."""
        return [c for c in self.claims if c.flagged]


@dataclass(frozen=True, slots=True)
class Retrieved:
    """The sources the answer will be made from, and how they were chosen."""

    sources: list[Source]
    mode: str
    quote: Quote | None = None
    found: int = 0  # passages retrieved; ``sources`` holds the best that fit the prompt
    speed: float = 0.0  # tokens a second the model reads here, when the time to the first word bounded them
    starts_within: float = 0.0  # that time, in seconds


@dataclass(frozen=True, slots=True)
class Answered:
    """The answer is complete, with its citations."""

    result: AnswerResult


@dataclass(frozen=True, slots=True)
class AskFailed:
    """No answer; ``error`` says why in plain words."""

    error: ArchivistError


AskEvent = Retrieved | Loading | Reading | ReasoningDelta | AnswerDelta | Answered | AskFailed


def collect_answer(events: Iterable[AskEvent]) -> AnswerResult:
    """The answer an ask's events end with; the error of one that failed is raised (the twin of
    the engine's ``collect``, for callers that show nothing until the answer is whole). Every
    event is read, so the ask ends (and lets go of the model) before this returns."""
    outcome: Answered | AskFailed | None = None
    for event in events:
        if isinstance(event, Answered | AskFailed):
            outcome = event
    if isinstance(outcome, AskFailed):
        raise outcome.error
    if outcome is None:
        raise ArchivistError("the answer ended without a result")
    return outcome.result


@dataclass
class AskContext:
    """What the pipeline needs from the knowledge base, passed in as plain callables."""

    model: LanguageModel
    collection_id: str
    adapter: Path | None
    fingerprint: Callable[[], str]
    search: Callable[[str, int, Sequence[Path] | None, np.ndarray | None], list[Passage]]
    document_chunks: Callable[[Path], list[Passage]]
    embed_query: Callable[[str], np.ndarray]
    embed: Callable[[Sequence[str]], np.ndarray]
    cache: AnswerCache | None
    conversations: ConversationStore
    quote: bool = False  # quote the best source sentence above the answer (the starter model)
    speeds: ReadingSpeeds = field(default_factory=ReadingSpeeds)  # how fast each model reads a prompt here


def answer(question: str, ctx: AskContext, options: AskOptions, cancel: CancelToken | None = None) -> Iterator[AskEvent]:
    """Answer ``question`` from the collection; see the module docstring for the events."""
    try:
        yield from _answer(question.strip(), ctx, options, cancel or CancelToken())
    except ArchivistError as exc:
        yield AskFailed(exc)


def _answer(question: str, ctx: AskContext, options: AskOptions, cancel: CancelToken) -> Iterator[AskEvent]:
    started = time.perf_counter()
    model = ctx.model
    earlier: list[_EarlierTurn] = []
    if options.conversation:
        conversation = ctx.conversations.get(ctx.collection_id, options.conversation)
        earlier = [_EarlierTurn(t) for t in conversation.turns]
    next_number = 1 + max((s.number for t in earlier for s in t.sources), default=0)
    history = [t.prompt for t in earlier]
    cacheable = ctx.cache is not None and options.use_cache and not history
    scope = _scope(ctx, model, options) if cacheable else ""
    vector: np.ndarray | None = None

    def question_vector() -> np.ndarray:
        nonlocal vector
        if vector is None:
            vector = ctx.embed_query(question)
        return vector

    if cacheable:
        hit = ctx.cache.get(question, scope, question_vector)  # type: ignore[union-attr]
        if hit is not None:
            result = _from_payload(hit.payload, question, hit.kind, time.perf_counter() - started, model)
            yield Retrieved(result.sources, result.mode, result.quote)
            yield AnswerDelta(result.answer)
            if options.conversation:  # kept as if answered now: a follow-up reads it with its sources
                ctx.conversations.append(ctx.collection_id, options.conversation, _turn(
                    question, result, model, user_message(question, result.sources), result.answer, result.sources))
            yield Answered(result)
            return
    cache_seconds = time.perf_counter() - started

    answer_tokens = options.answer_tokens or answer_limit(question, options.effort, model.context_size)
    retrieval_started = time.perf_counter()
    earlier, fixed, budget = _room(question, model, options, earlier, answer_tokens)
    history = [t.prompt for t in earlier]
    mode, candidates = _candidates(question, ctx, options, [t.question for t in earlier], budget, question_vector)
    timed = None
    if mode == RETRIEVAL and options.starts_within > 0:  # the first word within the time asked for
        timed = ctx.speeds.budget(model.name, options.starts_within, fixed)
        budget = min(budget, timed.tokens)
    retrieval_seconds = time.perf_counter() - retrieval_started

    packing_started = time.perf_counter()
    earlier_sources = [s for t in earlier for s in t.sources]
    reused, sources, request = _packed(question, model, options, candidates, earlier_sources, history, budget,
                                       answer_tokens, next_number)
    packing_seconds = time.perf_counter() - packing_started
    request = dataclasses.replace(request, adapter=ctx.adapter)
    if options.cite_every_sentence and options.schema is None and (earlier_sources or sources):
        request = dataclasses.replace(request, grammar=cited_grammar([s.number for s in earlier_sources + sources]))
    shown = reused + sources
    quoted = quote(question, [*sources, *reused], ctx.embed) if ctx.quote and options.schema is None else None
    yield Retrieved(shown, mode, quoted, len(candidates), *((timed.speed, timed.seconds) if timed else (0.0, 0.0)))

    for event in model.stream(request, cancel):
        if isinstance(event, (Loading, Reading, ReasoningDelta, AnswerDelta)):
            yield event
        elif isinstance(event, Failed):
            yield AskFailed(event.error)
            return
        elif isinstance(event, Done):
            ctx.speeds.learn(model.name, event.usage, event.timings)
            timings = StageTimings(
                cache_seconds, retrieval_seconds, packing_seconds, event.timings.load, event.timings.first_token,
                event.timings.total, time.perf_counter() - started,
            )
            result = _result(question, ctx, options, event, earlier_sources + sources, shown, mode, quoted, timings)
            if cacheable and event.finish == "stop":
                ctx.cache.put(question, scope, _to_payload(result), question_vector())  # type: ignore[union-attr]
            if options.conversation:
                ctx.conversations.append(ctx.collection_id, options.conversation, _turn(
                    question, result, model, request.messages[-1].content, event.text, sources))
            yield Answered(result)


def _turn(question: str, result: AnswerResult, model: LanguageModel, sent: str, reply: str,
          sources: Sequence[Source]) -> Turn:
    """The turn a conversation keeps of an answer: ``sent`` and ``reply`` as the model read and wrote
    them, ``sources`` those first sent in it (a follow-up repeats them, and numbers new ones after)."""
    return Turn(question, result.answer, [_citation_dict(c) for c in result.citations], result.data, result.mode,
                sent=sent, reply=reply, sources=[_source_dict(s) for s in sources],
                claims=[asdict(c) for c in result.claims], quote=asdict(result.quote) if result.quote else None,
                model=model.name, stand_in=model.stand_in)


def _room(question: str, model: LanguageModel, options: AskOptions, earlier: list[_EarlierTurn],
          answer_tokens: int) -> tuple[list[_EarlierTurn], int, int]:
    """The earlier turns that stay in the prompt, the tokens of the prompt without sources
    (instructions, those turns, the question), and the tokens left for sources in the context.
    The oldest turns go first when a conversation grows past half the context."""
    while True:
        probe = build_request(question, [], [t.prompt for t in earlier], options.schema, options.effort, answer_tokens)
        fixed = model.prompt_tokens(probe)
        budget = model.context_size - answer_tokens - fixed - 16
        if not earlier or budget >= model.context_size // 2:
            return earlier, fixed, budget
        earlier = earlier[1:]


def _packed(question: str, model: LanguageModel, options: AskOptions, candidates: list[Source],
            earlier_sources: list[Source], history: list[PromptTurn], budget: int, answer_tokens: int,
            first: int) -> tuple[list[Source], list[Source], GenerationRequest]:
    """The request, and the sources in it numbered from ``first``: the candidates that fit
    ``budget``, less those the conversation already holds (not sent again: they keep their
    numbers, and come back as the first list, the retrieved sources an earlier turn sent)."""
    sent_chunks = {chunk for s in earlier_sources for chunk in s.chunk_ids}
    fresh = [c for c in candidates if not sent_chunks.issuperset(c.chunk_ids)]
    retrieved_chunks = {chunk for c in candidates for chunk in c.chunk_ids}
    reused = [s for s in earlier_sources if retrieved_chunks.intersection(s.chunk_ids)]
    sources = pack(fresh, model.count_tokens, budget, first=first)
    request = build_request(question, sources, history, options.schema, options.effort, answer_tokens)
    while sources and model.prompt_tokens(request) + answer_tokens > model.context_size:
        sources = sources[:-1]  # tokens at the joins can tip it over: never exceed the context
        request = build_request(question, sources, history, options.schema, options.effort, answer_tokens)
    return reused, sources, request


def _result(question: str, ctx: AskContext, options: AskOptions, done: Done, citable: list[Source], shown: list[Source],
            mode: str, quoted: Quote | None, timings: StageTimings) -> AnswerResult:
    """The finished answer: its citations resolved against ``citable`` (earlier turns' sources
    keep their numbers), or a structured answer's fields with theirs, and each sentence checked."""
    data, field_sources = done.data, []
    if options.schema is not None:
        data, field_sources, dropped = split(done.data, options.schema.schema, citable)
        text = json.dumps(data, ensure_ascii=False, indent=2)
        citations = list({c.number: c for f in field_sources for c in f.citations}.values())
    else:
        text, citations, dropped = resolve(done.text, citable)
    claims = check(text, citable, _similarity(ctx)) if options.schema is None else []
    model = ctx.model
    return AnswerResult(
        question, text, citations, shown, dropped, data, done.reasoning, mode, done.usage, timings,
        conversation=options.conversation, field_sources=field_sources, claims=claims, model=model.name,
        finish=done.finish, quote=quoted, stand_in=model.stand_in,
    )


# Questions that ask for more than a fact: their answers get the long limit.
_LONG_FORM = re.compile(
    r"\b(summar\w*|explain\w*|describ\w*|list\w*|compar\w*|writ\w*|draft\w*|outlin\w*|overview|steps?|"
    r"why|how (?:do|does|to|can|should)|what are)\b|总结|概述|解释|描述|列出|比较|为什么|如何|怎么",
    re.IGNORECASE,
)


def answer_limit(question: str, effort: str, context_size: int) -> int:
    """Tokens an answer may take (its reasoning included) when the caller sets none: a short
    question after a fact gets a short limit, so a model that runs on stops within seconds, not
    minutes; one that asks for a summary, a list or an explanation, or a long one, the long limit."""
    long_limit = min(4096, context_size // 4)
    if _LONG_FORM.search(question) or len(question.split()) > 25 or len(question) > 150:
        return long_limit
    return min(long_limit, {"low": 768, "medium": 1536}.get(effort, 3072))


def _similarity(ctx: AskContext) -> Similarity:
    def similarity(claim: str, sentences: Sequence[str]) -> list[float]:
        vectors = ctx.embed([claim, *sentences])
        return [float(v) for v in vectors[1:] @ vectors[0]]

    return similarity


class _EarlierTurn:
    """A stored turn as the prompt needs it: what was sent and replied, and the sources it added."""

    def __init__(self, turn: Turn) -> None:
        self.question = turn.question
        self.prompt = PromptTurn(turn.sent or turn.question, turn.reply or turn.answer)
        self.sources = [_source(s) for s in turn.sources]


def _candidates(
    question: str, ctx: AskContext, options: AskOptions, earlier_questions: Sequence[str], budget: int,
    question_vector: Callable[[], np.ndarray],
) -> tuple[str, list[Source]]:
    """Whole documents when the selected files fit the budget; retrieved passages otherwise."""
    if options.paths:
        whole = whole_document_sources([(p, ctx.document_chunks(p)) for p in options.paths])
        numbered = pack(whole, ctx.model.count_tokens, budget)
        if whole and len(numbered) == len(whole):
            return WHOLE, whole
    query = question
    vector = None
    if earlier_questions:
        # A follow-up ("and the filter?") is searched with the questions before it.
        query = " ".join([*earlier_questions[-2:], question])
    else:
        vector = question_vector()
    passages = ctx.search(query, options.passages, options.paths, vector)
    return RETRIEVAL, merge(passages)


def _scope(ctx: AskContext, model: LanguageModel, options: AskOptions) -> str:
    """What a cached answer must have been made under to be served: the collection as it is, the
    model (by name: asking its context size would start an engine process, and a cache hit starts
    nothing), the adapter, and the options that change an answer."""
    schema = json.dumps(options.schema.schema, sort_keys=True) if options.schema else ""
    paths = sorted(path_to_text(p) for p in options.paths) if options.paths else []
    parts = [ctx.fingerprint(), model.name, str(ctx.adapter or ""), options.effort, str(options.passages),
             hashlib.sha256(schema.encode()).hexdigest()[:16], json.dumps(paths)]
    if options.cite_every_sentence:  # another way of answering: not the same answer
        parts.append("cited-grammar")
    return "|".join(parts)


def _citation_dict(c: Citation) -> dict[str, Any]:
    data = asdict(c)
    data["path"] = path_to_text(c.path)
    return data


def _source_dict(s: Source) -> dict[str, Any]:
    data = asdict(s)
    data["path"] = path_to_text(s.path)
    return data


def _to_payload(result: AnswerResult) -> dict[str, Any]:
    return {
        "answer": result.answer,
        "citations": [_citation_dict(c) for c in result.citations],
        "sources": [_source_dict(s) for s in result.sources],
        "dropped": result.dropped_citations,
        "data": result.data,
        "reasoning": result.reasoning,
        "mode": result.mode,
        "usage": asdict(result.usage),
        "field_sources": [
            {"field": f.field, "supported": f.supported, "citations": [_citation_dict(c) for c in f.citations]}
            for f in result.field_sources
        ],
        "claims": [asdict(c) for c in result.claims],
        "quote": asdict(result.quote) if result.quote else None,
    }


def _from_payload(payload: dict[str, Any], question: str, kind: str, seconds: float,
                  model: LanguageModel) -> AnswerResult:
    citations = [citation_from_dict(c) for c in payload["citations"]]
    field_sources = [FieldSource(f["field"], [citation_from_dict(c) for c in f["citations"]], f["supported"])
                     for f in payload.get("field_sources", [])]
    sources = [_source(s) for s in payload["sources"]]
    return AnswerResult(
        question, payload["answer"], citations, sources, payload["dropped"], payload["data"],
        payload["reasoning"] if kind == "exact" else "",  # a similar question's reasoning may quote its wording
        payload["mode"], Usage(**payload["usage"]), StageTimings(cache=seconds, total=seconds), cached=kind,
        field_sources=field_sources,
        claims=[claim_from_dict(c) for c in payload.get("claims", [])], model=model.name, stand_in=model.stand_in,
        quote=Quote(**payload["quote"]) if payload.get("quote") else None,
    )


def _source(data: dict[str, Any]) -> Source:
    box = data.get("box")
    return Source(**{**data, "path": text_to_path(data["path"]), "chunk_ids": tuple(data["chunk_ids"]),
                     "box": tuple(box) if box else None})

