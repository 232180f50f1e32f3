-- region_allocation_summary (配置均衡度): one row per year, quota type and
-- tier (区 across districts, 街道 across streets and towns) with the pooled
-- rate and how unequal the allocation is, every measure weighted by residents:
-- gini of approved quota per resident (0 = every region the same rate),
-- Theil T and L, the coefficient of variation of the rate, and the Hoover
-- index (the share of the quota that would have to move for every region to
-- have the pooled rate). For streets, Theil T is split into the part between
-- districts and the part within them. The same for actual headcount.
CREATE VIEW region_allocation_summary AS
SELECT
    stat_year,
    quota_type,
    tier,
    count(*) AS regions,
    sum(resident_population) AS resident_population,
    sum(approved_quota) AS approved_quota,
    sum(headcount) AS headcount,
    per_10k(sum(approved_quota), sum(resident_population)) AS approved_per_10k,
    gini(approved_per_10k, resident_population) AS gini,
    theil_t(approved_quota, resident_population) AS theil_t,
    theil_l(approved_quota, resident_population) AS theil_l,
    cv(approved_per_10k, resident_population) AS cv,
    hoover(approved_quota, resident_population) AS hoover,
    CASE WHEN tier = '街道'
        THEN theil_decompose(approved_quota, resident_population, district_name)['between']
    END AS theil_t_between_districts,
    CASE WHEN tier = '街道'
        THEN theil_decompose(approved_quota, resident_population, district_name)['within']
    END AS theil_t_within_districts,
    gini(headcount_per_10k, resident_population) AS gini_headcount,
    hoover(headcount, resident_population) AS hoover_headcount
FROM region_allocation
GROUP BY stat_year, quota_type, tier
