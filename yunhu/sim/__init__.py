"""A simulator of the platform: its token API, recording downloads and callback traffic."""
