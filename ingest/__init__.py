"""The callback receiver service."""
