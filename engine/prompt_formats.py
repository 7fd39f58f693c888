"""How a request becomes prompt tokens, and generated tokens become text, per model family.

gpt-oss speaks harmony (``engine.harmony``): reasoning and answer arrive on separate
channels. Every other GGUF is spoken to through its own chat template (ChatML when the
file carries none), and everything it writes is the answer.

Only a template's own markers become control tokens. Text from documents, questions and
earlier answers is tokenized as plain text, whatever it holds (``<|im_end|>``, ``<|start|>``):
a document cannot end a message or open a new one.
"""

from __future__ import annotations

import codecs
import json
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from engine import harmony
from engine.gguf_info import GGUFInfo
from engine.interface import GenerationRequest

if TYPE_CHECKING:
    from llama_cpp import Llama

_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


_PLACEHOLDER = "\ue000archivist-message-{}\ue001"  # what the template sees instead of each message
_PLACEHOLDERS = re.compile("(\ue000archivist-message-\\d+\ue001)")


class TextDecoder:
    """Token ids to text, one token at a time, never splitting a UTF-8 character."""

    def __init__(self, detokenize: Callable[[list[int]], bytes]) -> None:
        self._detokenize = detokenize
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        return self._decoder.decode(self._detokenize([token]))

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class PromptFormat(Protocol):
    """One model family's way of writing prompts and reading completions."""

    harmony: bool

    def render(self, request: GenerationRequest) -> list[int]: ...

    def count(self, text: str) -> int: ...


class HarmonyFormat:
    """gpt-oss: harmony tokens in, channels out."""

    harmony = True

    def render(self, request: GenerationRequest) -> list[int]:
        return harmony.render(request)

    def count(self, text: str) -> int:
        return harmony.count(text)


class ChatTemplateFormat:
    """Any other model: its chat template, tokenized by its own vocabulary."""

    harmony = False

    def __init__(self, info: GGUFInfo, vocabulary: Callable[[], Llama]) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._info = info
        self._vocabulary = vocabulary
        self._lock = threading.Lock()
        self._template = info.chat_template or _CHATML
        self._formatter_type = Jinja2ChatFormatter
        self._formatter = None

    def _format(self) -> Callable[..., object]:
        with self._lock:
            if self._formatter is None:
                vocab = self._vocabulary()
                bos = vocab._model.token_get_text(vocab.token_bos()) if vocab.token_bos() >= 0 else ""
                eos = vocab._model.token_get_text(vocab.token_eos()) if vocab.token_eos() >= 0 else ""
                self._formatter = self._formatter_type(self._template, eos_token=eos, bos_token=bos)
            return self._formatter

    def system_text(self, request: GenerationRequest) -> str:
        if request.schema is None:
            return request.instructions
        schema = json.dumps(request.schema, ensure_ascii=False)
        return f"{request.instructions}\n\nAnswer with one JSON object that matches this JSON Schema:\n{schema}"

    def render(self, request: GenerationRequest) -> list[int]:
        # The template is rendered around placeholders; its own text is tokenized with special
        # tokens, each message's text without, so message text never turns into markers.
        texts = [self.system_text(request), *(m.content for m in request.messages)]
        roles = ["system", *(m.role for m in request.messages)]
        marks = {_PLACEHOLDER.format(i): text for i, text in enumerate(texts)}
        messages = [{"role": role, "content": mark} for role, mark in zip(roles, marks)]
        prompt = self._format()(messages=messages).prompt  # type: ignore[attr-defined]
        vocab = self._vocabulary()
        tokens: list[int] = []
        for piece in _PLACEHOLDERS.split(prompt):
            if piece in marks:
                tokens += vocab.tokenize(marks[piece].encode("utf-8"), add_bos=False, special=False)
            elif piece:
                tokens += vocab.tokenize(piece.encode("utf-8"), add_bos=False, special=True)
        return tokens

    def count(self, text: str) -> int:
        return len(self._vocabulary().tokenize(text.encode("utf-8"), add_bos=False, special=False))
