"""A model's state and the listeners told of each change, written once for every engine.

The status bar and the knowledge base listen; a listener runs on whatever thread changed
the state, so one that fails is logged and the others still hear: it never breaks the model.
"""

from __future__ import annotations

import logging

from engine.interface import ModelState, ModelStatus, StateListener

log = logging.getLogger(__name__)


class StateReporter:
    """Holds a model's ``ModelState`` and reports its status to every listener when it changes.

    An engine subclasses it and supplies ``status()``, the full picture that listeners receive.
    """

    def __init__(self, state: ModelState = ModelState.NOT_LOADED) -> None:
        self._state = state
        self._listeners: list[StateListener] = []

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener`` with the new status whenever the state changes (from any thread)."""
        self._listeners.append(listener)

    def status(self) -> ModelStatus:
        """The model's status now; an engine adds its memory, context and detail."""
        return ModelStatus(self._state)

    def _set_state(self, state: ModelState) -> None:
        self._state = state
        status = self.status()
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:  # a listener's bug is not the model's: the answer goes on
                log.exception("model state listener failed")
