"""The consumers: enrich, recordings, lake and replay."""
