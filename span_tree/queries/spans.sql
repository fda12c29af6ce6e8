-- spans: one row per span, its newest version.
-- The newest-version rule: of the rows sharing a span id, a finished version beats a
-- `started` snapshot (a span still running when its trace's root ended), then the newest
-- written_at wins. (Its Python form is span_tree._record.newest_versions.)
-- Answers everything: every other view reads this one. Three parts, each a plain scan
-- that filters on namespace and date reach (partition pruning):
-- - finished rows of files written with batch identities, as they are (each is the only
--   finished version of its span): files known to hold no `started` row with no filter
--   at all (settled_span_versions; a count reads no column), the others without their
--   `started` rows;
-- - running_spans: the newest snapshot of spans with no finished version;
-- - partitions holding a file written before batch identities (legacy: a retried batch
--   may be there twice): the full rule over every row.
CREATE OR REPLACE VIEW spans AS
SELECT *
FROM settled_span_versions
UNION ALL
SELECT *
FROM unsettled_span_versions
WHERE status <> 'started'
UNION ALL
SELECT *
FROM running_spans
UNION ALL (
    SELECT *
    FROM legacy_span_versions
    QUALIFY row_number() OVER (
        PARTITION BY namespace, date, trace_id, span_id
        ORDER BY (status <> 'started') DESC, written_at DESC NULLS LAST
    ) = 1
)
-- Spark (span_tree.analytics.spark translates this file with sqlglot; _spark_sql.py
-- rewrites what does not transpile as is):
-- QUALIFY over * -> the star expanded to legacy_span_versions' columns (Spark before 4.2
-- has no QUALIFY, and sqlglot's subquery would leak its row-number column through *).
