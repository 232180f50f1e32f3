-- 超编单位: bodies whose headcount exceeds the approved quota on a date, by quota type.
-- Change the date in `params` to look at another day. Headcount counts every
-- 实名制 record in force that day (entry_date <= day < exit_date).
WITH params AS (
    SELECT DATE '2024-12-31' AS as_of
),
approved AS (
    SELECT q.org_id, q.quota_type, q.approved_count
    FROM establishment_quota q CROSS JOIN params p
    WHERE q.valid_from <= p.as_of AND (q.valid_to IS NULL OR q.valid_to > p.as_of)
),
headcount AS (
    SELECT a.org_id, a.quota_type, count(*) AS headcount
    FROM staff_assignment a CROSS JOIN params p
    WHERE a.entry_date <= p.as_of AND (a.exit_date IS NULL OR a.exit_date > p.as_of)
    GROUP BY a.org_id, a.quota_type
)
SELECT
    o.org_name AS "单位",
    o.tier AS "层级",
    r.region_name AS "区划",
    ap.quota_type AS "编制类型",
    ap.approved_count AS "核定数",
    h.headcount AS "实有人数",
    h.headcount - ap.approved_count AS "超编人数"
FROM approved ap
JOIN headcount h ON h.org_id = ap.org_id AND h.quota_type = ap.quota_type
JOIN org o ON o.org_id = ap.org_id
LEFT JOIN region r ON r.region_code = o.region_code
WHERE h.headcount > ap.approved_count
ORDER BY "超编人数" DESC, "单位", "编制类型";
