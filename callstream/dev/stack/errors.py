class StackError(Exception):
    """The local stack could not be brought up or inspected; the message says why and where."""
