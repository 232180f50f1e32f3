-- 编制增长对人口增长的弹性 per district, 2020–2024: the slope of ln(approved
-- quota) on ln(residents) over the year-end figures (regr_slope). 1 = quota
-- grows as fast as the population, 0 = it does not follow the population,
-- negative = it moves against it. NULL when the population did not change.
WITH series AS (
    SELECT
        region_name,
        sort_order,
        stat_year,
        resident_population,
        approved_quota,
        ln(approved_quota) AS ln_quota,
        ln(resident_population) AS ln_population
    FROM region_allocation
    WHERE quota_type = '全部' AND tier = '区' AND approved_quota > 0
)
SELECT
    region_name AS "区",
    sum(CASE WHEN stat_year = 2020 THEN resident_population END) AS "2020常住人口",
    sum(CASE WHEN stat_year = 2024 THEN resident_population END) AS "2024常住人口",
    round(100.0 * sum(CASE WHEN stat_year = 2024 THEN resident_population END)
        / sum(CASE WHEN stat_year = 2020 THEN resident_population END) - 100, 2) AS "人口增长%",
    sum(CASE WHEN stat_year = 2020 THEN approved_quota END) AS "2020核定编制",
    sum(CASE WHEN stat_year = 2024 THEN approved_quota END) AS "2024核定编制",
    round(100.0 * sum(CASE WHEN stat_year = 2024 THEN approved_quota END)
        / sum(CASE WHEN stat_year = 2020 THEN approved_quota END) - 100, 2) AS "编制增长%",
    round(regr_slope(ln_quota, ln_population), 3) AS "弹性"
FROM series
GROUP BY region_name, sort_order
ORDER BY sort_order
