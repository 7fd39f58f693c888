"""The desktop app's entry point."""

from __future__ import annotations

import sys


def main() -> int:
    """Start Archivist's window."""
    print("The Archivist window is not built yet; use archivist-cli for now.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
