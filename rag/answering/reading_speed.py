"""How fast each model reads a prompt on this machine, learnt from its own answers.

The time to an answer's first word is mostly the model reading its prompt: on a laptop's CPU
gpt-oss-20b reads a few dozen tokens a second, a GPU thousands. So the sources packed into a
prompt fit a time (``AskOptions.starts_within``), not only the context window: the tokens a
model can read in that time, at the speed its last answers here were read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from engine import Timings, Usage

log = logging.getLogger(__name__)

# Before a model's first answer here: a pace a laptop's CPU reaches with a small model; the
# first answer measures the real one.
UNMEASURED = 60.0
# Whatever the time, the prompt holds the best sources up to this many tokens (about two
# passages): an answer needs something to be drawn from.
FLOOR = 400
READ_SHARE = 0.85  # of the time, for reading: the rest goes to the search and to the first token itself
_WEIGHT = 0.5  # of a new measurement against what was known: the pace follows a changed machine within a few answers


@dataclass(frozen=True, slots=True)
class Budget:
    """The tokens of sources a prompt may hold to start answering within ``seconds``."""

    tokens: int
    seconds: float
    speed: float  # tokens a second the model reads here (UNMEASURED before its first answer)
    measured: bool


class ReadingSpeeds:
    """Tokens a second each model reads a prompt at, by model name, kept in ``path`` (JSON)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._speeds: dict[str, float] = {}
        self._reused: dict[str, int] = {}  # prompt tokens the model's cache held last time (the fixed prefix)
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                self._speeds = {str(k): float(v) for k, v in loaded.items() if float(v) > 0}
            except FileNotFoundError:
                pass
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                log.warning("reading speeds in %s not read (%s); they are measured again", path, exc)

    def speed(self, model: str) -> float | None:
        with self._lock:
            return self._speeds.get(model)

    def budget(self, model: str, seconds: float, fixed_tokens: int) -> Budget:
        """The source tokens a prompt of ``model`` may hold to start within ``seconds``: what it
        reads in that time, less the part of the prompt without sources (instructions, schema,
        earlier turns, the question) its cache does not already hold."""
        with self._lock:
            measured = self._speeds.get(model)
            reused = self._reused.get(model, 0)
        speed = measured or UNMEASURED
        unread_prefix = max(0, fixed_tokens - reused)
        tokens = int(speed * seconds * READ_SHARE) - unread_prefix
        return Budget(max(FLOOR, tokens), seconds, speed, measured is not None)

    def learn(self, model: str, usage: Usage, timings: Timings) -> None:
        """Take the pace of one answer: the prompt tokens read (those the cache held cost nothing)
        over the seconds until the first token."""
        read = usage.prompt - usage.cached
        with self._lock:
            self._reused[model] = usage.cached
            if read < 64 or timings.first_token < 0.05:  # too little to time: a cache held nearly all of it
                return
            pace = read / timings.first_token
            known = self._speeds.get(model)
            self._speeds[model] = pace if known is None else (1 - _WEIGHT) * known + _WEIGHT * pace
            speeds = dict(self._speeds)
        self._write(speeds)

    def _write(self, speeds: dict[str, float]) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(speeds, indent=1, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:  # a full disk costs the measurement, never the answer
            log.warning("reading speeds not saved to %s (%s)", self.path, exc)
