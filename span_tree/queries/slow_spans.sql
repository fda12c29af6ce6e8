-- slow_spans: one row per finished span slower than the p95 of its name (per app).
-- Answers: which individual calls were unusually slow, and by how much (ratio to p95).
CREATE OR REPLACE VIEW slow_spans AS
SELECT
    s.namespace,
    s.app,
    s.name,
    s.trace_id,
    s.span_id,
    s.status,
    s.start_time,
    s.duration_us,
    st.p50_us,
    st.p95_us,
    s.duration_us / st.p95_us AS p95_ratio,
    s.tags
FROM spans AS s
JOIN span_stats AS st USING (namespace, app, name)
WHERE s.status <> 'started' AND s.duration_us > st.p95_us
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- a / b by zero gives ±inf as in DuckDB, not NULL or an error.
