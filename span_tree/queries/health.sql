-- health: one row per (namespace, app).
-- Answers: is this app OK, WARN or ALERT, and why. Looks at the day before the app's
-- newest run: the failed-run rate (ALERT from 50 %, WARN from 10 %) and the error
-- groups seen in that window, at their level (annotations set it; silenced groups and
-- handled errors count as OK; other unannotated fatal errors are WARN). The worst wins.
-- A run is a local root: the first span of a trace in its process (a script's root, a
-- request a service served for a caller), so a service called by others is judged by
-- its own requests, not left out because the traces begin in its callers.
CREATE OR REPLACE VIEW health AS
WITH local_roots AS (
    SELECT namespace, app, status, start_time
    FROM spans
    -- seq 1: first in its process; rows without seq (0): no parent, or a server span
    WHERE parent_id IS NULL OR seq = 1 OR (seq = 0 AND kind = 'server')
),
recent_traces AS (
    SELECT *
    FROM local_roots
    QUALIFY start_time >= max(start_time) OVER (PARTITION BY namespace, app) - INTERVAL 1 DAY
),
rates AS (
    SELECT
        namespace,
        app,
        count(*) AS traces,
        count(*) FILTER (status = 'failed') AS failed,
        count(*) FILTER (status = 'failed') / count(*) AS error_rate,
        max(start_time) AS last_seen
    FROM recent_traces
    GROUP BY namespace, app
),
group_levels AS (
    SELECT DISTINCT
        o.namespace,
        o.app,
        o.fingerprint,
        CASE WHEN g.status = 'silenced' THEN 'OK' ELSE g.level END AS level
    FROM error_occurrences AS o
    JOIN rates AS r USING (namespace, app)
    JOIN error_groups AS g USING (fingerprint)
    WHERE o.time >= r.last_seen - INTERVAL 1 DAY
),
levels AS (
    SELECT
        namespace,
        app,
        count(*) FILTER (level <> 'OK') AS open_groups,
        max(CASE level WHEN 'ALERT' THEN 2 WHEN 'WARN' THEN 1 ELSE 0 END) AS group_rank
    FROM group_levels
    GROUP BY namespace, app
),
ranked AS (
    SELECT
        r.*,
        coalesce(l.open_groups, 0) AS open_groups,
        coalesce(l.group_rank, 0) AS group_rank,
        CASE WHEN r.error_rate >= 0.5 THEN 2 WHEN r.error_rate >= 0.1 THEN 1 ELSE 0 END
            AS rate_rank
    FROM rates AS r
    LEFT JOIN levels AS l USING (namespace, app)
)
SELECT
    namespace,
    app,
    ['OK', 'WARN', 'ALERT'][greatest(group_rank, rate_rank) + 1] AS level,
    traces,
    failed,
    error_rate,
    open_groups,
    last_seen,
    concat_ws('; ',
        CASE WHEN rate_rank > 0
            THEN printf('%d of %d traces failed in the last day', failed, traces) END,
        CASE WHEN open_groups > 0
            THEN printf('%d error group(s) need attention', open_groups) END
    ) AS reason
FROM ranked
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- QUALIFY over * -> the star expanded to traces' columns; [...][i] (1-based) ->
-- try_element_at; a / b by zero gives ±inf as in DuckDB.
