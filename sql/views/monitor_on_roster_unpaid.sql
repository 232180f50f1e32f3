-- monitor_on_roster_unpaid 在编但连续三个月无工资或社保: a person on the roster
-- (on the 15th) for three consecutive months who received no salary in any of
-- them, or had no pension contribution (养老保险缴费) in any of them — 挂名,
-- 停薪, or someone who has left without the roster knowing.
-- How: monitor_roster_month flagged with the payroll and social-insurance feeds;
-- a row for the third month of every run of three months (the two before must
-- be the two calendar months before).
-- Score: the number of missing feeds (1 = salary or insurance, 2 = both).
CREATE VIEW monitor_on_roster_unpaid AS
WITH paid AS (
    SELECT DISTINCT id_hash, period FROM monitor_pay_month
),
insured AS (
    SELECT DISTINCT id_hash, period FROM external_roster WHERE source = '社会保险'
),
flagged AS (
    SELECT
        r.person_id,
        r.org_id,
        r.period,
        CASE WHEN pay.id_hash IS NULL THEN 1 ELSE 0 END AS no_pay,
        CASE WHEN ins.id_hash IS NULL THEN 1 ELSE 0 END AS no_insurance
    FROM monitor_roster_month r
    LEFT JOIN paid pay ON pay.id_hash = r.id_hash AND pay.period = r.period
    LEFT JOIN insured ins ON ins.id_hash = r.id_hash AND ins.period = r.period
),
runs AS (
    SELECT
        person_id,
        org_id,
        period,
        lag(period, 2) OVER (PARTITION BY person_id ORDER BY period) AS period_2,
        sum(no_pay) OVER (PARTITION BY person_id ORDER BY period
                          ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS months_no_pay,
        sum(no_insurance) OVER (PARTITION BY person_id ORDER BY period
                                ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS months_no_insurance
    FROM flagged
)
SELECT
    'on_roster_unpaid' AS rule_code,
    org_id,
    person_id,
    period,
    CAST(CASE WHEN months_no_pay = 3 THEN 1 ELSE 0 END
       + CASE WHEN months_no_insurance = 3 THEN 1 ELSE 0 END AS DOUBLE) AS score,
    '{"salary_missing":' || CASE WHEN months_no_pay = 3 THEN 'true' ELSE 'false' END
        || ',"insurance_missing":' || CASE WHEN months_no_insurance = 3 THEN 'true' ELSE 'false' END
        || ',"since":"' || CAST(period_2 AS VARCHAR) || '"}' AS detail
FROM runs
WHERE period_2 = CAST(period - INTERVAL '2 months' AS DATE)
  AND (months_no_pay = 3 OR months_no_insurance = 3)
