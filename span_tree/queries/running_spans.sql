-- running_spans: one row per span that has only `started` snapshots so far (no finished
-- version): its newest snapshot. Answers: which spans are still running (or were when
-- their process died). Files written with batch identities never hold a row twice, so
-- the only rows sharing a span id are `started` snapshots and the finished version; this
-- is the part of the newest-version rule that needs a look across rows (see `spans`).
-- Versions of a span share its namespace and date, so the lookup for finished versions
-- stays inside the snapshots' partitions. Store computes it once per partition's set of
-- files and remembers it (closed partitions never change).
CREATE OR REPLACE VIEW running_spans AS
WITH snapshots AS (
    SELECT *
    FROM idempotent_span_versions
    WHERE status = 'started'
    QUALIFY row_number() OVER (
        PARTITION BY namespace, date, trace_id, span_id ORDER BY written_at DESC NULLS LAST
    ) = 1
)
SELECT snapshots.*
FROM snapshots
ANTI JOIN (
    SELECT namespace, date, trace_id, span_id
    FROM idempotent_span_versions
    WHERE status <> 'started' AND span_id IN (SELECT span_id FROM snapshots)
) AS finished USING (namespace, date, trace_id, span_id)
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- QUALIFY over * -> the star expanded to idempotent_span_versions' columns;
-- ANTI JOIN ... USING -> ON (Spark would move the USING columns first in snapshots.*).
