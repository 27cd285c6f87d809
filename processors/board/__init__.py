"""`callstream board`: live extension states, per-minute metrics and missing-record
alerts, as topics and as a page."""
