"""callstream: the command line and the local stack that tie the services together."""
