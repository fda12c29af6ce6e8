-- span_stats: one row per (namespace, app, span name).
-- Answers: how often a span runs and how long it takes: count, p50/p90/p95/p99/max
-- duration (µs, linear interpolation, finished spans only), error count and rate,
-- first and last seen.
CREATE OR REPLACE VIEW span_stats AS
SELECT
    namespace,
    app,
    name,
    count,
    error_count,
    error_rate,
    quantiles[1] AS p50_us,
    quantiles[2] AS p90_us,
    quantiles[3] AS p95_us,
    quantiles[4] AS p99_us,
    max_us,
    first_seen,
    last_seen
FROM (
    SELECT
        namespace,
        app,
        name,
        count(*) AS count,
        count(*) FILTER (status = 'failed') AS error_count,
        count(*) FILTER (status = 'failed') / count(*) AS error_rate,
        quantile_cont(duration_us, [0.5, 0.9, 0.95, 0.99]) FILTER (status <> 'started')
            AS quantiles,
        max(duration_us) AS max_us,
        min(start_time) AS first_seen,
        max(start_time) AS last_seen
    FROM spans
    GROUP BY namespace, app, name
)
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- quantile_cont(x, [...]) -> percentile(x, array(...)) (both exact, linear
-- interpolation); quantiles[i] (1-based) -> try_element_at.
