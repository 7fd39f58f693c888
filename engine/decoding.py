"""One answer from a loaded llama.cpp model, token by token.

``Generation`` samples the tokens (under a grammar where the request sets one), stops at an
end-of-generation token, the token budget or the cancel token, and sorts the text into
reasoning and answer: gpt-oss's through its harmony channels, any other model's as answer.
It ends with the ``Done`` that carries usage and timings. Loading, the KV cache's owner and
the model's state stay with ``LlamaEngine`` (engine/llama.py).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal

from engine import harmony, schema
from engine.cancel import CancelToken
from engine.errors import GenerationCancelled, GenerationFailed
from engine.interface import (
    AnswerDelta,
    Done,
    EngineEvent,
    GenerationRequest,
    Reading,
    ReasoningDelta,
    Timings,
    Usage,
    looping,
)
from engine.prompt_formats import TextDecoder

if TYPE_CHECKING:
    from llama_cpp import Llama


def grammar_for(request: GenerationRequest) -> str | None:
    """The GBNF the answer must follow: the request's JSON schema (checked first) as a grammar, or its grammar."""
    if request.schema is None:
        return request.grammar
    schema.check(request.schema)
    return schema.grammar_text(request.schema)


# Tokens of the prompt read between two reports of how far the reading got.
_READ_SLICE = 256


