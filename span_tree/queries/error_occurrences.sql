-- error_occurrences: one row per error: an exception (or HTTP 5xx status) that failed
-- spans, or an error caught and logged inside a span (handled = true).
-- Answers: where each error happened, whether it was fatal, and its fingerprint.
-- One exception passing up through several spans is one occurrence (spans keep their
-- own facts): a failed span whose parent in the same process failed with the same type
-- and message handed it on, so each chain of such spans is one row, at the span where
-- it was raised (the origin). It is fatal only if it escaped the trace's local root
-- (the first span of the trace in its process, seq 1: parent_id is null or in another
-- process); a chain that stops below an outer span that completed or failed otherwise
-- was "propagated, then handled" (handled = true). An error logged as handled by the
-- span a failed child handed it to is the same exception and is not counted again.
-- span_id is the span that raised it; span_ids every span it failed (or the logging one).
-- The fingerprint is a hash of handled/fatal, the error type, the code location (file
-- name and function of the innermost traceback frame, else of the span) and the message
-- with quoted strings, uuids, IPv4 addresses (with a port), KSUIDs, paths, hex ids and
-- numbers replaced by placeholders, so the same bug with different ids groups together
-- and different bugs do not.
CREATE OR REPLACE VIEW error_occurrences AS
WITH RECURSIVE failed AS (
    SELECT
        namespace, app, trace_id, span_id, parent_id, seq, host, pid, name AS span_name,
        tags, file, function, error_type, error_message, error_traceback,
        coalesce(end_time, start_time) AS time
    FROM error_spans
    WHERE status = 'failed'
),
handed_on AS (
    -- child -> parent edges along which one exception failed both spans. A local root
    -- (seq 1) hands nothing on: its parent is another process's span. Rows without a
    -- seq (0: written before it existed, or by another tracer) compare processes.
    SELECT child.trace_id, child.span_id AS child_id, parent.span_id AS parent_id
    FROM failed AS child
    JOIN failed AS parent
        ON parent.trace_id = child.trace_id AND parent.span_id = child.parent_id
    WHERE child.seq <> 1
        AND parent.error_type IS NOT DISTINCT FROM child.error_type
        AND parent.error_message IS NOT DISTINCT FROM child.error_message
        AND (child.seq > 1 OR (
            parent.host IS NOT DISTINCT FROM child.host
            AND parent.pid IS NOT DISTINCT FROM child.pid))
),
chains(trace_id, origin_id, top_id) AS (
    -- From each origin (a failed span no child handed its error to) up to the last span
    -- the exception failed. UNION (not ALL) ends the walk even on a corrupt parent cycle.
    SELECT f.trace_id, f.span_id, f.span_id
    FROM failed AS f
    ANTI JOIN handed_on AS h ON h.trace_id = f.trace_id AND h.parent_id = f.span_id
    UNION
    SELECT c.trace_id, c.origin_id, h.parent_id
    FROM chains AS c
    JOIN handed_on AS h ON h.trace_id = c.trace_id AND h.child_id = c.top_id
),
tops AS (
    SELECT c.trace_id, c.origin_id, top.seq, top.parent_id, top.host, top.pid
    FROM chains AS c
    JOIN failed AS top ON top.trace_id = c.trace_id AND top.span_id = c.top_id
    ANTI JOIN handed_on AS h ON h.trace_id = c.trace_id AND h.child_id = c.top_id
),
chain_spans AS (
    SELECT trace_id, origin_id, list(top_id) AS span_ids
    FROM chains
    GROUP BY trace_id, origin_id
),
local_parents AS (
    -- For tops without a seq only: is the parent a span of the same process? Any
    -- version of the parent will do, and only rows without a seq can be one (the
    -- filter lets row-group statistics skip the files written with seq).
    SELECT DISTINCT t.trace_id, t.origin_id
    FROM tops AS t
    JOIN span_versions AS s
        ON s.trace_id = t.trace_id AND s.span_id = t.parent_id
        AND s.host IS NOT DISTINCT FROM t.host AND s.pid IS NOT DISTINCT FROM t.pid
    WHERE t.seq = 0 AND s.seq = 0
),
exceptions AS (
    SELECT
        f.namespace, f.app, f.trace_id, f.span_id, f.span_name, f.tags, f.file, f.function,
        NOT (t.parent_id IS NULL OR t.seq = 1 OR (t.seq = 0 AND l.origin_id IS NULL))
            AS handled,
        f.error_type, f.error_message AS message, f.error_traceback AS traceback, f.time,
        cs.span_ids
    FROM tops AS t
    JOIN failed AS f ON f.trace_id = t.trace_id AND f.span_id = t.origin_id
    JOIN chain_spans AS cs ON cs.trace_id = t.trace_id AND cs.origin_id = t.origin_id
    LEFT JOIN local_parents AS l ON l.trace_id = t.trace_id AND l.origin_id = t.origin_id
),
logged AS (
    -- Errors caught and logged inside a span, unless a failed child handed it that error.
    SELECT namespace, app, trace_id, span_id, name AS span_name, tags, file, function,
        unnest(handled_errors, max_depth := 2)
    FROM error_spans
    WHERE len(handled_errors) > 0
),
flat AS (
    SELECT
        namespace, app, trace_id, span_id, span_name, tags, file, function,
        handled,
        coalesce(error_type, 'Error') AS error_type,
        coalesce(message, '') AS message,
        coalesce(traceback, '') AS traceback,
        time,
        span_ids
    FROM exceptions
    UNION ALL
    SELECT
        l.namespace, l.app, l.trace_id, l.span_id, l.span_name, l.tags, l.file, l.function,
        true,
        coalesce(l.type, 'Error'),
        coalesce(l.message, ''),
        coalesce(l.traceback, ''),
        l.time,
        [l.span_id]
    FROM logged AS l
    ANTI JOIN failed AS child
        ON child.trace_id = l.trace_id AND child.parent_id = l.span_id
        AND child.error_type IS NOT DISTINCT FROM l.type
        AND child.error_message IS NOT DISTINCT FROM l.message
),
patterns AS MATERIALIZED (
    -- The normalised message, computed once per distinct message (the same error recurs
    -- with the same text: far fewer regex evaluations than occurrences). MATERIALIZED:
    -- else DuckDB may move the regexes above the join, once per occurrence again.
    SELECT
        message,
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(
            message,
            '''[^'']*''|"[^"]*"', '<str>', 'g'),
            '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}',
            '<uuid>', 'g'),
            '\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b', '<ip>', 'g'),
            '\b[0-9A-Za-z]{27}\b', '<ksuid>', 'g'),
            '(^|[\s(\[=:,])~?(?:[A-Za-z]:)?(?:[\\/][\w.\-]+)+[\\/]?', '\1<path>', 'g'),
            '\b0[xX][0-9a-fA-F]+\b', '<hex>', 'g'),
            '\b(?:[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*'
                || '|[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*)\b',
            '<hex>', 'g'),
            '\d+(?:\.\d+)?', '<n>', 'g'),
            '\s+', ' ', 'g') AS pattern
    FROM (
        -- From the sources of flat's messages, not from flat: Spark inlines each
        -- reference to a CTE, and flat is the recursive walk.
        SELECT coalesce(error_message, '') AS message FROM failed
        UNION
        SELECT coalesce(message, '') FROM logged
    )
),
frames AS MATERIALIZED (
    -- The innermost traceback frame's file name and function, once per distinct traceback.
    SELECT
        traceback,
        nullif(
            regexp_extract(frame, 'File "(?:[^"]*[\\/])?([^"\\/]*)"', 1)
            || ':' || regexp_extract(frame, 'in ([^\s]+)$', 1),
            ':'
        ) AS frame_location
    FROM (
        SELECT
            traceback,
            regexp_extract_all(traceback, 'File "[^"]*", line \d+, in [^\s]+')[-1] AS frame
        FROM (
            SELECT coalesce(error_traceback, '') AS traceback FROM failed
            UNION
            SELECT coalesce(traceback, '') FROM logged
        )
    )
),
fingerprinted AS (
    SELECT
        flat.*,
        p.pattern,
        coalesce(
            f.frame_location,
            regexp_extract(coalesce(file, ''), '([^\\/]*)$', 1) || ':' || coalesce(function, span_name)
        ) AS location
    FROM flat
    JOIN patterns AS p USING (message)
    JOIN frames AS f USING (traceback)
)
SELECT
    substr(md5(concat_ws('|', CASE WHEN handled THEN 'handled' ELSE 'fatal' END,
        error_type, location, pattern)), 1, 16) AS fingerprint,
    handled, error_type, location, pattern, message, traceback,
    namespace, app, trace_id, span_id, span_name, tags, time, span_ids
FROM fingerprinted
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- UNION in the recursive CTE -> UNION ALL (Spark takes no other; the same rows, but on a
-- parent cycle Spark stops at its recursion limit with an error instead of ending the
-- walk); unnest(..., max_depth := 2) -> inline; [-1] -> try_element_at(..., -1);
-- regexp_replace group references \1 -> $1 (Java); len(list) -> size; AS MATERIALIZED
-- -> a plain CTE.
