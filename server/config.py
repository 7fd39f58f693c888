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
    replica: str = ""  # this replica's name (``serve --replica``); "" for the administration commands
    database_url: str = ""  # accounts and audit log in this database (PostgreSQL shared by replicas); "": the home's files

    max_upload_mb: int = 512
    max_body_kb: int = 1024  # a call's JSON body (a question, a schema, a list of paths)
    max_calls_per_user: int = 8  # calls of one user running at once
    secure_cookies: bool = False  # True behind a proxy that ends TLS: the session cookie is then always Secure
    web_answer_tokens: int | None = None  # the page's answers stop after this many tokens (None: the model's own limit)
    events_heartbeat: float = 15.0  # seconds between the event stream's keep-alive comments (proxies close idle streams)
    events_watch_every: float = 2.0  # seconds between looks for changes other processes made, while anyone listens
    watches_folders: bool = True  # True: compete for the lease on the followed folders; False: never watch them
    watch_lease_seconds: float = 30.0  # the followed folders' lease: renewed every third of it, taken over when it runs out
    uploads_folder: Path | None = None  # where uploads are kept (a share every replica mounts); None: home/uploads

    # OpenID Connect against the company's identity provider (``[server.oidc]``); off while issuer is "".
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_user_claim: str = "preferred_username"  # the ID token's claim that holds the user's name here
    oidc_label: str = ""  # what the sign-in button names ("Sign in with ..."); the issuer's host when ""
    oidc_session_hours: float = 8.0  # how long a browser stays signed in after the provider vouched for its user
    public_url: str = ""  # how browsers reach this server (https://archivist.example.com); else from the request
