-- 各区编制配置: districts in 2024, all quota types (bodies of the district and
-- its streets; city bodies are left out). Per 10,000 residents, the index
-- against the pooled rate of all districts (1 = the pooled rate), vacancy and
-- rank (1 = most quota per resident). The last row is all districts pooled.
SELECT
    "区", "常住人口", "核定编制", "实有人数", "每万人编制", "每万人实有", "相对指数", "空编率%", "排名"
FROM (
    SELECT
        sort_order,
        region_name AS "区",
        resident_population AS "常住人口",
        approved_quota AS "核定编制",
        headcount AS "实有人数",
        round(approved_per_10k, 2) AS "每万人编制",
        round(headcount_per_10k, 2) AS "每万人实有",
        round(relative_index, 3) AS "相对指数",
        round(100 * vacancy_rate, 2) AS "空编率%",
        rank_per_10k AS "排名"
    FROM region_allocation(2024)
    WHERE tier = '区'
    UNION ALL
    SELECT
        1000000 AS sort_order,
        '各区合计' AS "区",
        resident_population,
        approved_quota,
        headcount,
        round(approved_per_10k, 2),
        round(per_10k(headcount, resident_population), 2),
        CAST(1 AS DOUBLE),
        NULL,
        NULL
    FROM region_allocation_summary
    WHERE stat_year = 2024 AND quota_type = '全部' AND tier = '区'
) AS district_rows
ORDER BY sort_order
