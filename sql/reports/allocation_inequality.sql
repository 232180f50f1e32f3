-- 编制配置均衡度 by year: how unequally approved quota per resident is spread
-- across districts and across streets, all measures weighted by residents
-- (0 = every region at the pooled rate). For streets, Theil T is split into
-- the part between districts and the part within them.
SELECT
    stat_year AS "年度",
    tier AS "层级",
    regions AS "地区数",
    round(approved_per_10k, 2) AS "每万人编制",
    round(gini, 4) AS "基尼系数",
    round(theil_t, 4) AS "泰尔T",
    round(theil_l, 4) AS "泰尔L",
    round(hoover, 4) AS "胡佛指数",
    round(cv, 4) AS "变异系数",
    round(theil_t_between_districts, 4) AS "泰尔T区间",
    round(theil_t_within_districts, 4) AS "泰尔T区内"
FROM region_allocation_summary
WHERE quota_type = '全部'
ORDER BY stat_year, CASE tier WHEN '区' THEN 1 ELSE 2 END
