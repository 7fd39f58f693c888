"""The transcript's own links, written and read in this one place so that the two cannot drift apart.
They are the only links the transcript holds: nothing the model writes becomes one.

``cite:TURN/N`` is source N of turn TURN (a click opens it); ``check:TURN/K`` is the K-th claim of
turn TURN, a sentence its source does not bear out (it is underlined, and a click opens the
source that holds it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

LinkKind = Literal["cite", "check"]
CITE: LinkKind = "cite"
CHECK: LinkKind = "check"

_LINK = re.compile(r"(cite|check):(\d+)/(\d+)")


@dataclass(frozen=True)
class TranscriptLink:
    """Where a link of the transcript leads: a source (``cite``) or a claim (``check``) of one turn."""

    kind: LinkKind
    turn: int
    number: int

    @property
    def href(self) -> str:
        """The link's address, as the transcript's document holds it."""
        return link_to(self.kind, self.turn, self.number)


def link_to(kind: LinkKind, turn: int, number: int) -> str:
    """The address of source (``cite``) or claim (``check``) ``number`` of turn ``turn``."""
    return f"{kind}:{turn}/{number}"


def parse_link(href: str) -> TranscriptLink | None:
    """What ``href`` leads to, or None when it is not one of the transcript's links."""
    match = _LINK.fullmatch(href)
    if match is None:
        return None
    # The pattern admits only the two kinds.
    return TranscriptLink(match[1], int(match[2]), int(match[3]))  # type: ignore[arg-type]
