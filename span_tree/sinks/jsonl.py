"""One JSON line per span on stdout: the container / Lambda / CI path.

Log collectors (CloudWatch, Loki, kubectl logs) keep these lines; ``spantree ingest``
turns them back into a store. Each line carries ``"spantree": <schema version>`` so it
can be told apart from other output.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from span_tree._record import FinishedSpan, span_to_json
from span_tree._sanitize import encodable


class JsonlSink:
    """Writes each span as one JSON line.

    Args:
        stream: where to write; default: ``sys.stdout`` as it is at export time.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        stream = self._stream or sys.stdout
        text = "".join(span_to_json(span) + "\n" for span in batch)
        try:
            stream.write(text)
        except UnicodeEncodeError:
            # A lone surrogate (a non-UTF-8 file name) the stream cannot encode: the
            # text was refused whole, before writing; repair it (U+FFFD) and write.
            stream.write(encodable(text))
        stream.flush()

    def force_flush(self, timeout: float) -> bool:
        stream = self._stream or sys.stdout
        stream.flush()
        return True

    def shutdown(self) -> None:
        self.force_flush(1.0)
