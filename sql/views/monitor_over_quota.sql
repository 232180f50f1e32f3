-- monitor_over_quota 超编: a body's headcount on one quota type exceeds the
-- approved count (核定数) on the last day of a month.
-- How: monitor_pool_month, headcount > approved, every month it holds.
-- Score: the excess as a share of the approved count (0.05 = 5% over);
-- a pool with no approved count at all scores the headcount itself.
CREATE VIEW monitor_over_quota AS
SELECT
    'over_quota' AS rule_code,
    org_id,
    CAST(NULL AS BIGINT) AS person_id,
    period,
    CAST(headcount - approved AS DOUBLE) / CAST(greatest(approved, 1) AS DOUBLE) AS score,
    '{"quota_type":"' || quota_type || '","approved":' || CAST(approved AS VARCHAR)
        || ',"headcount":' || CAST(headcount AS VARCHAR) || '}' AS detail
FROM monitor_pool_month
WHERE headcount > approved
