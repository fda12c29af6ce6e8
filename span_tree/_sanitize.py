"""Make attribute values safe for every sink: scrubbed, JSON-able, bounded.

Scrubbing (no secret may be stored, in any column) has two halves, both applied on the worker
thread before any sink sees a span:

* keys: a value under a key that looks sensitive (``password``, ``token``,
  ``auth``...) is replaced by ``[scrubbed]``, in attributes, tags, event extras, nested
  mappings, lists of ``(key, value)`` pairs and objects stored as their repr
  (dataclasses, namespaces, anything with a ``__dict__``), at any depth;
* values: text that looks like a secret wherever text is stored (attribute strings,
  span names, log messages, exception messages and tracebacks): passwords in URLs,
  ``token=``/``key=`` query parameters, ``Authorization: Bearer ...``, ``password=...``
  pairs (DSNs, reprs, JSON), private key blocks and well-known token formats.

``configure(scrub=ScrubbingOptions(...))`` adds patterns and a callback that may keep a
match (Logfire's scrubbing is the model); ``configure(scrub=False)`` turns it off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

SCRUBBED = "[scrubbed]"
# Key fragments whose values are scrubbed (regular expressions, case-insensitive).
DEFAULT_SCRUB_PATTERNS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "auth(?!ors?(?:$|[^a-z]))",  # authorization, auth_header; not author(s)
    "bearer",
    "api[._ -]?key",
    "apikey",
    "access[._ -]?key",
    "private",
    "credential",
    "session",
    "cookie",
    "csrf",
    "xsrf",
    "jwt",
    "signature",
    "ssn",
    "social[._ -]?security",
    "credit[._ -]?card",
)
# The plain fragments of the defaults (kept for callers that list them).
DEFAULT_SCRUB_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "auth",
    "bearer",
    "api_key",
    "apikey",
    "api-key",
    "private",
    "credential",
    "session",
    "cookie",
    "csrf",
    "jwt",
)
MAX_TEXT_CHARS = 4_096
MAX_MESSAGE_CHARS = 65_536  # log messages may legitimately be long (SQL, payloads)
MAX_TRACEBACK_CHARS = 65_536
MAX_NAME_CHARS = 1_024
MAX_ITEMS = 100
MAX_DEPTH = 4
TRUNCATED = "…[truncated {} chars]"
_MARKER_SLACK = 40  # a text cut once already (limit + marker) is not cut again

_PRIMITIVES = (bool, int, float, type(None))
# Lone UTF-16 surrogates (``os.fsdecode`` of a non-UTF-8 file name) cannot be encoded
# as UTF-8: JSON and Parquet writers refuse the whole batch that holds one.
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"

_SECRET_WORDS = (
    r"(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|credential|auth(?!ors?\b))"
)
# Value patterns: each has a group ``keep`` (context left as it is, may be empty) and a
# group ``secret`` (replaced), and the lower-case words one of which the text must hold
# for the pattern to be tried at all (most text holds none: one cheap check each).
VALUE_PATTERNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "private_key_block": (
        r"(?P<keep>-----BEGIN [A-Z ]*PRIVATE KEY-----)"
        r"(?P<secret>[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))",
        ("private key-----",),
    ),
    "url_password": (
        r"(?P<keep>://[^/\s:@?#]{0,256}:)(?P<secret>[^/\s@?#]{1,256})(?=@)",
        ("://",),
    ),
    "query_parameter": (
        r"(?P<keep>[?&;](?:[^=&\s#]{0,40}?(?:token|key|secret|password|passwd|pwd|sig|"
        r"signature|auth|credential|session)[^=&\s#]{0,40})=)(?P<secret>[^&#\s'\"]+)",
        ("token", "key", "secret", "passw", "pwd", "sig", "auth", "credential", "session"),
    ),
    "secret_pair": (
        rf"(?P<keep>{_SECRET_WORDS}[\w.-]{{0,40}}['\"]?\s*[=:]\s*(?:b?['\"])?)"
        r"(?P<secret>(?:(?:bearer|basic|digest)\s+)?(?!\[scrubbed\])[^\s,;&'\"})\]]+)",
        ("passw", "pwd", "passphrase", "secret", "token", "key", "credential", "auth"),
    ),
    "authorization": (
        r"(?P<keep>\b(?:bearer|basic|digest)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{6,})",
        ("bearer", "basic", "digest"),
    ),
    "known_token": (
        r"(?P<keep>)(?P<secret>\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|"
        r"github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}|"
        r"sk-[A-Za-z0-9_-]{20,}|st_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}|"
        r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+))",
        ("akia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "sk-", "st_", "eyj"),
    ),
}


# Named tuples rather than frozen dataclasses: `dataclasses` costs `import span_tree` a
# third of its time (it imports `inspect`).
class ScrubMatch(NamedTuple):
    """What the scrubber is about to replace, as given to a ``ScrubbingOptions.callback``.

    Attributes:
        path: where: ``("attributes", "db", "password")``, ``("error_message",)``...
        value: the value under a sensitive key, or the secret-looking text found.
        pattern: the key pattern or the name of the value pattern that matched.
    """

    path: tuple[str | int, ...]
    value: Any
    pattern: str


class ScrubbingOptions(NamedTuple):
    """How ``configure(scrub=...)`` extends scrubbing.

    Attributes:
        extra_patterns: more key patterns (regular expressions, case-insensitive),
            added to the defaults (or to ``scrub_keys``).
        extra_value_patterns: more patterns over text; the whole match is replaced.
        callback: called for each match; return a value to store instead of
            ``[scrubbed]`` (for example ``match.value`` to keep it), or None to scrub.
    """

    extra_patterns: Sequence[str] = ()
    extra_value_patterns: Sequence[str] = ()
    callback: Callable[[ScrubMatch], Any] | None = None


NEVER = re.compile(r"(?!)")
_CACHED_CHARS = 200  # texts up to this long have their scrubbed form cached
_CACHE_ENTRIES = 4096


def scrub_pattern(keys: Iterable[str]) -> re.Pattern[str]:
    """Compile the case-insensitive pattern that marks a key as sensitive (fragments).

    The default list gives the default patterns (``DEFAULT_KEY_PATTERN``), so every
    caller asking for the defaults scrubs by the one rule.
    """
    keys = list(keys)
    if tuple(keys) == DEFAULT_SCRUB_KEYS:
        return DEFAULT_KEY_PATTERN
    if not keys:
        return NEVER
    return re.compile("|".join(re.escape(key) for key in keys), re.IGNORECASE)


def key_pattern(patterns: Iterable[str]) -> re.Pattern[str]:
    """Compile key patterns (regular expressions) into one case-insensitive pattern."""
    patterns = list(patterns)
    if not patterns:
        return NEVER
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.IGNORECASE)


DEFAULT_KEY_PATTERN = key_pattern(DEFAULT_SCRUB_PATTERNS)


class Scrubber:
    """Key and value scrubbing with one configuration (see the module docstring)."""

    def __init__(
        self,
        keys: re.Pattern[str],
        *,
        values: bool = True,
        extra_value_patterns: Sequence[str] = (),
        callback: Callable[[ScrubMatch], Any] | None = None,
    ) -> None:
        self.keys = keys
        self.callback = callback
        self.enabled = keys is not NEVER or values
        patterns = dict(VALUE_PATTERNS) if values else {}
        for index, extra in enumerate(extra_value_patterns):
            patterns[f"extra_{index}"] = (f"(?P<keep>)(?P<secret>{extra})", ())
        self.values = [
            (name, re.compile(pattern, re.IGNORECASE), words)
            for name, (pattern, words) in patterns.items()
        ]
        # One pass over the text finds whether any pattern's words occur at all.
        words = sorted({word for _, _, found in self.values for word in found})
        always = any(not found for _, _, found in self.values)
        self._words = None if always else tuple(words)
        self._cache: dict[str, str] = {}
        self._key_cache: dict[str, str | None] = {}
        self._prefilter = None if always else re.compile("|".join(map(re.escape, words)))

    def search(self, key: str) -> bool:
        """True when ``key`` looks sensitive (the ``re.Pattern.search`` of old callers)."""
        return self._key_match(key) is not None

    def _key_match(self, key: str) -> str | None:
        """The part of ``key`` that makes it sensitive, or None (cached: keys repeat)."""
        cache = self._key_cache
        if key in cache:
            return cache[key]
        match = self.keys.search(key)
        found = None if match is None else match.group(0)
        if len(cache) >= _CACHE_ENTRIES:
            cache.clear()
        cache[key] = found
        return found

    def scrub_key(self, key: str, value: Any, path: tuple[str | int, ...]) -> tuple[bool, Any]:
        """(True, replacement) when ``key`` is sensitive, else (False, None)."""
        found = self._key_match(key)
        if found is None:
            return False, None
        if self.callback is not None:
            kept = _call(self.callback, ScrubMatch(path, value, found))
            if kept is not None:
                return True, kept
        return True, SCRUBBED

    def text(self, text: str, path: tuple[str | int, ...] = ()) -> str:
        """``text`` with every secret-looking part replaced by ``[scrubbed]``."""
        if not self.values or not text:
            return text
        if len(text) <= _CACHED_CHARS and self.callback is None:
            # Names, methods, paths and tag values repeat: remember short answers.
            cache = self._cache
            known = cache.get(text)
            if known is None:
                known = self._text(text, path)
                if len(cache) >= _CACHE_ENTRIES:
                    cache.clear()
                cache[text] = known
            return known
        return self._text(text, path)

    def _text(self, text: str, path: tuple[str | int, ...]) -> str:
        lower = text.lower()
        prefilter = self._prefilter
        if prefilter is not None:
            # Most text holds none of the words: one regex pass for short text, str.find
            # (fast on long text) otherwise.
            if len(lower) < 512:
                if prefilter.search(lower) is None:
                    return text
            elif not any(word in lower for word in self._words or ()):
                return text
        for name, pattern, words in self.values:
            if words and not any(word in lower for word in words):
                continue
            replaced = pattern.sub(self._replacer(name, path), text)
            if replaced is not text and replaced != text:
                text = replaced
                lower = text.lower()
        return text

    def _replacer(self, name: str, path: tuple[str | int, ...]) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            replacement = SCRUBBED
            if self.callback is not None:
                kept = _call(self.callback, ScrubMatch(path, match.group("secret"), name))
                if kept is not None:
                    replacement = str(kept)
            return (match.group("keep") or "") + replacement

        return replace


def _call(callback: Callable[[ScrubMatch], Any], match: ScrubMatch) -> Any:
    try:
        return callback(match)
    except Exception:  # a broken callback scrubs (never leaks, never raises)
        return None


_options: ScrubbingOptions | None = None
_values_enabled = True
_scrubbers: dict[int, tuple[re.Pattern[str], Scrubber]] = {}


def configure_scrubbing(options: ScrubbingOptions | None, *, values: bool = True) -> None:
    """Set the value patterns and callback used with every key pattern (configure)."""
    global _options, _values_enabled
    _options = options
    _values_enabled = values
    _scrubbers.clear()


def scrubber(scrub: re.Pattern[str] | Scrubber | None) -> Scrubber:
    """The scrubber for a key pattern (as kept in the settings), with the value rules."""
    if isinstance(scrub, Scrubber):
        return scrub
    if scrub is None:
        scrub = DEFAULT_KEY_PATTERN
    cached = _scrubbers.get(id(scrub))
    if cached is not None and cached[0] is scrub:
        return cached[1]
    options = _options
    made = Scrubber(
        scrub,
        values=_values_enabled,
        extra_value_patterns=options.extra_value_patterns if options else (),
        callback=options.callback if options else None,
    )
    if len(_scrubbers) > 64:
        _scrubbers.clear()
    _scrubbers[id(scrub)] = (scrub, made)
    return made


def truncate(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATED.format(len(text) - limit)


def clean_text(
    text: str,
    scrub: re.Pattern[str] | Scrubber | None,
    limit: int,
    path: tuple[str | int, ...] = (),
) -> str:
    """Bound then scrub one stored text."""
    if not isinstance(text, str):
        text = str(text)
    # Cut first, so scrubbing costs at most ``limit`` characters; a secret at the cut
    # keeps its name (``password=hun…``), which is enough for the pattern to find it.
    if len(text) > limit + _MARKER_SLACK:  # not a text truncated once already
        text = truncate(text, limit)
    return scrubber(scrub).text(text, path)


def json_safe(
    value: Any,
    depth: int = 0,
    scrub: re.Pattern[str] | Scrubber | None = None,
    path: tuple[str | int, ...] = (),
) -> Any:
    """Return ``value`` as JSON-serialisable data: unknown objects become their repr.

    Args:
        value: any object.
        depth: nesting level of ``value`` (deeper containers become their repr, after
            their sensitive keys were scrubbed).
        scrub: when given, values under sensitive keys (in mappings, lists of pairs
            and objects' fields) and secret-looking text are scrubbed.
        path: where ``value`` sits (for a scrubbing callback).
    """
    scrubbing = scrub is not None
    if isinstance(value, str):
        return scrubber(scrub).text(truncate(value), path) if scrubbing else truncate(value)
    if isinstance(value, _PRIMITIVES):
        return value
    if depth < MAX_DEPTH:
        if isinstance(value, Mapping):
            items = [(str(k), v) for k, v in list(value.items())[:MAX_ITEMS]]
            result = {}
            for k, v in items:
                where = (*path, k)
                if scrubbing:
                    hit, replacement = scrubber(scrub).scrub_key(k, v, where)
                    if hit:
                        result[k] = replacement
                        continue
                result[k] = json_safe(v, depth + 1, scrub, where)
            return result
        if isinstance(value, (list, tuple, set, frozenset)):
            items = list(value)[:MAX_ITEMS]
            if scrubbing:
                return [
                    _pair(item, depth + 1, scrub, (*path, index))
                    for index, item in enumerate(items)
                ]
            return [json_safe(v, depth + 1, None, (*path, i)) for i, v in enumerate(items)]
    if scrubbing:
        value = _scrub_deep(value, scrubber(scrub), path, 0, [0])
    try:
        text = repr(value)
    except Exception as error:  # a broken __repr__ must not break tracing
        text = f"<unrepresentable {type(value).__name__}: {type(error).__name__}>"
    text = truncate(text)
    return scrubber(scrub).text(text, path) if scrubbing else text


def _pair(item: Any, depth: int, scrub: Any, path: tuple[str | int, ...]) -> Any:
    """A list item; a ``(key, value)`` pair with a sensitive key keeps the key only."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        key = item[0]
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if isinstance(key, str):
            hit, replacement = scrubber(scrub).scrub_key(key, item[1], (*path, key))
            if hit:
                return [json_safe(item[0], depth + 1, scrub, path), replacement]
    return json_safe(item, depth, scrub, path)


class _Scrubbed:
    """A stand-in whose repr is the scrubbed repr of an object (fields replaced)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_DEEP_BUDGET = 10_000  # objects visited at most when scrubbing one deep value


def _scrub_deep(
    value: Any, scrub: Scrubber, path: tuple[str | int, ...], depth: int, seen: list[int]
) -> Any:
    """A copy of ``value`` with sensitive keys scrubbed, for its repr (no depth limit).

    Mappings, lists/tuples/sets, lists of pairs, dataclasses, ``SimpleNamespace`` and
    objects with a ``__dict__`` whose fields hold a sensitive name are rebuilt; anything
    else is returned as it is. Bounded by a budget of visited objects and by depth.
    """
    seen[0] += 1
    if seen[0] > _DEEP_BUDGET or depth > 50 or isinstance(value, (str, bytes, *_PRIMITIVES)):
        return value
    if isinstance(value, Mapping):
        result: dict[Any, Any] = {}
        for k, v in list(value.items()):
            hit, replacement = scrub.scrub_key(str(k), v, (*path, str(k)))
            result[k] = (
                replacement if hit else _scrub_deep(v, scrub, (*path, str(k)), depth + 1, seen)
            )
        return result
    if isinstance(value, (list, tuple, set, frozenset)):
        items = []
        for index, item in enumerate(value):
            if isinstance(item, (tuple, list)) and len(item) == 2:
                key = item[0].decode("utf-8", "replace") if isinstance(item[0], bytes) else item[0]
                if isinstance(key, str):
                    hit, replacement = scrub.scrub_key(key, item[1], (*path, key))
                    if hit:
                        pair = (item[0], replacement)
                        items.append(list(pair) if isinstance(item, list) else pair)
                        continue
            items.append(_scrub_deep(item, scrub, (*path, index), depth + 1, seen))
        if isinstance(value, list):
            return items
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return tuple(items)
        return items if isinstance(value, (set, frozenset)) else value
    fields = _fields(value)
    if fields is None:
        return value
    if not any(scrub.search(name) for name in fields) and not any(
        _fields(field_value) is not None or isinstance(field_value, (Mapping, list, tuple))
        for field_value in fields.values()
    ):
        return value  # nothing to hide: keep the object's own repr
    parts = []
    for name, field_value in fields.items():
        hit, replacement = scrub.scrub_key(name, field_value, (*path, name))
        shown = (
            replacement if hit else _scrub_deep(field_value, scrub, (*path, name), depth + 1, seen)
        )
        parts.append(f"{name}={shown!r}")
    return _Scrubbed(f"{type(value).__qualname__}({', '.join(parts)})")


def _fields(value: Any) -> dict[str, Any] | None:
    """The named fields of a dataclass instance or an object with a ``__dict__``."""
    if isinstance(value, type):
        return None
    if hasattr(type(value), "__dataclass_fields__"):  # a dataclass: imported by its module
        import dataclasses

        return {field.name: getattr(value, field.name, None) for field in dataclasses.fields(value)}
    try:
        attributes = vars(value)
    except TypeError:
        return None
    if not isinstance(attributes, dict) or not attributes:
        return None
    return {str(name): item for name, item in attributes.items() if not str(name).startswith("_")}


def sanitize_attributes(
    attributes: Mapping[str, Any], scrub: re.Pattern[str] | Scrubber | None
) -> dict[str, Any]:
    """Scrub sensitive keys and secret-looking text; make every value JSON-safe, bounded."""
    active = scrubber(scrub)
    clean: dict[str, Any] = {}
    for key, value in attributes.items():
        name = key if isinstance(key, str) else str(key)
        hit, replacement = active.scrub_key(name, value, (name,))
        if hit:
            clean[name] = replacement
        elif isinstance(value, _PRIMITIVES):
            clean[name] = value
        else:
            # Nested mappings ({"db": {"password": ...}}) are scrubbed too.
            clean[name] = json_safe(value, 0, active, (name,))
        if len(clean) >= MAX_ITEMS * 10 and len(attributes) > len(clean):
            clean["_truncated_attributes"] = len(attributes) - len(clean)
            break
    return clean


def sanitize_tags(
    tags: Mapping[str, Any], scrub: re.Pattern[str] | Scrubber | None
) -> dict[str, str]:
    """Tags are string to string; sensitive ones and secret-looking text are scrubbed."""
    active = scrubber(scrub)
    clean = {}
    for k, v in tags.items():
        key = str(k)
        hit, replacement = active.scrub_key(key, v, ("tags", key))
        clean[key] = str(replacement) if hit else truncate(active.text(str(v), ("tags", key)), 256)
    return clean


def clean_event(event: Any, scrub: re.Pattern[str] | Scrubber | None) -> Any:
    """A span event (``_record.Event``) with its message bounded and scrubbed and its
    attributes sanitized; the same object when nothing changes."""
    message = clean_text(event.message, scrub, MAX_MESSAGE_CHARS, ("events", "message"))
    if event.attributes:
        attributes = sanitize_attributes(event.attributes, scrub)
        return event._replace(message=message, attributes=attributes)
    return event if message is event.message else event._replace(message=message)


_NOT_SEEN: Any = object()


def clean_event_lists(
    column: Sequence[Sequence[Any] | None], scrub: re.Pattern[str] | Scrubber | None
) -> list[tuple[Any, ...]]:
    """The events column of a batch: each span's events (None: none) as a tuple of
    ``clean_event`` results, each distinct message of the batch bounded and scrubbed once.

    Log lines repeat (one format string, one loop): scrubbing per occurrence cost more
    than the rest of an event's conversion. With a scrubbing callback every occurrence
    is offered to it, as ``clean_event`` does.
    """
    cleaner = scrubber(scrub)
    if cleaner.callback is not None or not cleaner.values:
        return [
            tuple([clean_event(event, cleaner) for event in items]) if items else ()
            for items in column
        ]
    path = ("events", "message")
    # Per distinct message: its cleaned text, or None when cleaning changed nothing (an
    # equal message made by another call is not the cleaned text's object, and telling
    # them apart by identity cost a _replace, a microsecond, per event).
    cleaned_of: dict[str, str | None] = {}
    cleaned_get = cleaned_of.get

    def cleaned(event: Any) -> Any:
        """The event with its message cleaned: once per distinct text of the batch."""
        message = event[4]
        if event[7] or message.__class__ is not str:  # attributes, or not text (may not hash)
            return clean_event(event, cleaner)
        text = cleaned_get(message, _NOT_SEEN)
        if text is _NOT_SEEN:
            text = clean_text(message, cleaner, MAX_MESSAGE_CHARS, path)
            text = cleaned_of[message] = None if text == message else text
        return event if text is None else event._replace(message=text)

    events: list[tuple[Any, ...]] = []
    for items in column:
        if not items:
            events.append(())
        elif len(items) == 1:  # the usual span's one log line: no list, no loop
            events.append((cleaned(items[0]),))
        else:
            events.append(tuple([cleaned(event) for event in items]))
    return events


def clean_handled_error(error: Any, scrub: re.Pattern[str] | Scrubber | None) -> Any:
    """A handled error (``_record.HandledError``) with message and traceback scrubbed."""
    message = clean_text(error.message, scrub, MAX_TEXT_CHARS, ("handled_errors", "message"))
    traceback = clean_text(
        error.traceback, scrub, MAX_TRACEBACK_CHARS, ("handled_errors", "traceback")
    )
    if message is error.message and traceback is error.traceback:
        return error
    return error._replace(message=message, traceback=traceback)


def encodable(value: Any) -> Any:
    """``value`` with every lone surrogate in its text (keys too) replaced by U+FFFD.

    Walks strings, mappings, lists and tuples (named tuples keep their type); other
    values are returned as they are. For the slow path of a sink that failed to encode.
    """
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, Mapping):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, tuple):
        items = [encodable(item) for item in value]
        make = getattr(type(value), "_make", None)
        return make(items) if make is not None else tuple(items)
    if isinstance(value, list):
        return [encodable(item) for item in value]
    return value
