"""Keep every library off the network: no hub downloads, no telemetry.

Called before the first import of a library that might reach out (sentence-transformers,
transformers, huggingface_hub, chromadb). Idempotent and cheap.
"""

from __future__ import annotations

import os

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def enforce() -> None:
    """Force the hub libraries offline and Chroma's telemetry off for this process."""
    for key, value in _OFFLINE_ENV.items():
        os.environ[key] = value
