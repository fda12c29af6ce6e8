-- annotations: one row per error fingerprint, its newest annotation.
-- Answers: what a person decided about an error group: status crash | silenced | open,
-- level OK | WARN | ALERT, and a note. Annotations are appended as small Parquet files
-- (<store>/annotations/<ksuid>.parquet); the newest created_at wins. A newest
-- annotation with status 'cleared' (spantree annotate --clear) removes the group's row.
CREATE OR REPLACE VIEW annotations AS
SELECT fingerprint, status, level, note, author, created_at
FROM (
    SELECT fingerprint, status, level, note, author, created_at
    FROM annotation_versions
    QUALIFY row_number() OVER (PARTITION BY fingerprint ORDER BY created_at DESC) = 1
)
WHERE status <> 'cleared'
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- QUALIFY -> a filtered subquery (sqlglot's own rewrite).
