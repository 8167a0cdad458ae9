"""The error of this subpackage."""


class AlignmentError(ValueError):
    """A stream cannot be put on the session's time base; the message names the stream
    (file and key) and the problem."""
