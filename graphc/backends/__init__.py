"""Graphs -> code that runs: the shared expression printer, and one folder per target."""
