"""A model on an inference server that speaks OpenAI's chat API (vLLM, llama.cpp's server).

The team alternative to the embedded engine: the same ``LanguageModel`` interface, with
the generation done on a shared GPU server. Reasoning arrives as ``reasoning_content``
(or ``reasoning``) where the server splits it out; structured output goes through
``response_format`` with the JSON schema and is validated here again.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from engine import harmony, schema
from engine.cancel import CancelToken
from engine.errors import ContextTooLong, GenerationCancelled, RemoteError
from engine.interface import (
    AnswerDelta,
    Done,
    EngineEvent,
    GenerationRequest,
    ModelState,
    ModelStatus,
    ReasoningDelta,
    Timings,
    Usage,
    errors_as_failed,
    looping,
)
from engine.status import StateReporter

log = logging.getLogger(__name__)

# What a server that does not say its context length is assumed to hold.
DEFAULT_CONTEXT = 8192
# Tokens a chat template adds around each message (role markers, separators).
_PER_MESSAGE = 4


class RemoteEngine(StateReporter):
    """gpt-oss (or any chat model) behind an OpenAI-compatible endpoint."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 300.0, context: int = 0) -> None:
        from openai import OpenAI

        super().__init__(ModelState.READY)
        self.base_url = base_url.rstrip("/")
        self._model = model
        # Retries are ours to decide: a 429 or a dropped connection is reported, not hidden.
        self._client = OpenAI(base_url=self.base_url, api_key=api_key or "none", timeout=timeout, max_retries=0)
        self._context = context
        self._json_object_fallback = False  # llama-cpp-python's server knows only "json_object"
        self._last_sent = ""  # the last request's messages, for servers that do not say what their cache held

    @property
    def name(self) -> str:
        return self._model or "server default"

    @property
    def stand_in(self) -> bool:
        return False  # a team's inference server runs a model chosen to be trusted

    @property
    def context_size(self) -> int:
        if not self._context:
            self._context = self._ask_context() or DEFAULT_CONTEXT
        return self._context

    def count_tokens(self, text: str) -> int:
        return harmony.count(text)

    def prompt_tokens(self, request: GenerationRequest) -> int:
        return sum(self.count_tokens(m["content"]) + _PER_MESSAGE for m in _messages(request)) + _PER_MESSAGE

    def status(self) -> ModelStatus:
        return ModelStatus(self._state, 0, self.name, self._context, f"on {self.base_url}")

    def unload(self) -> None:
        """Nothing to free here: the server owns the weights."""

    def close(self) -> None:
        """Close the HTTP connections to the server."""
        self._client.close()

    def stream(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Iterator[EngineEvent]:
        return errors_as_failed(self._stream(request, cancel or CancelToken()))

    # -- generation -----------------------------------------------------------------------

    def _stream(self, request: GenerationRequest, cancel: CancelToken) -> Iterator[EngineEvent]:
        if request.schema is not None:
            schema.check(request.schema)
        prompt = self.prompt_tokens(request)
        if prompt + request.max_tokens > self.context_size:
            raise ContextTooLong(prompt + request.max_tokens, self.context_size)
        sent = "\x00".join(f"{m['role']}\x01{m['content']}" for m in _messages(request))
        shared = len(os.path.commonprefix([self._last_sent, sent])) / max(1, len(sent))
        self._last_sent = sent
        started = time.perf_counter()
        first_token = 0.0
        answer: list[str] = []
        reasoning: list[str] = []
        usage: Any = None
        finish = ""
        recent, unchecked = "", 0  # the last text written, watched for a loop
        self._set_state(ModelState.GENERATING)
        try:
            stream = self._open_cancellable(request, cancel)
            forget = cancel.watch(stream.close)  # unblocks a read waiting on the server
            try:
                for chunk in stream:
                    if cancel.cancelled:
                        raise GenerationCancelled()
                    usage = chunk.usage or usage
                    for choice in chunk.choices:
                        text = choice.delta.content or ""
                        thought = _reasoning(choice.delta)
                        if (text or thought) and not first_token:
                            first_token = time.perf_counter() - started
                        if thought:
                            reasoning.append(thought)
                            yield ReasoningDelta(thought)
                        if text:
                            answer.append(text)
                            yield AnswerDelta(text)
                        if choice.finish_reason:
                            finish = "length" if choice.finish_reason == "length" else "stop"
                        recent, unchecked = (recent + thought + text)[-1200:], unchecked + len(thought + text)
                    if unchecked >= 64:
                        unchecked = 0
                        if looping(recent):  # a runaway answer: stopped (the server with it), and said so
                            finish = "repetition"
                            break
            except Exception as exc:
                if cancel.cancelled:
                    raise GenerationCancelled() from exc
                raise self._explain(exc) from exc
            finally:
                forget()
                stream.close()
            if cancel.cancelled:
                raise GenerationCancelled()
            if not finish:  # llama-cpp-python's server drops a stream when another request comes
                raise RemoteError(f"the inference server at {self.base_url} ended the answer before it was finished; "
                                  "it may be overloaded or restarting")
        finally:
            self._set_state(ModelState.READY)
        text = "".join(answer)
        data = schema.finished(request.schema, finish, request.max_tokens, text)
        total = time.perf_counter() - started
        completion = usage.completion_tokens if usage else self.count_tokens(text + "".join(reasoning))
        read = usage.prompt_tokens if usage else prompt
        cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None)
        if not isinstance(cached, int):
            # Not said (llama-cpp-python's server; vLLM without --enable-prompt-tokens-details): at most
            # the start this prompt shares with the one before, which a server's cache may hold. Taken
            # as held, the reading speed learnt from this answer errs slow, never fast: the next prompt
            # is sized to start in time rather than outgrow it.
            cached = round(read * shared)
        yield Done(
            text=text,
            reasoning="".join(reasoning),
            usage=Usage(prompt=read, cached=cached, completion=completion),
            timings=Timings(0.0, first_token, total, max(0, completion - 1) / max(1e-9, total - first_token)),
            data=data,
            finish=finish,  # type: ignore[arg-type]
        )

    def _open_cancellable(self, request: GenerationRequest, cancel: CancelToken) -> Any:
        """``_open`` on a helper thread, so that Stop works while the server has not yet
        answered (a long prompt, a queue); a stream that arrives after Stop is closed."""
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def call() -> None:
            try:
                outcome["stream"] = self._open(request, cancel)
                if cancel.cancelled:
                    outcome["stream"].close()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                outcome["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=call, name="inference-request", daemon=True).start()
        forget = cancel.watch(finished.set)
        finished.wait()
        forget()
        if cancel.cancelled:
            if "stream" in outcome:
                outcome["stream"].close()
            raise GenerationCancelled()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["stream"]

    def _open(self, request: GenerationRequest, cancel: CancelToken) -> Any:
        """Start the streamed completion (a request the server rejects is explained, not raised raw)."""
        import openai

        options: dict[str, Any] = {"stream": True, "max_tokens": request.max_tokens, "stream_options": {"include_usage": True}}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.seed is not None:
            options["seed"] = request.seed
        extra: dict[str, Any] = {"reasoning_effort": request.reasoning_effort}  # vLLM's gpt-oss reads it; others ignore it
        if request.grammar is not None and request.schema is None:
            extra["grammar"] = request.grammar  # llama.cpp's server
            extra["guided_grammar"] = request.grammar  # vLLM's
        while True:
            if request.schema is not None:
                options["response_format"] = self._response_format(request)
            try:
                return self._client.chat.completions.create(
                    model=self._model, messages=_messages(request), extra_body=extra, **options  # type: ignore[arg-type]
                )
            except openai.APIStatusError as exc:
                if request.schema is not None and not self._json_object_fallback and "json_schema" in str(exc):
                    log.info("%s does not take json_schema; asking with json_object and the schema", self.base_url)
                    self._json_object_fallback = True
                    continue
                raise self._explain(exc) from exc
            except openai.OpenAIError as exc:
                if cancel.cancelled:
                    raise GenerationCancelled() from exc
                raise self._explain(exc) from exc

    def _response_format(self, request: GenerationRequest) -> dict[str, Any]:
        if self._json_object_fallback:
            return {"type": "json_object", "schema": request.schema}
        shape: dict[str, Any] = {"name": request.schema_name, "schema": request.schema, "strict": True}
        if request.schema_description:
            shape["description"] = request.schema_description
        return {"type": "json_schema", "json_schema": shape}

    def _explain(self, exc: Exception) -> RemoteError:
        """The server's failure as a sentence a person can act on."""
        import openai

        where = self.base_url
        if isinstance(exc, openai.APITimeoutError):
            return RemoteError(f"the inference server at {where} did not answer in time; it may be overloaded")
        if isinstance(exc, openai.APIConnectionError):
            return RemoteError(f"could not reach the inference server at {where}; check the address and that it runs")
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return RemoteError(f"the inference server at {where} refused the API key ({exc.status_code}); "
                               "check the key in Settings › Team", exc.status_code)
        if isinstance(exc, openai.RateLimitError):
            after = exc.response.headers.get("retry-after")
            wait = f"; it asks to wait {after} s" if after else ""
            return RemoteError(f"the inference server at {where} is busy (429){wait}; try again shortly", 429)
        if isinstance(exc, openai.NotFoundError):
            return RemoteError(f"the inference server at {where} does not serve the model {self.name!r} (404)", 404)
        if isinstance(exc, openai.APIStatusError):
            return RemoteError(f"the inference server at {where} failed ({exc.status_code}): {_message(exc)}", exc.status_code)
        return RemoteError(f"the inference server at {where} sent something unexpected: {exc}")

    def _ask_context(self) -> int:
        """The context length the server reports for the model (vLLM, llama.cpp), or 0."""
        try:
            models = self._client.with_options(timeout=5.0).models.list().data
        except Exception as exc:  # noqa: BLE001 - the server is asked again when generation starts
            log.info("could not ask %s for its context length: %s", self.base_url, exc)
            return 0
        for model in models:
            if self._model and model.id != self._model and len(models) > 1:
                continue
            extra = model.model_extra or {}
            for value in (extra.get("max_model_len"), (extra.get("meta") or {}).get("n_ctx_train")):
                if isinstance(value, int) and value > 0:
                    return value
        return 0


def _messages(request: GenerationRequest) -> list[dict[str, str]]:
    """The request as chat messages: the instructions first, then the turns, each defused."""
    return [{"role": "system", "content": defused(harmony.developer_instructions(request))}] + [
        {"role": m.role, "content": defused(m.content)} for m in request.messages
    ]


# Text that a server would read as a control token of some model family, since servers tokenize the
# rendered prompt with special tokens on: harmony, ChatML and Llama 3 (<|end|>, <|im_end|>,
# <|eot_id|>), DeepSeek (<｜…｜>), Llama 2 and Mistral (<s>, </s>, [INST]), Gemma (<start_of_turn>),
# Qwen (<think>, <tool_call>).
_MARKERS = re.compile(
    r"<(?=[|｜])|<(?=/?(?:s|bos|eos|pad|unk|think|start_of_turn|end_of_turn|tool_call|tool_response)>)"
    r"|\[(?=/?(?:INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_RESULTS)\])",
    re.IGNORECASE,
)


def defused(text: str) -> str:
    """``text`` with a zero-width space after the opening of anything a tokenizer could take for a
    control token, so a document read by a remote server stays text (it reads the same to a person)."""
    return _MARKERS.sub(lambda match: match.group(0) + "\u200b", text)


def _reasoning(delta: Any) -> str:
    extra = getattr(delta, "model_extra", None) or {}
    return extra.get("reasoning_content") or extra.get("reasoning") or ""


def _message(exc: Any) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    text = str(body.get("message") or exc.message)
    return text.splitlines()[0][:200] if text else "no details"
