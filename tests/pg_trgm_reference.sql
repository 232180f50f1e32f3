-- Reference values for bianzhi's pg_trgm-compatible functions (similarity,
-- word_similarity, strict_word_similarity, show_trgm), produced by a real
-- PostgreSQL 15 with pg_trgm, database encoding UTF8, LC_CTYPE C.UTF-8
-- (Debian 12, glibc 2.36). The unit tests in udfs/src/text/*.rs hard-code
-- the output of this script; a test with a live server can run it and
-- compare row by row.
--
--   psql -XAt -F '|' -f tests/pg_trgm_reference.sql
--
-- Output: one row per (function, a, b): function|a|b|result. Results of
-- type real are printed with PostgreSQL's shortest round-trip float4
-- output (extra_float_digits = 1), so they parse back to the exact f32.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
SET extra_float_digits = 1;

WITH pairs(id, a, b) AS (VALUES
    (1, 'word', 'two words'),
    (2, 'Hello, World!', 'hello world'),
    (3, 'PostgreSQL', 'postgres'),
    (4, '负责全市道路交通安全管理工作', '组织实施道路交通秩序管理'),
    (5, '负责全市档案监督管理工作', '负责全市价格监督管理工作'),
    (6, '', ''),
    (7, '', 'abc'),
    (8, 'a', 'a'),
    (9, 'café crème', 'CAFÉ creme'),
    (10, '道路交通 safety', '交通 Safety管理'),
    (11, 'İstanbul', 'istanbul'),
    (12, '123-456', '123 456'),
    (13, '...!!!', '???'),
    (14, '負責全市道路交通安全管理工作', '负责全市道路交通安全管理工作'),
    (15, 'kitten sitting', 'sitting kitten'),
    (16, '交通', '负责全市道路交通安全管理工作'),
    (17, 'ab', 'abc'),
    (18, '机构编制', '机构编制委员会办公室 机构 编制')
)
SELECT 'similarity' AS function, a, b, similarity(a, b)::text AS result FROM pairs
UNION ALL
SELECT 'word_similarity', a, b, word_similarity(a, b)::text FROM pairs
UNION ALL
SELECT 'strict_word_similarity', a, b, strict_word_similarity(a, b)::text FROM pairs
UNION ALL
SELECT 'trgm_match', a, b, (a % b)::text FROM pairs
ORDER BY 1, 2, 3;

SELECT 'show_trgm' AS function, t AS a, '' AS b, show_trgm(t)::text AS result
FROM (VALUES ('Hello, World!'), ('负责全市'), ('café'), (''), ('a'), ('İ'), ('a1 B2-c3'),
             ('道路 交通'), ('Ab'), ('x y')) AS texts(t)
ORDER BY 2;

-- Word characters (ISWORDCHR) under this locale, as code point ranges
-- "first last"; udfs/src/text/trigram_word_chars.rs holds this table.
-- WITH w AS (SELECT c FROM generate_series(1, 1114111) c
--            WHERE (c < 55296 OR c > 57343) AND show_trgm(chr(c)) <> '{}'),
--      g AS (SELECT c, c - row_number() OVER (ORDER BY c) AS grp FROM w)
-- SELECT min(c) || ' ' || max(c) FROM g GROUP BY grp ORDER BY min(c);
