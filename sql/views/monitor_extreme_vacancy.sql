-- monitor_extreme_vacancy 空编过多: more than half of a pool's approved posts
-- are vacant (空编率 > 50%) on the last day of a month, for pools of at least
-- 10 approved (a small pool's rate swings with one person).
-- Normal pools run 80–98% full, so 50% separates a pool that has stopped
-- filling its posts (or whose posts exist on paper only) from turnover.
-- Score: the vacancy rate (approved − headcount) / approved.
CREATE VIEW monitor_extreme_vacancy AS
SELECT
    'extreme_vacancy' AS rule_code,
    org_id,
    CAST(NULL AS BIGINT) AS person_id,
    period,
    CAST(approved - headcount AS DOUBLE) / CAST(approved AS DOUBLE) AS score,
    '{"quota_type":"' || quota_type || '","approved":' || CAST(approved AS VARCHAR)
        || ',"headcount":' || CAST(headcount AS VARCHAR) || '}' AS detail
FROM monitor_pool_month
WHERE approved >= 10 AND CAST(approved - headcount AS DOUBLE) > 0.5 * CAST(approved AS DOUBLE)
