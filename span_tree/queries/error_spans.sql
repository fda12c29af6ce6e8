-- error_spans: one row per span (its newest version, as in `spans`) that failed or logged
-- a caught error, with the columns the error views read.
-- Answers: where errors happened, for error_occurrences to group. Errors are a small
-- share of the spans, and this view's rows of a partition depend only on that
-- partition's files, so Store computes it once per partition's set of files and
-- remembers the rows (in the user's cache directory): the error views then read those
-- instead of a dozen columns of every span.
CREATE OR REPLACE VIEW error_spans AS
SELECT
    namespace, date, app, trace_id, span_id, parent_id, seq, host, pid, name, tags, file,
    function, status, error_type, error_message, error_traceback, start_time, end_time,
    handled_errors
FROM spans
WHERE status = 'failed' OR len(handled_errors) > 0
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is): len(list) -> size.
