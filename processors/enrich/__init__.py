"""`callstream enrich`: raw callbacks in, canonical records out."""
