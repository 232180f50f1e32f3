-- monitor_pool_month (编制池·月末): for every body × quota type and month, the
-- approved count (核定数) in force on the last day of the month and the
-- headcount on the roster that day (entered on or before it, not yet exited).
CREATE VIEW monitor_pool_month AS
WITH approved AS (
    SELECT q.org_id, q.quota_type, c.period, sum(q.approved_count) AS approved
    FROM establishment_quota q
    JOIN monitor_calendar c
        ON q.valid_from <= c.month_end AND (q.valid_to IS NULL OR q.valid_to > c.month_end)
    GROUP BY q.org_id, q.quota_type, c.period
),
heads AS (
    SELECT a.org_id, a.quota_type, c.period, count(*) AS headcount
    FROM staff_assignment a
    JOIN monitor_calendar c
        ON a.entry_date <= c.month_end AND (a.exit_date IS NULL OR a.exit_date > c.month_end)
    GROUP BY a.org_id, a.quota_type, c.period
)
SELECT
    coalesce(q.org_id, h.org_id) AS org_id,
    coalesce(q.quota_type, h.quota_type) AS quota_type,
    coalesce(q.period, h.period) AS period,
    CAST(coalesce(q.approved, 0) AS BIGINT) AS approved,
    coalesce(h.headcount, 0) AS headcount
FROM approved q
FULL JOIN heads h
    ON q.org_id = h.org_id AND q.quota_type = h.quota_type AND q.period = h.period
