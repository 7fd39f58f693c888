"""The user's token for a team server: in the system keyring where there is one (Windows'
Credential Manager, macOS's Keychain, the Secret Service on a Linux desktop), else in a file
of the config folder only its owner may read. ``ARCHIVIST_TOKEN`` overrides both, for scripts.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from archivist.settings import config_dir

log = logging.getLogger(__name__)

_SERVICE = "Archivist team server"


def _keyring():
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    return keyring


def _file() -> Path:
    return config_dir() / "tokens.json"


def _read_file() -> dict[str, str]:
    try:
        return dict(json.loads(_file().read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return {}


def load_token(url: str) -> str:
    """The token for the server at ``url``; empty when none was entered."""
    if token := os.environ.get("ARCHIVIST_TOKEN", ""):
        return token
    if (ring := _keyring()) is not None:
        try:
            return ring.get_password(_SERVICE, url) or ""
        except Exception as exc:  # noqa: BLE001 - a locked or broken keyring: say so, go on without
            log.warning("cannot read the keyring (%s)", exc)
    return _read_file().get(url, "")


def save_token(url: str, token: str) -> str:
    """Keep ``token`` for ``url`` (an empty one forgets it); says where it was kept."""
    if (ring := _keyring()) is not None:
        try:
            if token:
                ring.set_password(_SERVICE, url, token)
            else:
                ring.delete_password(_SERVICE, url)
            return "the system keyring"
        except Exception as exc:  # noqa: BLE001 - fall back to the file
            log.warning("cannot write to the keyring (%s); keeping the token in a file", exc)
    tokens = _read_file()
    if token:
        tokens[url] = token
    else:
        tokens.pop(url, None)
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(tokens, out)
    os.replace(temporary, path)
    return str(path)
