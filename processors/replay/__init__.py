"""Putting records back: group resets, window republishing, lake and dead-letter re-injection."""
