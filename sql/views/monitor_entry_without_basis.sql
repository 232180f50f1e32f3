-- monitor_entry_without_basis 入编无用编通知或台账依据: a roster entry (入编, 调入,
-- 划转) inside the monitored months whose 用编通知 number is missing or names no
-- document in the document register (文件).
-- How: staff_assignment entries in a month of monitor_calendar, the entry
-- document number anti-joined with document.doc_number. period is the month
-- of entry. Score: 1 when the number is missing, 0.5 when it names no document.
CREATE VIEW monitor_entry_without_basis AS
SELECT
    'entry_without_basis' AS rule_code,
    a.org_id,
    a.person_id,
    c.period,
    CAST(CASE WHEN a.entry_doc_number IS NULL THEN 1.0 ELSE 0.5 END AS DOUBLE) AS score,
    '{"assignment_id":' || CAST(a.assignment_id AS VARCHAR) || ',"entry_date":"'
        || CAST(a.entry_date AS VARCHAR) || '","doc_number":'
        || coalesce('"' || a.entry_doc_number || '"', 'null') || '}' AS detail
FROM staff_assignment a
JOIN monitor_calendar c ON date_trunc('month', a.entry_date) = c.period
WHERE a.entry_doc_number IS NULL
   OR NOT EXISTS (SELECT 1 FROM document d WHERE d.doc_number = a.entry_doc_number)
