"""The external API (issue 8): a FastAPI service over the hot store and the warm tier, with API keys."""
