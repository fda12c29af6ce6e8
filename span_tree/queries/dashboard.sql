-- dashboard: one row per (namespace, app, root span name): each kind of run.
-- Answers: Name · Status (of the latest run) · Counts (runs, succeeded, failed, running)
-- · LastTime (start of the latest run), plus p50/p99 run duration and the error rate.
CREATE OR REPLACE VIEW dashboard AS
WITH candidates AS (
    -- A run is a trace, its root as `traces` picks it, found among run_candidates (the
    -- only spans that can be a root: a tenth of the rows a group over every span of
    -- every trace reads). A window ranks them (it sorts, and spills when it must), where
    -- an arg_min per trace held a state per trace in memory (A, 1M traces: 520 -> 325 MB).
    SELECT
        trace_id, namespace, app, name, status, duration_us,
        row_number() OVER (PARTITION BY trace_id ORDER BY has_parent, start_time)
            AS candidate_rank,
        min(start_time) OVER (PARTITION BY trace_id) AS trace_start
    FROM run_candidates
),
runs AS (
    SELECT trace_id, namespace, app, name, status, duration_us, trace_start AS start_time
    FROM candidates
    WHERE candidate_rank = 1
),
running_ends AS (
    -- Only a run still going (no root duration) looks at all its spans for its end.
    SELECT trace_id, max(end_time) AS end_time
    FROM spans
    WHERE trace_id IN (SELECT trace_id FROM runs WHERE duration_us IS NULL)
    GROUP BY trace_id
),
durations AS (
    SELECT
        r.namespace,
        r.app,
        r.name,
        r.status,
        r.trace_id,
        r.start_time,
        coalesce(r.duration_us, date_diff('microsecond', r.start_time, e.end_time))
            AS duration_us
    FROM runs AS r
    LEFT JOIN running_ends AS e USING (trace_id)
)
SELECT
    namespace,
    app,
    name,
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
FROM durations
GROUP BY namespace, app, name
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- quantile_cont -> percentile (both exact); arg_max(a, v) skips NULL a, as
-- DuckDB does; a / b by zero gives ±inf as in DuckDB, not NULL or an error.
