"""Imported by the playground's fork server (graphc/app/serve.py): graphc loaded and every stage run once,
so each analysis process forked from it starts warm."""

import gc

from .analysis import warm

warm()
gc.freeze()  # (the objects made so far are never scanned again: a forked child does not copy their pages)
