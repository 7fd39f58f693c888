"""One settings object, read from and written to TOML in the platform's config folder.

An administrator may pre-seed a system-wide file (``ARCHIVIST_SYSTEM_CONFIG`` or the
platform's site config folder); the user's own file overrides it key by key.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import tomli_w

log = logging.getLogger(__name__)

APP_NAME = "Archivist"
_FILE_NAME = "settings.toml"


def config_dir() -> Path:
    """The user's config folder (``ARCHIVIST_CONFIG_DIR`` overrides it, for tests and portable use)."""
    override = os.environ.get("ARCHIVIST_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME, False))


def default_data_dir() -> Path:
    """The user's data folder (``ARCHIVIST_DATA_DIR`` overrides it)."""
    override = os.environ.get("ARCHIVIST_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, False))


def log_dir() -> Path:
    """The user's log folder (inside the data folder when that is overridden)."""
    override = os.environ.get("ARCHIVIST_DATA_DIR")
    return Path(override) / "logs" if override else Path(platformdirs.user_log_dir(APP_NAME, False))


def system_config_file() -> Path:
    """The administrator's pre-seeded settings file, read before the user's."""
    override = os.environ.get("ARCHIVIST_SYSTEM_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.site_config_dir(APP_NAME, False)) / _FILE_NAME


@dataclass
class Settings:
    """Everything a user or administrator can set. Paths left empty mean "the default"."""

    data_dir: str = ""
    collection: str = "Documents"
    embedding_model: str = ""
    chunk_tokens: int = 200
    chunk_overlap: int = 40
    # Read the text of scanned pages and images (text recognition, on this computer).
    recognize_text: bool = True

    model_path: str = ""
    model_folder: str = ""
    context_size: int = 0
    reasoning_effort: str = "low"
    # Seconds until an answer's first word: the sources sent fit what the model reads in that time
    # on this machine (measured from its answers); 0: as many as the context window holds.
    answer_starts_within: float = 5.0
    # Decode answers so that every sentence ends with the [n] of a source (a grammar; see bench/claims.py).
    cite_every_sentence: bool = False
    gpu_layers: int = -1
    kv_cache_type: str = "f16"
    idle_minutes: float = 10.0
    # Between answers the model is unloaded when the system's available memory falls below this (0: never).
    memory_floor_gb: float = 1.0
    download_mirror: str = ""

    cache_enabled: bool = True
    cache_size_mb: int = 256
    cache_ttl_days: float = 30.0
    cache_similar: bool = True
    # A Redis server (redis://host:6379/0) holding the answers instead of the data folder: for a
    # team's archivist-server replicas behind a load balancer, so that they share one cache.
    cache_redis_url: str = ""

    # A team's archivist-server: when set, the desktop and the CLI use it instead of a local store
    # (the user's token is kept in the system keyring, or ARCHIVIST_TOKEN).
    server_url: str = ""

    chroma_host: str = ""
    chroma_port: int = 8000
    chroma_ssl: bool = False
    chroma_token: str = ""

    remote_base_url: str = ""
    remote_api_key: str = ""
    remote_model: str = ""

    # Read once by the composition root, which moves it to the data folder's followed.json (before 0.3 it lived here).
    watched_folders: dict[str, list[str]] = field(default_factory=dict)

    @property
    def data_path(self) -> Path:
        """The data folder in effect."""
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    @property
    def team_url(self) -> str:
        """The team server in effect: ``ARCHIVIST_SERVER``, else ``server_url``; empty for none."""
        return (os.environ.get("ARCHIVIST_SERVER", "") or self.server_url).rstrip("/")

    @property
    def log_path(self) -> Path:
        """The log folder in effect (inside a chosen data folder, else the user's log folder)."""
        return self.data_path / "logs" if self.data_dir else log_dir()

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Read the system file, then the user's file over it; missing files give defaults."""
        values: dict[str, object] = {}
        files = [path] if path else [system_config_file(), config_dir() / _FILE_NAME]
        for file in files:
            values.update(_read_toml(file))
        return cls.from_dict(values)

    def save(self, path: Path | None = None) -> Path:
        """Write the settings atomically to the user's file (or ``path``) and return it."""
        path = path or config_dir() / _FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(dataclasses.asdict(self)), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> Settings:
        settings = cls()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in values.items():
            if key not in fields:
                log.warning("ignoring unknown setting %r", key)
                continue
            default = getattr(settings, key)
            if isinstance(default, bool) != isinstance(value, bool) or (
                not isinstance(value, type(default)) and not (isinstance(default, float) and isinstance(value, int))
            ):
                log.warning("ignoring setting %r: expected %s, got %r", key, type(default).__name__, value)
                continue
            setattr(settings, key, value)
        return settings


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        log.warning("cannot read settings from %s: %s", path, exc)
        return {}
