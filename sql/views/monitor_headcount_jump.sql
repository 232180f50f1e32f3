-- monitor_headcount_jump 在编人数异常突变: a pool's month-end headcount rises
-- in one month by far more than its own history of monthly changes allows.
-- How: per body × quota type, the change from the previous month and its
-- modified z-score against the 12 changes before (mom_jump_z); an alert when
-- the rise is at least 5 people and 15% of the approved count, and the
-- z-score is at least 3.5 (or undefined because the history never moved).
-- Left out: rises that follow a raise of the approved count in the same month
-- or the three before (核增, 调剂, 划入: new posts being filled), rises that end
-- above the approved count (reported by monitor_over_quota), and 教育 (school)
-- pools in August and September, when schools hire the year's teachers at once.
-- Score: the rise as a share of the approved count.
CREATE VIEW monitor_headcount_jump AS
WITH series AS (
    SELECT
        m.org_id,
        m.quota_type,
        m.period,
        m.approved,
        m.headcount,
        m.headcount - lag(m.headcount) OVER w AS rise,
        lag(m.period) OVER w AS previous_period,
        mom_jump_z(m.headcount, 12, 6) OVER w AS z,
        min(m.approved) OVER (PARTITION BY m.org_id, m.quota_type ORDER BY m.period
                              ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS approved_before
    FROM monitor_pool_month m
    WINDOW w AS (PARTITION BY m.org_id, m.quota_type ORDER BY m.period)
)
SELECT
    'headcount_jump' AS rule_code,
    s.org_id,
    CAST(NULL AS BIGINT) AS person_id,
    s.period,
    CAST(s.rise AS DOUBLE) / CAST(greatest(s.approved, 1) AS DOUBLE) AS score,
    '{"quota_type":"' || s.quota_type || '","before":' || CAST(s.headcount - s.rise AS VARCHAR)
        || ',"after":' || CAST(s.headcount AS VARCHAR) || ',"approved":'
        || CAST(s.approved AS VARCHAR) || ',"z":' || coalesce(CAST(round(s.z, 2) AS VARCHAR), 'null')
        || '}' AS detail
FROM series s
JOIN org o ON o.org_id = s.org_id
WHERE s.previous_period = CAST(s.period - INTERVAL '1 month' AS DATE)
  AND s.rise >= 5
  AND CAST(s.rise AS DOUBLE) >= 0.15 * CAST(s.approved AS DOUBLE)
  AND (s.z IS NULL OR s.z >= 3.5)
  AND s.headcount <= s.approved
  AND s.approved_before = s.approved
  AND NOT (o.sector = '教育' AND extract(month FROM s.period) IN (8, 9))
