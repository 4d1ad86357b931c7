import logging
import sys


class CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now: pytest swaps it per test (capture), and a
    handler bound to an earlier, closed one would print "Logging error" tracebacks."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass
