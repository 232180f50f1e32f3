-- monitor_pay_month (发薪·月): salary rows of the finance payroll feed
-- (财政统发工资, item 应发工资) — 编外人员劳务费 holds no quota and is left out —
-- one row per ID digest, paying body and month.
CREATE VIEW monitor_pay_month AS
SELECT id_hash, org_id, period, sum(amount) AS amount
FROM external_roster
WHERE source = '财政统发工资' AND item = '应发工资'
GROUP BY id_hash, org_id, period
