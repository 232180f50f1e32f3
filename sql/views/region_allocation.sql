-- region_allocation (编制资源配置): one row per year, quota type and region —
-- every district (区) and every street or town (街道/镇) — with its residents,
-- approved quota and actual headcount at the year's end, both per 10,000
-- residents, the relative index against the pooled rate of its tier, the
-- vacancy rate and the rank. The table a BI tool charts directly; the table
-- function region_allocation(year [, quota_type]) is this view filtered.
--
-- Attribution: a district row counts the district's own bodies and those of
-- its streets (city bodies serve the whole city and are left out); a street
-- row counts the street's bodies. quota_type '全部' sums every type.
-- relative_index compares a region with all regions of its tier in that year
-- and type: 1 = the pooled rate, 0.5 = half the quota per resident.
-- vacancy_rate is a fraction (0.125 = 12.5%): posts left empty summed per
-- staffing pool (body × type), so one body's excess never hides another's
-- vacancy. rank_per_10k is 1 for the most approved quota per resident.
CREATE VIEW region_allocation AS
WITH year_end AS (
    SELECT DISTINCT
        stat_year,
        make_date(CAST(stat_year AS INT), 12, 31) AS as_of
    FROM region_stat_year
),
org_region AS (
    SELECT
        o.org_id,
        CASE WHEN r.region_level IN ('街道', '镇') THEN r.parent_code ELSE r.region_code END AS district_code,
        CASE WHEN r.region_level IN ('街道', '镇') THEN r.region_code END AS street_code
    FROM org o
    JOIN region r ON r.region_code = o.region_code
    WHERE r.region_level <> '市'
),
approved AS (
    SELECT y.stat_year, q.org_id, q.quota_type, sum(q.approved_count) AS approved_count
    FROM establishment_quota q
    CROSS JOIN year_end y
    WHERE q.valid_from <= y.as_of AND (q.valid_to IS NULL OR q.valid_to > y.as_of)
    GROUP BY y.stat_year, q.org_id, q.quota_type
),
in_post AS (
    SELECT y.stat_year, a.org_id, a.quota_type, count(*) AS headcount
    FROM staff_assignment a
    CROSS JOIN year_end y
    WHERE a.entry_date <= y.as_of AND (a.exit_date IS NULL OR a.exit_date > y.as_of)
    GROUP BY y.stat_year, a.org_id, a.quota_type
),
pools AS (
    SELECT
        coalesce(ap.stat_year, ip.stat_year) AS stat_year,
        coalesce(ap.org_id, ip.org_id) AS org_id,
        coalesce(ap.quota_type, ip.quota_type) AS quota_type,
        coalesce(ap.approved_count, 0) AS approved_count,
        coalesce(ip.headcount, 0) AS headcount
    FROM approved ap
    FULL JOIN in_post ip
        ON ip.stat_year = ap.stat_year AND ip.org_id = ap.org_id AND ip.quota_type = ap.quota_type
),
typed AS (
    SELECT stat_year, org_id, quota_type, approved_count, headcount,
           greatest(approved_count - headcount, 0) AS vacant
    FROM pools
    UNION ALL
    SELECT stat_year, org_id, '全部' AS quota_type, approved_count, headcount,
           greatest(approved_count - headcount, 0) AS vacant
    FROM pools
),
by_region AS (
    SELECT t.stat_year, t.quota_type, g.district_code AS region_code,
           sum(t.approved_count) AS approved_quota, sum(t.headcount) AS headcount, sum(t.vacant) AS vacant
    FROM typed t
    JOIN org_region g ON g.org_id = t.org_id
    GROUP BY t.stat_year, t.quota_type, g.district_code
    UNION ALL
    SELECT t.stat_year, t.quota_type, g.street_code AS region_code,
           sum(t.approved_count) AS approved_quota, sum(t.headcount) AS headcount, sum(t.vacant) AS vacant
    FROM typed t
    JOIN org_region g ON g.org_id = t.org_id
    WHERE g.street_code IS NOT NULL
    GROUP BY t.stat_year, t.quota_type, g.street_code
),
regions AS (
    SELECT
        s.stat_year,
        k.quota_type,
        CASE WHEN r.region_level = '区' THEN '区' ELSE '街道' END AS tier,
        r.region_level,
        r.region_code,
        r.region_name,
        CASE WHEN r.region_level = '区' THEN r.region_name ELSE d.region_name END AS district_name,
        r.sort_order,
        s.resident_population
    FROM region_stat_year s
    JOIN region r ON r.region_code = s.region_code
    LEFT JOIN region d ON d.region_code = r.parent_code
    CROSS JOIN (SELECT DISTINCT quota_type FROM typed) k
    WHERE r.region_level IN ('区', '街道', '镇')
),
measured AS (
    SELECT
        g.stat_year,
        g.quota_type,
        g.tier,
        g.region_level,
        g.region_code,
        g.region_name,
        g.district_name,
        g.sort_order,
        g.resident_population,
        coalesce(b.approved_quota, 0) AS approved_quota,
        coalesce(b.headcount, 0) AS headcount,
        coalesce(b.vacant, 0) AS vacant
    FROM regions g
    LEFT JOIN by_region b
        ON b.stat_year = g.stat_year AND b.quota_type = g.quota_type AND b.region_code = g.region_code
)
SELECT
    stat_year,
    quota_type,
    tier,
    region_level,
    region_code,
    region_name,
    district_name,
    sort_order,
    resident_population,
    approved_quota,
    headcount,
    per_10k(approved_quota, resident_population) AS approved_per_10k,
    per_10k(headcount, resident_population) AS headcount_per_10k,
    relative_index(
        approved_quota,
        resident_population,
        sum(approved_quota) OVER (PARTITION BY stat_year, quota_type, tier),
        sum(resident_population) OVER (PARTITION BY stat_year, quota_type, tier)
    ) AS relative_index,
    CASE WHEN approved_quota > 0 THEN CAST(vacant AS DOUBLE) / approved_quota END AS vacancy_rate,
    rank() OVER (
        PARTITION BY stat_year, quota_type, tier
        ORDER BY per_10k(approved_quota, resident_population) DESC
    ) AS rank_per_10k
FROM measured
