-- monitor_roster_month (在编名册·月): who is on the real-name roster (实名制) in
-- each month, by the assignment in force on the 15th — the day whose roster
-- decides who is paid that month. One row per person and month.
CREATE VIEW monitor_roster_month AS
SELECT
    a.person_id,
    p.id_hash,
    a.org_id,
    a.quota_type,
    a.assignment_id,
    c.period
FROM staff_assignment a
JOIN person p ON p.person_id = a.person_id
JOIN monitor_calendar c
    ON a.entry_date <= c.pay_day AND (a.exit_date IS NULL OR a.exit_date > c.pay_day)
