"""The frozen app's entry point: the window, ``--self-test`` or the private store server."""

import multiprocessing
import sys

from desktop.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the indexing child process re-enters here when frozen
    sys.exit(main())
