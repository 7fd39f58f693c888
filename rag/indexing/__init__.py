"""Indexing: files found, read, cut into passages, embedded and stored; folders followed."""
