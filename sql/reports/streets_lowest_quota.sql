-- 每万人编制最少的十个街道: the ten streets and towns with the least approved
-- quota per resident at the end of 2024 (all types, the street's own bodies),
-- with their residents' growth since 2020.
SELECT
    a.district_name AS "区",
    a.region_name AS "街道",
    a.resident_population AS "常住人口",
    a.approved_quota AS "核定编制",
    round(a.approved_per_10k, 2) AS "每万人编制",
    round(a.relative_index, 3) AS "相对指数",
    round(100.0 * (a.resident_population - b.resident_population) / b.resident_population, 2)
        AS "人口增长%(2020-2024)"
FROM region_allocation(2024) a
LEFT JOIN region_stat_year b ON b.region_code = a.region_code AND b.stat_year = 2020
WHERE a.tier = '街道'
ORDER BY a.approved_per_10k, a.region_code
LIMIT 10
