-- monitor_payer_mismatch 发薪单位与在编单位不一致: a salary is paid in a month by
-- a body other than the one whose roster holds the person on that month's 15th
-- (a wrong payer, a second payer, or an old body still paying after a transfer).
-- How: monitor_pay_month joined with monitor_roster_month on ID digest and
-- month, paying body <> body of record. org_id is the paying body.
-- Score: the amount that body paid (yuan).
CREATE VIEW monitor_payer_mismatch AS
SELECT
    'payer_mismatch' AS rule_code,
    pay.org_id,
    r.person_id,
    pay.period,
    CAST(pay.amount AS DOUBLE) AS score,
    '{"registered_org_id":' || CAST(r.org_id AS VARCHAR) || ',"amount":'
        || CAST(pay.amount AS VARCHAR) || '}' AS detail
FROM monitor_pay_month pay
JOIN monitor_roster_month r ON r.id_hash = pay.id_hash AND r.period = pay.period
WHERE pay.org_id IS DISTINCT FROM r.org_id
