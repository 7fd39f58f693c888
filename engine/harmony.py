"""gpt-oss's harmony format: conversations rendered to token ids, completions parsed by channel.

openai-harmony needs the ``o200k_base`` vocabulary; it is shipped in ``resources/vocab``,
its sha256 checked, and ``TIKTOKEN_ENCODINGS_BASE`` pointed at it so nothing is fetched.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.interface import GenerationRequest

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

VOCAB_FILE = "o200k_base.tiktoken"
VOCAB_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

# Token ids of harmony's special tokens in o200k_harmony.
END = 200007
RETURN = 200002
CALL = 200012
ENDOFTEXT = 199999
ANALYSIS_HEADER = "<|channel|>analysis<|message|>"
# Once the model has reasoned, a structured answer is opened by us as JSON on the final channel.
FINAL_JSON_HEADER = "<|start|>assistant<|channel|>final <|constrain|>json<|message|>"
# And an answer under a grammar (each sentence with its citation), as plain text on the final channel.
FINAL_HEADER = "<|start|>assistant<|channel|>final<|message|>"
REASONING_BUDGET = {"low": 1024, "medium": 4096, "high": 16384}


class VocabularyError(EngineError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The gpt-oss vocabulary file is unusable: {reason}. Reinstall Archivist.")


def vocabulary_dir() -> Path:
    """The folder holding the shipped ``o200k_base.tiktoken``."""
    from resources import resource_path

    return resource_path("vocab")


def verify_vocabulary(folder: Path | None = None) -> str:
    """Check the shipped vocabulary's sha256; return it, or raise ``VocabularyError``."""
    file = (folder or vocabulary_dir()) / VOCAB_FILE
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as exc:
        raise VocabularyError(f"cannot read {file} ({exc.strerror or exc})") from exc
    if digest != VOCAB_SHA256:
        raise VocabularyError(f"{file.name} has sha256 {digest}, expected {VOCAB_SHA256}")
    return digest


@functools.cache
def encoding() -> HarmonyEncoding:
    """The harmony encoding for gpt-oss, loaded offline from the verified vocabulary."""
    verify_vocabulary()
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(vocabulary_dir())
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    try:
        return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    except Exception as exc:  # noqa: BLE001 - the Rust side raises plain exceptions
        raise VocabularyError(str(exc)) from exc


def developer_instructions(request: GenerationRequest) -> str:
    """The developer message: the instructions, plus harmony's "Response Formats" section."""
    if request.schema is None:
        return request.instructions
    description = f"// {request.schema_description}\n" if request.schema_description else ""
    return (
        f"{request.instructions}\n\n# Response Formats\n\n## {request.schema_name}\n\n"
        f"{description}{json.dumps(request.schema, ensure_ascii=False, separators=(',', ':'))}"
    )


def render(request: GenerationRequest, today: dt.date | None = None) -> list[int]:
    """The prompt's token ids, ending where the assistant's next message starts.

    Earlier assistant turns go in as final-channel messages only: harmony drops earlier
    reasoning, and so do we.
    """
    from openai_harmony import (
        Conversation,
        DeveloperContent,
        Message,
        ReasoningEffort,
        Role,
        SystemContent,
    )

    effort = {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM, "high": ReasoningEffort.HIGH}
    system = SystemContent.new().with_reasoning_effort(effort[request.reasoning_effort])
    system = system.with_conversation_start_date((today or dt.date.today()).isoformat())
    messages = [
        Message.from_role_and_content(Role.SYSTEM, system),
        Message.from_role_and_content(Role.DEVELOPER, DeveloperContent.new().with_instructions(developer_instructions(request))),
    ]
    for turn in request.messages:
        if turn.role == "user":
            messages.append(Message.from_role_and_content(Role.USER, turn.content))
        else:
            messages.append(Message.from_role_and_content(Role.ASSISTANT, turn.content).with_channel("final"))
    return list(encoding().render_conversation_for_completion(Conversation.from_messages(messages), Role.ASSISTANT))


def encode(text: str) -> list[int]:
    """Plain text to o200k_harmony token ids (special tokens allowed)."""
    return list(encoding().encode(text, allowed_special="all"))


def count(text: str) -> int:
    """How many gpt-oss tokens ``text`` takes, read as plain text whatever it holds (``<|end|>``)."""
    return len(encoding().encode(text, allowed_special=set(), disallowed_special=()))


@dataclass
class ChannelText:
    """A piece of completion text and the channel it belongs to."""

    channel: str
    text: str


class CompletionParser:
    """Harmony's streaming parser, reduced to "which channel did this token's text go to"."""

    def __init__(self) -> None:
        from openai_harmony import Role, StreamableParser

        self._parser = StreamableParser(encoding(), role=Role.ASSISTANT, strict=False)

    def feed(self, token: int) -> ChannelText | None:
        """Process one generated token; the text it added and its channel, if any."""
        self._parser.process(token)
        delta = self._parser.last_content_delta
        if not delta:
            return None
        return ChannelText(self._parser.current_channel or "final", delta)

    @property
    def channel(self) -> str | None:
        """The channel of the message being written now."""
        return self._parser.current_channel

    def messages(self) -> Sequence[Any]:
        """The messages completed so far."""
        return self._parser.messages
