-- traces: one row per trace.
-- Answers: which runs happened, their root span name, start, duration, status, how many
-- spans and errors they had, and their tags. The root is the span without a parent
-- (the earliest span when the root is missing, e.g. a trace continued from elsewhere).
CREATE OR REPLACE VIEW traces AS
SELECT
    trace_id,
    arg_min(namespace, start_time) AS namespace,
    arg_min(app, start_time) AS app,
    coalesce(arg_min(name, start_time) FILTER (parent_id IS NULL), arg_min(name, start_time))
        AS root_name,
    coalesce(arg_min(status, start_time) FILTER (parent_id IS NULL), arg_min(status, start_time))
        AS status,
    min(start_time) AS start_time,
    max(end_time) AS end_time,
    coalesce(
        max(duration_us) FILTER (parent_id IS NULL),
        date_diff('microsecond', min(start_time), max(end_time))
    ) AS duration_us,
    count(*) AS span_count,
    count(*) FILTER (status = 'failed') AS error_count,
    coalesce(sum(len(handled_errors)), 0)::BIGINT AS handled_error_count,
    arg_min(tags, start_time) AS tags,
    arg_min(app_version, start_time) AS app_version,
    arg_min(host, start_time) AS host,
    min(date) AS date
FROM spans
GROUP BY trace_id
