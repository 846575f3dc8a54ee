"""Fetching, the evening before, the studies of the patients who come in (gateway.prefetch.day)."""
