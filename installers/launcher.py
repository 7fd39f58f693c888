"""The frozen app's entry point: the window, or ``--self-test``."""

import multiprocessing
import sys

from desktop.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the knowledge-base and engine processes re-enter here when frozen
    sys.exit(main())
