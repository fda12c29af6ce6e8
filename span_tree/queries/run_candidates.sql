-- run_candidates: one row per span that can be the root of its trace's run (a run as
-- `traces` picks its root: a parentless span first, then the earliest): parentless spans
-- and local roots (seq 1, the first span of the trace in its process; seq 0, unknown,
-- counts as one). Every other span started inside its local root, so it is never the
-- earliest. Answers: the runs, for the dashboard to rank. A tenth of the spans or so,
-- and its rows of a partition depend only on that partition's files, so Store computes
-- it once per partition's set of files and remembers the rows (in the user's cache
-- directory).
CREATE OR REPLACE VIEW run_candidates AS
SELECT
    namespace, date, trace_id, app, name, status, duration_us,
    parent_id IS NOT NULL AS has_parent, start_time
FROM spans
WHERE parent_id IS NULL OR coalesce(seq, 0) <= 1
