-- span_duplicates: one row per span id written more than once (started then finished,
-- or a batch delivered twice). Answers: which spans need the newest-version rule.
-- Usually a tiny set, so `spans` passes every other row through without deduplicating;
-- Store keeps it as a table, computed once per file list, instead of per query.
CREATE OR REPLACE VIEW span_duplicates AS
SELECT span_id
FROM span_versions
WHERE span_id IS NOT NULL
GROUP BY span_id
HAVING count(*) > 1
