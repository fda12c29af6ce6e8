-- error_groups: one row per error fingerprint (see error_occurrences).
-- Answers: which errors recur, how often (count = occurrences: one per exception per
-- trace, not per span it passed through; trace_count = traces), first and last seen,
-- a sample trace to look at, and what a person decided about it. status and level come
-- from the newest annotation; unannotated groups are 'open', at level WARN when fatal
-- and OK when handled.
CREATE OR REPLACE VIEW error_groups AS
SELECT
    g.*,
    coalesce(a.status, 'open') AS status,
    coalesce(a.level, CASE WHEN g.handled THEN 'OK' ELSE 'WARN' END) AS level,
    a.note,
    a.created_at AS annotated_at
FROM (
    SELECT
        fingerprint,
        any_value(handled) AS handled,
        any_value(error_type) AS error_type,
        any_value(location) AS location,
        any_value(pattern) AS pattern,
        count(*) AS count,
        count(DISTINCT trace_id) AS trace_count,
        min(time) AS first_seen,
        max(time) AS last_seen,
        arg_max(message, time) AS sample_message,
        arg_max(trace_id, time) AS sample_trace_id,
        arg_max(span_id, time) AS sample_span_id,
        arg_max(span_name, time) AS span_name,
        arg_max(namespace, time) AS namespace,
        arg_max(app, time) AS app,
        arg_max(traceback, time) AS sample_traceback
    FROM error_occurrences
    GROUP BY fingerprint
) AS g
LEFT JOIN annotations AS a USING (fingerprint)
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- arg_max(a, v) skips NULL a, as DuckDB does.
