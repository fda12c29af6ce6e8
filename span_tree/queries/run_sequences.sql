-- run_sequences: one row per trace, numbered within its run series: the traces with the
-- same namespace, app, root span name and tag combination, ordered by start.
-- Answers: what changed since the last green run: sequence number, previous status,
-- the length of the current same-status streak, and whether this run is the first
-- failure after a success.
CREATE OR REPLACE VIEW run_sequences AS
WITH keyed AS (
    SELECT
        *,
        array_to_string(
            list_sort(list_transform(map_entries(tags), lambda e: e.key || '=' || e.value)), ','
        ) AS tag_key
    FROM traces
),
numbered AS (
    SELECT
        *,
        row_number() OVER series AS sequence,
        lag(status) OVER series AS previous_status,
        row_number() OVER series
            - row_number() OVER (
                PARTITION BY namespace, app, root_name, tag_key, status ORDER BY start_time, trace_id
            ) AS streak_group
    FROM keyed
    WINDOW series AS (PARTITION BY namespace, app, root_name, tag_key ORDER BY start_time, trace_id)
)
SELECT
    namespace,
    app,
    root_name,
    tag_key,
    tags,
    sequence,
    trace_id,
    start_time,
    duration_us,
    status,
    previous_status,
    row_number() OVER (
        PARTITION BY namespace, app, root_name, tag_key, status, streak_group
        ORDER BY start_time, trace_id
    ) AS streak,
    coalesce(status = 'failed' AND previous_status = 'succeeded', false)
        AS first_failure_after_success,
    sequence = count(*) OVER (PARTITION BY namespace, app, root_name, tag_key) AS is_latest
FROM numbered
