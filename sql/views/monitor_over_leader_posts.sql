-- monitor_over_leader_posts 超职数: more leaders of one level (领导职务层次,
-- e.g. 处级副职) in a body than its approved leader posts (领导职数) on the last
-- day of a month.
-- How: leaders = roster assignments with that leader_level in force at month
-- end; posts = leadership_quota in force that day (0 when none).
-- Score: leaders − posts (the number of posts over).
CREATE VIEW monitor_over_leader_posts AS
WITH leaders AS (
    SELECT a.org_id, a.leader_level, c.period, c.month_end, count(*) AS leaders
    FROM staff_assignment a
    JOIN monitor_calendar c
        ON a.entry_date <= c.month_end AND (a.exit_date IS NULL OR a.exit_date > c.month_end)
    WHERE a.leader_level IS NOT NULL
    GROUP BY a.org_id, a.leader_level, c.period, c.month_end
),
posts AS (
    SELECT l.org_id, l.leader_level, l.period, l.leaders,
           coalesce(sum(q.approved_posts), 0) AS posts
    FROM leaders l
    LEFT JOIN leadership_quota q
        ON q.org_id = l.org_id AND q.leader_level = l.leader_level
       AND q.valid_from <= l.month_end AND (q.valid_to IS NULL OR q.valid_to > l.month_end)
    GROUP BY l.org_id, l.leader_level, l.period, l.leaders
)
SELECT
    'over_leader_posts' AS rule_code,
    org_id,
    CAST(NULL AS BIGINT) AS person_id,
    period,
    CAST(leaders - posts AS DOUBLE) AS score,
    '{"leader_level":"' || leader_level || '","posts":' || CAST(posts AS VARCHAR)
        || ',"leaders":' || CAST(leaders AS VARCHAR) || '}' AS detail
FROM posts
WHERE leaders > posts
