"""What the administrator decides about the team server (``[server]`` in the server's settings file)."""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServerConfig:
    """What the administrator decides (``[server]`` in the server's settings file)."""

    folders: list[Path] = field(default_factory=list)  # server folders editors may index and follow
    proxies: frozenset[str] = frozenset()  # socket addresses of the intranet's authenticating reverse proxy
    proxy_header: str = "X-Remote-User"
    audit_questions: bool = True  # False: the audit log says "asked" without the question
    anyone_creates: bool = False  # True: any user may make a collection (and owns it); else administrators
    home: Path = Path(".")

    max_upload_mb: int = 512
    max_body_kb: int = 1024  # a call's JSON body (a question, a schema, a list of paths)
    max_calls_per_user: int = 8  # calls of one user running at once
    watches_folders: bool = True  # False on all but one of several replicas sharing one store
