-- spans: one row per span, its newest version.
-- A span still running when its trace's root ended is written twice (status 'started',
-- then finished); the finished version wins, then the newest written_at.
-- Answers everything: every other view reads this one. Only span ids listed in
-- span_duplicates are deduplicated; versions of a span share its namespace and date (the
-- date of its start), so partitioning by them too changes nothing but lets filters on
-- namespace and date reach the files (partition pruning).
CREATE OR REPLACE VIEW spans AS
SELECT versions.*
FROM span_versions AS versions
ANTI JOIN span_duplicates USING (span_id)
UNION ALL (
    SELECT versions.*
    FROM span_versions AS versions
    SEMI JOIN span_duplicates USING (span_id)
    QUALIFY row_number() OVER (
        PARTITION BY namespace, date, trace_id, span_id
        ORDER BY (status <> 'started') DESC, written_at DESC NULLS LAST
    ) = 1
)
