-- 编制领域区位商: for each district and sector, LQ = (S_ik / S_i) / (S_k / S)
-- where S is approved quota at the end of 2024 (all types), i the district
-- (its own and its streets' bodies), k the sector. LQ > 1: the district puts a
-- larger share of its quota into the sector than the districts together do.
WITH params AS (
    SELECT DATE '2024-12-31' AS as_of
),
approved AS (
    SELECT q.org_id, sum(q.approved_count) AS approved
    FROM establishment_quota q CROSS JOIN params p
    WHERE q.valid_from <= p.as_of AND (q.valid_to IS NULL OR q.valid_to > p.as_of)
    GROUP BY q.org_id
),
cells AS (
    SELECT
        CASE WHEN r.region_level = '区' THEN r.region_name ELSE d.region_name END AS district,
        CASE WHEN r.region_level = '区' THEN r.sort_order ELSE d.sort_order END AS district_order,
        o.sector,
        sum(a.approved) AS quota
    FROM approved a
    JOIN org o ON o.org_id = a.org_id
    JOIN region r ON r.region_code = o.region_code
    LEFT JOIN region d ON d.region_code = r.parent_code
    WHERE r.region_level <> '市'
    GROUP BY 1, 2, 3
)
SELECT
    district AS "区",
    sector AS "领域",
    quota AS "核定编制",
    round(100.0 * quota / sum(quota) OVER (PARTITION BY district), 2) AS "区内占比%",
    round(
        (CAST(quota AS DOUBLE) / sum(quota) OVER (PARTITION BY district))
        / (CAST(sum(quota) OVER (PARTITION BY sector) AS DOUBLE) / sum(quota) OVER ()),
        3
    ) AS "区位商"
FROM cells
ORDER BY district_order, "区位商" DESC, sector
