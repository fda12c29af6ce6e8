-- spans: one row per span, its newest version.
-- A span still running when its trace's root ended is written twice (status 'started',
-- then finished); the finished version wins, then the newest written_at.
-- Answers everything: every other view reads this one.
CREATE OR REPLACE VIEW spans AS
SELECT *
FROM span_versions
QUALIFY row_number() OVER (
    PARTITION BY trace_id, span_id
    ORDER BY (status <> 'started') DESC, written_at DESC NULLS LAST
) = 1
