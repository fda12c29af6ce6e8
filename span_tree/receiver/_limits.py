"""Default request bounds of the receiver (no imports: the CLI reads them for its help)."""

DEFAULT_MAX_BODY = 5 * 1024 * 1024  # bytes, also after gunzip
DEFAULT_MAX_SPANS = 10_000  # spans per request
DEFAULT_MAX_PARTITIONS = 32  # distinct start days (partitions) per request
DEFAULT_MAX_FUTURE_DAYS = 7.0  # spans may start at most this far ahead (clock skew)
