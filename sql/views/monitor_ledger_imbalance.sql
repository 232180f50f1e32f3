-- monitor_ledger_imbalance 台账不平: for a body × quota type at the end of a
-- month, the opening balance (期初) plus every ledger movement effective by then
-- (核增, 核减, 划入, 划出, 调剂, 收回 …) differs from the approved count in force.
-- How: running sum of quota_ledger.delta per pool up to each month end, full
-- join with monitor_pool_month's approved count (0 when none is in force).
-- Score: ledger balance − approved count.
CREATE VIEW monitor_ledger_imbalance AS
WITH ledger AS (
    SELECT l.org_id, l.quota_type, c.period, sum(l.delta) AS balance
    FROM quota_ledger l
    JOIN monitor_calendar c ON l.effective_date <= c.month_end
    GROUP BY l.org_id, l.quota_type, c.period
),
compared AS (
    SELECT
        coalesce(l.org_id, q.org_id) AS org_id,
        coalesce(l.quota_type, q.quota_type) AS quota_type,
        coalesce(l.period, q.period) AS period,
        CAST(coalesce(l.balance, 0) AS BIGINT) AS balance,
        coalesce(q.approved, 0) AS approved
    FROM ledger l
    FULL JOIN (SELECT org_id, quota_type, period, approved FROM monitor_pool_month
               WHERE approved > 0) q
        ON l.org_id = q.org_id AND l.quota_type = q.quota_type AND l.period = q.period
)
SELECT
    'ledger_imbalance' AS rule_code,
    org_id,
    CAST(NULL AS BIGINT) AS person_id,
    period,
    CAST(balance - approved AS DOUBLE) AS score,
    '{"quota_type":"' || quota_type || '","ledger_balance":' || CAST(balance AS VARCHAR)
        || ',"approved":' || CAST(approved AS VARCHAR) || '}' AS detail
FROM compared
WHERE balance <> approved