class Generation:
    """One generation: drives llama.cpp token by token and sorts text into reasoning and answer."""

    def __init__(
        self, llm: Llama, eog: frozenset[int], request: GenerationRequest, cancel: CancelToken, started: float
    ) -> None:
        self.llm = llm
        self.eog = eog
        self.request = request
        self.cancel = cancel
        self.started = started  # when decoding began (after any load): first_token counts from here
        self.first_token = 0.0
        self.generated = 0
        self.reasoning_tokens = 0
        self.cached = 0
        self.finish: Literal["stop", "length", "repetition"] = "stop"
        self.recent: list[int] = []  # the last tokens sampled, watched for a loop
        self.answer: list[str] = []
        self.reasoning: list[str] = []
        self.harmony_defaults = False

    @property
    def answer_text(self) -> str:
        return "".join(self.answer)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    def events(self, prompt: list[int], grammar: str | None, harmony_model: bool) -> Iterator[EngineEvent]:
        """The answer to ``prompt`` as reasoning and answer deltas (``done`` gives the end)."""
        if self.request.seed is not None:
            self.llm.set_seed(self.request.seed)
        yield from self._read(prompt)
        if harmony_model:
            yield from self.harmony(prompt, grammar)
        else:
            yield from self.plain(prompt, grammar)

    def done(self, prompt_tokens: int, load_seconds: float) -> Done:
        """The finished answer, with usage and timings; a structured answer is validated against its schema."""
        data = schema.finished(self.request.schema, self.finish, self.request.max_tokens, self.answer_text)
        decoding = time.perf_counter() - self.started
        speed = max(0, self.generated - 1) / max(1e-9, decoding - self.first_token)
        return Done(
            text=self.answer_text,
            reasoning=self.reasoning_text,
            usage=Usage(prompt=prompt_tokens, cached=self.cached, completion=self.generated,
                        reasoning=self.reasoning_tokens),
            timings=Timings(load_seconds, self.first_token, load_seconds + decoding, speed),
            data=data,
            finish=self.finish,
        )

    def _read(self, prompt: list[int]) -> Iterator[Reading]:
        """Read the prompt a slice at a time, saying how far it got; llama.cpp's ``generate`` then
        finds all but its last token in the cache. What the cache holds from the last prompt is
        kept, and a short prompt is left to ``generate`` alone."""
        held = _common_prefix(list(self.llm._input_ids[: self.llm.n_tokens]), prompt[:-1])
        self.cached = held
        if len(prompt) - 1 - held < 2 * _READ_SLICE:
            return
        if held and not self._can_keep(held):
            held = self.cached = 0  # a cache that cannot be cut there: read it all
        unread = prompt[held:-1]
        self.llm.n_tokens = held  # ``eval`` drops what the cache holds past this
        with self._llama_errors():
            for start in range(0, len(unread), _READ_SLICE):
                yield Reading(held + start, len(prompt))
                self.llm.eval(unread[start:start + _READ_SLICE])
                if self.cancel.cancelled:
                    raise GenerationCancelled()
        yield Reading(len(prompt) - 1, len(prompt))

    def _can_keep(self, held: int) -> bool:
        """Cut the cache after its first ``held`` tokens, if it still holds all that the next
        token attends to (a sliding-window cache that is not full-size forgets early positions)."""
        import llama_cpp

        memory = llama_cpp.llama_get_memory(self.llm._ctx.ctx)
        window = llama_cpp.llama_model_n_swa(self.llm.model)
        if llama_cpp.llama_memory_seq_pos_min(memory, 0) > max(0, held - window):
            return False
        return bool(self.llm._ctx.kv_cache_seq_rm(-1, held, -1))

    def _tokens(self, prompt: list[int], budget: int, grammar_text: str | None, stops: frozenset[int]) -> Iterator[int]:
        """Sample up to ``budget`` tokens after ``prompt``, stopping on ``stops`` and on cancel."""
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_string(grammar_text, verbose=False) if grammar_text else None
        sampled = 0
        settings = sampling(self.harmony_defaults, self.request.temperature)
        with self._llama_errors():
            for token in self.llm.generate(prompt, grammar=grammar, **settings):
                if self.cancel.cancelled:
                    raise GenerationCancelled()
                if not self.first_token:
                    self.first_token = time.perf_counter() - self.started
                if token in stops:
                    return
                self.generated += 1
                sampled += 1
                yield token
                if sampled >= budget:
                    self.finish = "length"
                    return
                self.recent = self.recent[-255:] + [token]
                if sampled % 16 == 0 and looping(self._recent_text()):  # a runaway answer: stopped, and said so
                    self.finish = "repetition"
                    return

    @contextlib.contextmanager
    def _llama_errors(self) -> Iterator[None]:
        """llama.cpp's errors as ours: cancelled if it aborted at our request, failed otherwise."""
        try:
            yield
        except (RuntimeError, ValueError) as exc:
            if self.cancel.cancelled:
                raise GenerationCancelled() from exc
            raise GenerationFailed(str(exc)) from exc

    def _recent_text(self) -> str:
        return self.llm.detokenize(self.recent, special=False).decode("utf-8", errors="ignore")

    def _answer(self, tokens: Iterable[int]) -> Iterator[EngineEvent]:
        """Tokens that are all answer, as text (a character split across tokens waits for its last)."""
        decoder = TextDecoder(lambda ids: self.llm.detokenize(ids, special=False))
        for token in tokens:
            if text := decoder.feed(token):
                self.answer.append(text)
                yield AnswerDelta(text)
        if tail := decoder.flush():
            self.answer.append(tail)
            yield AnswerDelta(tail)

    def plain(self, prompt: list[int], grammar_text: str | None) -> Iterator[EngineEvent]:
        """A model without channels: every token is the answer."""
        yield from self._answer(self._tokens(prompt, self.request.max_tokens, grammar_text, self.eog))

    def harmony(self, prompt: list[int], grammar_text: str | None) -> Iterator[EngineEvent]:
        """gpt-oss: reasoning on the analysis channel, the answer on the final one."""
        self.harmony_defaults = True
        if grammar_text is None:
            yield from self._harmony_free(prompt)
        else:
            header = harmony.FINAL_JSON_HEADER if self.request.schema is not None else harmony.FINAL_HEADER
            yield from self._harmony_constrained(prompt, grammar_text, header)

    def _harmony_free(self, prompt: list[int]) -> Iterator[EngineEvent]:
        # gpt-oss always reasons first; opening the analysis channel ourselves keeps the parser
        # in message content from the first sampled token.
        opening = harmony.encode(harmony.ANALYSIS_HEADER)
        tokens = self._tokens(prompt + opening, self.request.max_tokens, None, self.eog)
        yield from self.sort_channels(itertools.chain(opening, tokens), skip=len(opening))

    def sort_channels(self, tokens: Iterable[int], skip: int = 0) -> Iterator[EngineEvent]:
        """Harmony completion tokens to events: analysis and commentary are reasoning, final is the answer.

        The first ``skip`` tokens are ours (a header we wrote), parsed but not counted.
        """
        parser = harmony.CompletionParser()
        for index, token in enumerate(tokens):
            piece = parser.feed(token)
            if index < skip:
                continue
            if piece is None:
                continue
            if piece.channel == "final":
                self.answer.append(piece.text)
                yield AnswerDelta(piece.text)
            else:
                self.reasoning_tokens += 1
                self.reasoning.append(piece.text)
                yield ReasoningDelta(piece.text)

    def _harmony_constrained(self, prompt: list[int], grammar_text: str, header: str) -> Iterator[EngineEvent]:
        """Reason freely on the analysis channel, then write the final channel (opened by
        ``header``: as JSON, or as text) under the grammar."""
        opening = harmony.encode(harmony.ANALYSIS_HEADER)
        budget = min(harmony.REASONING_BUDGET[self.request.reasoning_effort], self.request.max_tokens // 2)
        ends = self.eog | {harmony.END} | _special_ids()
        decoder = TextDecoder(lambda ids: self.llm.detokenize(ids, special=False))
        thought: list[int] = []
        for token in self._tokens(prompt + opening, budget, None, ends):
            thought.append(token)
            self.reasoning_tokens += 1
            if text := decoder.feed(token):
                self.reasoning.append(text)
                yield ReasoningDelta(text)
        self.finish = "stop"
        answer_prompt = prompt + opening + thought + [harmony.END] + harmony.encode(header)
        remaining = self.request.max_tokens - len(thought)
        yield from self._answer(self._tokens(answer_prompt, remaining, grammar_text, self.eog))


def sampling(harmony_model: bool, temperature: float | None) -> dict[str, float | int]:
    """Sampler settings: gpt-oss's recommended ones (temperature 1, no truncation, no penalties), or common defaults."""
    if harmony_model:
        return {"temp": 1.0 if temperature is None else temperature, "top_p": 1.0, "top_k": 0, "min_p": 0.0}
    # Small models loop ("4 days. 4 days. ..."); a mild repetition penalty keeps them moving.
    return {"temp": 0.7 if temperature is None else temperature, "top_p": 0.95, "top_k": 40, "min_p": 0.0,
            "repeat_penalty": 1.1}


def _special_ids() -> frozenset[int]:
    """Every harmony control token: any of them ends the reasoning we let the model write."""
    return frozenset(range(199998, 201088))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
