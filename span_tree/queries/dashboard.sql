-- dashboard: one row per (namespace, app, root span name): each kind of run.
-- Answers: Name · Status (of the latest run) · Counts (runs, succeeded, failed, running)
-- · LastTime (start of the latest run), plus p50/p99 run duration and the error rate.
CREATE OR REPLACE VIEW dashboard AS
SELECT
    namespace,
    app,
    root_name AS name,
    arg_max(status, start_time) AS status,
    count(*) AS runs,
    count(*) FILTER (status = 'succeeded') AS succeeded,
    count(*) FILTER (status = 'failed') AS failed,
    count(*) FILTER (status = 'started') AS running,
    count(*) FILTER (status = 'failed') / count(*) AS error_rate,
    max(start_time) AS last_time,
    arg_max(trace_id, start_time) AS last_trace_id,
    quantile_cont(duration_us, 0.5) AS p50_us,
    quantile_cont(duration_us, 0.99) AS p99_us
FROM traces
GROUP BY namespace, app, root_name
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- quantile_cont -> percentile (both exact); arg_max(a, v) skips NULL a, as
-- DuckDB does; a / b by zero gives ±inf as in DuckDB, not NULL or an error.
