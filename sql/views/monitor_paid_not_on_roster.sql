-- monitor_paid_not_on_roster 财政发薪但实名制无此人: the finance payroll pays a
-- salary (应发工资) in a month to an ID that holds no post on the real-name
-- roster on that month's 15th — a fabricated payee (冒名饷), or someone who
-- has died, retired or left (see monitor_paid_after_exit).
-- How: monitor_pay_month anti-joined with monitor_roster_month on ID digest
-- and month; person_id is NULL when the ID is unknown to the person table.
-- Score: the amount paid that month (yuan).
CREATE VIEW monitor_paid_not_on_roster AS
SELECT
    'paid_not_on_roster' AS rule_code,
    pay.org_id,
    p.person_id,
    pay.period,
    CAST(pay.amount AS DOUBLE) AS score,
    '{"id_hash":"' || pay.id_hash || '","amount":' || CAST(pay.amount AS VARCHAR)
        || ',"known_person":' || CASE WHEN p.person_id IS NULL THEN 'false' ELSE 'true' END
        || '}' AS detail
FROM monitor_pay_month pay
LEFT JOIN person p ON p.id_hash = pay.id_hash
WHERE NOT EXISTS (
    SELECT 1 FROM monitor_roster_month r
    WHERE r.id_hash = pay.id_hash AND r.period = pay.period
)
