-- 在编人数 by quota type and tier on a date, against the approved counts.
WITH params AS (
    SELECT DATE '2024-12-31' AS as_of
),
approved AS (
    SELECT o.tier, q.quota_type, sum(q.approved_count) AS approved
    FROM establishment_quota q
    JOIN org o ON o.org_id = q.org_id
    CROSS JOIN params p
    WHERE q.valid_from <= p.as_of AND (q.valid_to IS NULL OR q.valid_to > p.as_of)
    GROUP BY o.tier, q.quota_type
),
headcount AS (
    SELECT o.tier, a.quota_type, count(*) AS headcount
    FROM staff_assignment a
    JOIN org o ON o.org_id = a.org_id
    CROSS JOIN params p
    WHERE a.entry_date <= p.as_of AND (a.exit_date IS NULL OR a.exit_date > p.as_of)
    GROUP BY o.tier, a.quota_type
)
SELECT
    ap.tier AS "层级",
    ap.quota_type AS "编制类型",
    ap.approved AS "核定数",
    coalesce(h.headcount, 0) AS "实有人数",
    round(100.0 * coalesce(h.headcount, 0) / ap.approved, 2) AS "使用率%"
FROM approved ap
LEFT JOIN headcount h ON h.tier = ap.tier AND h.quota_type = ap.quota_type
ORDER BY CASE ap.tier WHEN '市' THEN 1 WHEN '区' THEN 2 ELSE 3 END,
         CASE ap.quota_type WHEN '行政' THEN 1 WHEN '政法专项' THEN 2 WHEN '事业' THEN 3 WHEN '工勤' THEN 4 ELSE 5 END;
