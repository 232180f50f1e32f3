-- monitor_multiple_payers 多头领薪: one ID is paid a salary by two or more bodies
-- in the same month (多头饷).
-- How: monitor_pay_month grouped by ID digest and month, more than one paying
-- body. org_id is a paying body other than the body of record on the roster
-- (the smallest such id), or the smallest payer when the ID holds no post.
-- Score: the number of paying bodies.
CREATE VIEW monitor_multiple_payers AS
WITH payers AS (
    SELECT pay.id_hash, pay.period, pay.org_id, r.person_id, r.org_id AS roster_org_id
    FROM monitor_pay_month pay
    LEFT JOIN monitor_roster_month r ON r.id_hash = pay.id_hash AND r.period = pay.period
),
grouped AS (
    SELECT
        id_hash,
        period,
        max(person_id) AS person_id,
        max(roster_org_id) AS roster_org_id,
        count(DISTINCT org_id) AS payers,
        min(CASE WHEN roster_org_id IS NULL OR org_id <> roster_org_id THEN org_id END) AS other_payer,
        min(org_id) AS first_payer
    FROM payers
    GROUP BY id_hash, period
    HAVING count(DISTINCT org_id) > 1
)
SELECT
    'multiple_payers' AS rule_code,
    coalesce(g.other_payer, g.first_payer) AS org_id,
    coalesce(g.person_id, p.person_id) AS person_id,
    g.period,
    CAST(g.payers AS DOUBLE) AS score,
    '{"id_hash":"' || g.id_hash || '","payers":' || CAST(g.payers AS VARCHAR)
        || ',"registered_org_id":' || coalesce(CAST(g.roster_org_id AS VARCHAR), 'null') || '}' AS detail
FROM grouped g
LEFT JOIN person p ON p.id_hash = g.id_hash
