"""The frozen app's entry point. The bundle holds two executables built from it: ``archivist``
(the window, or ``--self-test``) and ``archivist-cli`` (the command line, as ``pip install`` gives)."""

import multiprocessing
import sys
from pathlib import Path

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the knowledge-base and engine processes re-enter here when frozen
    if Path(sys.argv[0]).stem.lower() == "archivist-cli":  # a link's own name, or the Windows/macOS executable
        from archivist.cli import main
    else:
        from desktop.app import main
    sys.exit(main())
