"""Agents: enrichment services each routed event is handed to (catalogue cross-match, history,
follow-up advice, remote agents). Built by a later issue; the pipeline's route step is where they attach."""
