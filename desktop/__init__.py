"""The Qt window: a view over the knowledge base."""

from desktop.refcounts import keep_singletons_alive

keep_singletons_alive()  # PySide6 6.12 on Python 3.11 (desktop/refcounts.py): before any widget is made
