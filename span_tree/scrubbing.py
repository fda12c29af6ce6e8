"""Public names of secret scrubbing: ``configure(scrub=ScrubbingOptions(...))``.

See the README, "Secrets", for the rules applied by default.
"""

from __future__ import annotations

from span_tree._sanitize import (
    DEFAULT_SCRUB_PATTERNS,
    SCRUBBED,
    VALUE_PATTERNS,
    ScrubbingOptions,
    ScrubMatch,
)

__all__ = [
    "DEFAULT_SCRUB_PATTERNS",
    "SCRUBBED",
    "VALUE_PATTERNS",
    "ScrubMatch",
    "ScrubbingOptions",
]
