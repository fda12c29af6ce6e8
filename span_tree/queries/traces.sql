-- traces: one row per trace.
-- Answers: which runs happened, their root span name, start, duration, status, how many
-- spans and errors they had, and their tags. The root is the span without a parent
-- (the earliest span when there is none, e.g. a trace continued from another service).
CREATE OR REPLACE VIEW traces AS
SELECT
    trace_id,
    root.namespace,
    root.app,
    root.name AS root_name,
    root.status,
    start_time,
    end_time,
    coalesce(root.duration_us, date_diff('microsecond', start_time, end_time)) AS duration_us,
    span_count,
    error_count,
    handled_error_count,
    root_extra.tags,
    root_extra.app_version,
    root_extra.host,
    date
FROM (
    SELECT
        trace_id,
        -- The root: parentless spans sort first, then the earliest. Two aggregates, so
        -- a query that needs no tags (the dashboard) never reads the tags column.
        arg_min(
            {
                'namespace': namespace, 'app': app, 'name': name, 'status': status,
                'duration_us': duration_us
            },
            {'has_parent': parent_id IS NOT NULL, 'start': start_time}
        ) AS root,
        arg_min(
            {'tags': tags, 'app_version': app_version, 'host': host},
            {'has_parent': parent_id IS NOT NULL, 'start': start_time}
        ) AS root_extra,
        min(start_time) AS start_time,
        max(end_time) AS end_time,
        count(*) AS span_count,
        count(*) FILTER (status = 'failed') AS error_count,
        coalesce(sum(len(handled_errors)), 0)::BIGINT AS handled_error_count,
        min(date) AS date
    FROM spans
    GROUP BY trace_id
)
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- arg_min(a, v) skips NULL a, as DuckDB does; len(list) -> size.
