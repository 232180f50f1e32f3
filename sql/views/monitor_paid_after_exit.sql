-- monitor_paid_after_exit 死亡、退休、出编后仍发薪: a salary is paid in a month
-- to a person who, on that month's 15th, is dead or whose last post ended
-- (退休, 辞职, 辞退, 死亡 …) and who holds no other post.
-- How: the payroll rows of monitor_paid_not_on_roster whose person has a
-- death date or a roster exit on or before the 15th.
-- Score: months since the exit (1 = the first month after it).
CREATE VIEW monitor_paid_after_exit AS
WITH last_exit AS (
    SELECT person_id, max(exit_date) AS exit_date
    FROM staff_assignment
    WHERE exit_date IS NOT NULL
    GROUP BY person_id
)
SELECT
    'paid_after_exit' AS rule_code,
    pay.org_id,
    p.person_id,
    pay.period,
    CAST((extract(year FROM pay.period) * 12 + extract(month FROM pay.period))
       - (extract(year FROM coalesce(p.death_date, e.exit_date)) * 12
          + extract(month FROM coalesce(p.death_date, e.exit_date))) AS DOUBLE) AS score,
    '{"exit_date":' || coalesce('"' || CAST(e.exit_date AS VARCHAR) || '"', 'null')
        || ',"death_date":' || coalesce('"' || CAST(p.death_date AS VARCHAR) || '"', 'null')
        || ',"amount":' || CAST(pay.amount AS VARCHAR) || '}' AS detail
FROM monitor_pay_month pay
JOIN person p ON p.id_hash = pay.id_hash
LEFT JOIN last_exit e ON e.person_id = p.person_id
WHERE (p.death_date <= CAST(pay.period + INTERVAL '14 days' AS DATE)
       OR e.exit_date <= CAST(pay.period + INTERVAL '14 days' AS DATE))
  AND NOT EXISTS (
    SELECT 1 FROM monitor_roster_month r
    WHERE r.person_id = p.person_id AND r.period = pay.period
)
