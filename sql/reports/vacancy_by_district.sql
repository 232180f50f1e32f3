-- 空编率 by district and tier on a date: approved posts left empty (空编) and
-- posts filled beyond the quota (超编), summed per staffing pool (body × quota
-- type) so that one body's excess never hides another's vacancy.
-- City-wide bodies count as 市本级; street bodies count in their district.
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
),
pools AS (
    SELECT
        ap.org_id,
        ap.approved_count,
        coalesce(h.headcount, 0) AS headcount
    FROM approved ap
    LEFT JOIN headcount h ON h.org_id = ap.org_id AND h.quota_type = ap.quota_type
),
district_of AS (
    SELECT
        o.org_id,
        o.tier,
        CASE r.region_level
            WHEN '市' THEN '市本级'
            WHEN '区' THEN r.region_name
            ELSE d.region_name
        END AS district,
        CASE r.region_level WHEN '市' THEN 0 WHEN '区' THEN r.sort_order ELSE d.sort_order END AS district_order
    FROM org o
    JOIN region r ON r.region_code = o.region_code
    LEFT JOIN region d ON d.region_code = r.parent_code
)
SELECT
    g.district AS "区",
    g.tier AS "层级",
    sum(p.approved_count) AS "核定数",
    sum(p.headcount) AS "实有人数",
    sum(greatest(p.approved_count - p.headcount, 0)) AS "空编数",
    sum(greatest(p.headcount - p.approved_count, 0)) AS "超编数",
    round(100.0 * sum(greatest(p.approved_count - p.headcount, 0)) / sum(p.approved_count), 2) AS "空编率%"
FROM pools p
JOIN district_of g ON g.org_id = p.org_id
GROUP BY g.district, g.district_order, g.tier
ORDER BY g.district_order, CASE g.tier WHEN '市' THEN 1 WHEN '区' THEN 2 ELSE 3 END;
