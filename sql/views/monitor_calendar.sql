-- monitor_calendar (监测月份): the months the monitoring rules look at — every
-- month of the finance payroll feed (财政统发工资) — with the 15th (the day
-- whose roster decides who is paid that month) and the last day of the month
-- (headcount and quota snapshots).
CREATE VIEW monitor_calendar AS
SELECT
    period,
    CAST(period + INTERVAL '14 days' AS DATE) AS pay_day,
    CAST(period + INTERVAL '1 month' - INTERVAL '1 day' AS DATE) AS month_end
FROM (SELECT DISTINCT period FROM external_roster WHERE source = '财政统发工资') months
