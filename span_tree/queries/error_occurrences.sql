-- error_occurrences: one row per error: a failed span's exit error, or an error caught and
-- logged inside a span (handled = true).
-- Answers: where each error happened, and its fingerprint: a hash of handled/fatal, the
-- error type, the code location (file name and function of the innermost traceback frame,
-- else of the span) and the message with quoted strings, uuids, KSUIDs, paths, hex ids
-- and numbers replaced by placeholders, so the same bug with different ids groups
-- together and different bugs do not.
CREATE OR REPLACE VIEW error_occurrences AS
WITH raw AS (
    -- One pass over spans: each span's exit error and handled errors become rows.
    SELECT
        namespace, app, trace_id, span_id, name AS span_name, tags, file, function,
        unnest(list_concat(
            CASE WHEN status = 'failed' THEN [{
                'handled': false, 'type': error_type, 'message': error_message,
                'traceback': error_traceback, 'time': coalesce(end_time, start_time)
            }] ELSE [] END,
            list_transform(handled_errors, lambda e: {
                'handled': true, 'type': e.type, 'message': e.message,
                'traceback': e.traceback, 'time': e.time
            })
        ), max_depth := 1) AS error
    FROM spans
    WHERE status = 'failed' OR len(handled_errors) > 0
),
flat AS (
    SELECT
        namespace, app, trace_id, span_id, span_name, tags, file, function,
        error.handled AS handled,
        coalesce(error.type, 'Error') AS error_type,
        coalesce(error.message, '') AS message,
        coalesce(error.traceback, '') AS traceback,
        error.time AS time
    FROM raw
),
located AS (
    SELECT
        *,
        regexp_extract_all(traceback, 'File "[^"]*", line \d+, in [^\s]+')[-1] AS frame,
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        regexp_replace(regexp_replace(regexp_replace(
            message,
            '''[^'']*''|"[^"]*"', '<str>', 'g'),
            '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}',
            '<uuid>', 'g'),
            '\b[0-9A-Za-z]{27}\b', '<ksuid>', 'g'),
            '(^|[\s(\[=:,])~?(?:[A-Za-z]:)?(?:[\\/][\w.\-]+)+[\\/]?', '\1<path>', 'g'),
            '\b0[xX][0-9a-fA-F]+\b', '<hex>', 'g'),
            '\b(?:[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*'
                || '|[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*)\b',
            '<hex>', 'g'),
            '\d+(?:\.\d+)?', '<n>', 'g'),
            '\s+', ' ', 'g') AS pattern
    FROM flat
),
fingerprinted AS (
    SELECT
        *,
        coalesce(
            nullif(
                regexp_extract(frame, 'File "(?:[^"]*[\\/])?([^"\\/]*)"', 1)
                || ':' || regexp_extract(frame, 'in ([^\s]+)$', 1),
                ':'
            ),
            regexp_extract(coalesce(file, ''), '([^\\/]*)$', 1) || ':' || coalesce(function, span_name)
        ) AS location
    FROM located
)
SELECT
    substr(md5(concat_ws('|', CASE WHEN handled THEN 'handled' ELSE 'fatal' END,
        error_type, location, pattern)), 1, 16) AS fingerprint,
    handled, error_type, location, pattern, message, traceback,
    namespace, app, trace_id, span_id, span_name, tags, time
FROM fingerprinted
