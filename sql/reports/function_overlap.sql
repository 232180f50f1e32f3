-- 职能交叉: pairs of departments of one region (a district, or the city) whose
-- current 三定 duty clauses overlap, ranked by how many clauses overlap, with the
-- overlapping clauses side by side. Two clauses overlap when func_similarity
-- (IDF-weighted, so shared boilerplate counts little) is at least 0.75: change
-- the threshold in similar_pairs to widen or narrow. Only bodies of their own
-- (no 内设机构) and clauses in force count. A clause whose look-alikes sit in two
-- or more other bodies of the region is a common clause (完成…交办的其他任务,
-- 群团 boilerplate), not an overlap, and is left out.
WITH duty AS (
    SELECT d.duty_id, d.duty_text, o.org_id, o.region_code
    FROM org_duty d
    JOIN org o ON o.org_id = d.org_id
    WHERE d.valid_to IS NULL AND o.valid_to IS NULL
      AND o.parent_org_id IS NULL AND o.org_kind <> '内设机构'
),
clause_pair AS (
    SELECT a.duty_id AS a_duty, b.duty_id AS b_duty, a.org_id AS a_org, b.org_id AS b_org,
           a.region_code, p.score
    FROM similar_pairs('org_duty', 'duty_id', 'duty_text', 0.75) p
    JOIN duty a ON a.duty_id = p.left_id
    JOIN duty b ON b.duty_id = p.right_id
    WHERE a.region_code = b.region_code AND a.org_id <> b.org_id
),
spread AS (
    SELECT duty_id, count(DISTINCT other_org) AS other_bodies
    FROM (
        SELECT a_duty AS duty_id, b_org AS other_org FROM clause_pair
        UNION ALL
        SELECT b_duty AS duty_id, a_org AS other_org FROM clause_pair
    ) sides
    GROUP BY duty_id
),
overlap AS (
    SELECT cp.region_code, cp.score,
           CASE WHEN cp.a_org < cp.b_org THEN cp.a_org ELSE cp.b_org END AS org_1,
           CASE WHEN cp.a_org < cp.b_org THEN cp.b_org ELSE cp.a_org END AS org_2,
           CASE WHEN cp.a_org < cp.b_org THEN cp.a_duty ELSE cp.b_duty END AS duty_1,
           CASE WHEN cp.a_org < cp.b_org THEN cp.b_duty ELSE cp.a_duty END AS duty_2
    FROM clause_pair cp
    JOIN spread sa ON sa.duty_id = cp.a_duty
    JOIN spread sb ON sb.duty_id = cp.b_duty
    WHERE sa.other_bodies = 1 AND sb.other_bodies = 1
),
ranked AS (
    SELECT ov.*, count(*) OVER (PARTITION BY org_1, org_2) AS clauses
    FROM overlap ov
)
SELECT
    r.region_name AS "区划",
    o1.org_name AS "部门甲",
    o2.org_name AS "部门乙",
    rk.clauses AS "交叉条款数",
    round(rk.score, 3) AS "相似度",
    rk.duty_1 AS "条目甲",
    d1.duty_text AS "部门甲职责",
    rk.duty_2 AS "条目乙",
    d2.duty_text AS "部门乙职责"
FROM ranked rk
JOIN org o1 ON o1.org_id = rk.org_1
JOIN org o2 ON o2.org_id = rk.org_2
JOIN org_duty d1 ON d1.duty_id = rk.duty_1
JOIN org_duty d2 ON d2.duty_id = rk.duty_2
LEFT JOIN region r ON r.region_code = rk.region_code
ORDER BY "交叉条款数" DESC, "区划", "部门甲", "部门乙", "相似度" DESC, "条目甲", "条目乙";
