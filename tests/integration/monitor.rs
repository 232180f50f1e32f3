//! `bianzhi monitor` on generated data: alerts written, a second run adds
//! nothing, and the alerts are read over the wire. On the hand-made city of
//! tests/slt/fixtures/monitor_city.slt: `--as-of` limits the alerts to the
//! months up to it, and an alert is resolved when a correction ends its
//! condition and reopened when the condition holds again.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bianzhi_engine::monitor::{self, MonitorReport, MONITOR_RULES, STATUS_OPEN, STATUS_RESOLVED};
use bianzhi_engine::session::Output as SessionOutput;
use bianzhi_engine::{Engine, EngineOptions, Session, SessionIdentity, Settings};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use tokio_postgres::NoTls;

fn bianzhi(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bianzhi"))
        .args(args)
        .env("BIANZHI_LOG", "error")
        .output()
        .expect("run bianzhi");
    assert!(
        out.status.success(),
        "bianzhi {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `new` column of the per-rule summary, by rule code.
fn new_per_rule(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let code = fields.next()?;
            let new = fields.next()?.parse().ok()?;
            Some((code.to_string(), new))
        })
        .collect()
}

struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_twice_adds_nothing_and_alerts_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    bianzhi(&[
        "generate",
        "--scale",
        "0.02",
        "--seed",
        "3",
        "--data-dir",
        data,
    ]);

    let first =
        String::from_utf8_lossy(&bianzhi(&["monitor", "--data-dir", data]).stdout).to_string();
    let first_new = new_per_rule(&first);
    assert_eq!(first_new.len(), 11, "one line per rule: {first}");
    let raised: u64 = first_new.iter().map(|(_, n)| n).sum();
    assert!(raised > 0, "planted anomalies raise alerts: {first}");

    let second =
        String::from_utf8_lossy(&bianzhi(&["monitor", "--data-dir", data]).stdout).to_string();
    for (code, new) in new_per_rule(&second) {
        assert_eq!(new, 0, "{code}: the second run adds nothing\n{second}");
    }
    assert!(
        second.contains(&format!("{raised} alerts in the alert table")),
        "{second}"
    );

    // Served over the wire: one row per key, all open, each rule named.
    let address_file = dir.path().join("address");
    let child = Command::new(env!("CARGO_BIN_EXE_bianzhi"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--auth",
            "trust",
            "--data-dir",
            data,
        ])
        .arg("--address-file")
        .arg(&address_file)
        .env("BIANZHI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = ServerProcess(child);
    let start = Instant::now();
    let address = loop {
        if let Ok(text) = std::fs::read_to_string(&address_file) {
            if !text.trim().is_empty() {
                break text.trim().to_string();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no address file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (host, port) = address.rsplit_once(':').unwrap();
    let (client, connection) = tokio_postgres::connect(
        &format!("host={host} port={port} user=analyst dbname=bianzhi"),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT alert_key), \
             sum(CASE WHEN status = '未解除' THEN 1 ELSE 0 END) FROM alert",
            &[],
        )
        .await
        .unwrap();
    let (rows, keys, open): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(rows as u64, raised);
    assert_eq!(keys, rows, "no duplicate keys");
    assert_eq!(open, rows, "nothing resolved on unchanged data");
    let names = client
        .query(
            "SELECT DISTINCT rule_code, rule_name FROM alert ORDER BY rule_code",
            &[],
        )
        .await
        .unwrap();
    assert!(names
        .iter()
        .any(|r| r.get::<_, &str>(0) == "paid_not_on_roster"
            && r.get::<_, &str>(1) == "财政发薪但实名制无此人"));
}

/// The hand-made city the monitoring .slt files use: three bodies, payroll
/// months 2024-01 to 2024-04 (its header comment lists what each rule finds).
const MONITOR_CITY: &str = include_str!("../slt/fixtures/monitor_city.slt");

/// The SQL of the fixture's `statement ok` records.
fn monitor_city_statements() -> Vec<String> {
    MONITOR_CITY
        .split("\n\n")
        .filter_map(|record| {
            let lines: Vec<&str> = record
                .lines()
                .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
                .collect();
            let (first, sql) = lines.split_first()?;
            (first.trim() == "statement ok").then(|| sql.join("\n"))
        })
        .collect()
}

/// A fresh data directory holding the monitor city, and a session on it.
async fn monitor_city(dir: &std::path::Path) -> (Engine, Session) {
    let location = dir.join("data");
    let engine = Engine::open_with(location.to_str().unwrap(), EngineOptions::default())
        .await
        .unwrap();
    let session = Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
    let statements = monitor_city_statements();
    assert_eq!(statements.len(), 8, "the fixture's eight INSERTs");
    for sql in &statements {
        run(&session, sql).await;
    }
    (engine, session)
}

async fn run(session: &Session, sql: &str) -> Vec<RecordBatch> {
    match session.run_one(sql).await {
        Ok(SessionOutput::Rows { batches, .. }) => batches,
        Ok(_) => Vec::new(),
        Err(e) => panic!("{sql}: [{}] {}", e.code, e.message),
    }
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// One row of `alert`, as the tests look at it.
#[derive(Debug, Clone, PartialEq)]
struct AlertState {
    period: String,
    status: String,
    first_seen_at: i64,
    last_seen_at: i64,
    resolved_at: Option<i64>,
}

/// Every row of `alert` by key (microseconds for the timestamps).
async fn alerts(session: &Session) -> BTreeMap<String, AlertState> {
    let batches = run(
        session,
        "SELECT alert_key, CAST(period AS VARCHAR), status, CAST(first_seen_at AS BIGINT), \
         CAST(last_seen_at AS BIGINT), CAST(resolved_at AS BIGINT) FROM alert",
    )
    .await;
    let mut out = BTreeMap::new();
    for batch in &batches {
        let text = |i: usize| {
            let column = cast(batch.column(i), &DataType::Utf8).unwrap();
            column
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let number = |i: usize| {
            let column = cast(batch.column(i), &DataType::Int64).unwrap();
            column
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        let (key, period, status) = (text(0), text(1), text(2));
        let (first, last, resolved) = (number(3), number(4), number(5));
        for row in 0..batch.num_rows() {
            let previous = out.insert(
                key.value(row).to_string(),
                AlertState {
                    period: period.value(row).to_string(),
                    status: status.value(row).to_string(),
                    first_seen_at: first.value(row),
                    last_seen_at: last.value(row),
                    resolved_at: resolved.is_valid(row).then(|| resolved.value(row)),
                },
            );
            assert!(previous.is_none(), "duplicate key {}", key.value(row));
        }
    }
    out
}

/// (rule, new, still open, resolved) of the rules that did something; every
/// rule must be in the report.
fn summary(report: &MonitorReport) -> Vec<(&'static str, usize, usize, usize)> {
    assert_eq!(report.rules.len(), MONITOR_RULES.len());
    report
        .rules
        .iter()
        .filter(|r| r.new + r.still_open + r.resolved > 0)
        .map(|r| (r.code, r.new, r.still_open, r.resolved))
        .collect()
}

/// Keys of every finding of every rule as of `as_of`.
async fn finding_keys(engine: &Engine, as_of: Option<NaiveDate>) -> BTreeSet<String> {
    let ctx = engine.session().unwrap();
    let mut keys = BTreeSet::new();
    for rule in MONITOR_RULES {
        for finding in monitor::evaluate_rule(&ctx, rule, as_of).await.unwrap() {
            assert!(keys.insert(finding.key()), "{} twice", finding.key());
        }
    }
    keys
}

/// The monitor city's alerts as of 2024-02 (worked out from its header):
/// 超职数 from February (p2 appointed 2024-02-10), 空编 in both 监测局乙 and
/// 监测局丙 in January and February, the ghost 'hg' paid in January and the
/// retired p4 paid in February (paid but on no roster, and paid after exit).
const ALERTS_AS_OF_FEBRUARY: [&str; 8] = [
    "extreme_vacancy:2:-:2024-01-01",
    "extreme_vacancy:2:-:2024-02-01",
    "extreme_vacancy:3:-:2024-01-01",
    "extreme_vacancy:3:-:2024-02-01",
    "over_leader_posts:1:-:2024-02-01",
    "paid_after_exit:2:4:2024-02-01",
    "paid_not_on_roster:1:-:2024-01-01",
    "paid_not_on_roster:2:4:2024-02-01",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_limits_alerts_to_the_months_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, session) = monitor_city(dir.path()).await;
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    // Before the first payroll month: nothing found, nothing written.
    let report = monitor::run_monitor(&engine, Some(date("2023-12-31")))
        .await
        .unwrap();
    assert_eq!(report.as_of, Some(date("2023-12-31")));
    assert_eq!(summary(&report), vec![]);
    assert_eq!((report.total_alerts, report.version), (0, None));
    assert!(alerts(&session).await.is_empty());

    // The command as of February prints its as-of and per-rule counts, and
    // writes exactly the alerts of January and February.
    let out = bianzhi(&["monitor", "--as-of", "2024-02-01", "--data-dir", data]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(stdout.lines().next(), Some("as of 2024-02-01"), "{stdout}");
    let new: Vec<(String, u64)> = new_per_rule(&stdout)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    let expected_new = [
        ("over_leader_posts", 1),
        ("extreme_vacancy", 4),
        ("paid_not_on_roster", 2),
        ("paid_after_exit", 1),
    ];
    assert_eq!(
        new,
        expected_new.map(|(code, n)| (code.to_string(), n)),
        "{stdout}"
    );
    assert!(stdout.contains("\n8 alerts in the alert table"), "{stdout}");
    let february = alerts(&session).await;
    assert_eq!(
        february.keys().map(String::as_str).collect::<Vec<_>>(),
        ALERTS_AS_OF_FEBRUARY
    );
    assert!(february
        .values()
        .all(|a| a.period.as_str() <= "2024-02-01" && a.status == STATUS_OPEN));

    // The rule findings as of February are those of all months up to then,
    // a strict subset of the findings as of April.
    let as_of_february = finding_keys(&engine, Some(date("2024-02-01"))).await;
    let as_of_april = finding_keys(&engine, Some(date("2024-04-01"))).await;
    let all_months = finding_keys(&engine, None).await;
    assert_eq!(
        as_of_february
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ALERTS_AS_OF_FEBRUARY
    );
    assert!(as_of_february.is_subset(&as_of_april));
    assert_eq!(as_of_april.len(), 23);
    assert_eq!(as_of_april, all_months, "April is the last payroll month");
    // A mid-month as-of takes in that month (periods are month starts).
    assert_eq!(
        finding_keys(&engine, Some(date("2024-02-29"))).await,
        as_of_february
    );

    // Without --as-of the run goes to the latest payroll month, 2024-04: the
    // 15 alerts of March and April are new, the 8 of February still open.
    let report = monitor::run_monitor(&engine, None).await.unwrap();
    assert_eq!(report.as_of, Some(date("2024-04-01")));
    assert_eq!(
        summary(&report),
        vec![
            ("over_quota", 2, 0, 0),
            ("over_leader_posts", 2, 1, 0),
            ("extreme_vacancy", 2, 4, 0),
            ("paid_not_on_roster", 1, 2, 0),
            ("on_roster_unpaid", 1, 0, 0),
            ("multiple_payers", 1, 0, 0),
            ("paid_after_exit", 1, 1, 0),
            ("payer_mismatch", 1, 0, 0),
            ("headcount_jump", 1, 0, 0),
            ("entry_without_basis", 1, 0, 0),
            ("ledger_imbalance", 2, 0, 0),
        ]
    );
    assert_eq!(report.total_alerts, 23);
    let april = alerts(&session).await;
    assert_eq!(april.keys().cloned().collect::<BTreeSet<_>>(), all_months);
    for key in ALERTS_AS_OF_FEBRUARY {
        assert_eq!(
            april[key].first_seen_at, february[key].first_seen_at,
            "{key}: first seen in the February run"
        );
        assert!(
            april[key].last_seen_at > february[key].last_seen_at,
            "{key}"
        );
    }

    // Back to February: the alerts of March and April are after the as-of,
    // so they are left alone (not resolved though the run does not see them).
    let report = monitor::run_monitor(&engine, Some(date("2024-02-01")))
        .await
        .unwrap();
    assert_eq!(report.as_of, Some(date("2024-02-01")));
    assert_eq!(
        summary(&report),
        vec![
            ("over_leader_posts", 0, 1, 0),
            ("extreme_vacancy", 0, 4, 0),
            ("paid_not_on_roster", 0, 2, 0),
            ("paid_after_exit", 0, 1, 0),
        ]
    );
    let after = alerts(&session).await;
    assert_eq!(after.len(), 23);
    assert!(after
        .values()
        .all(|a| a.status == STATUS_OPEN && a.resolved_at.is_none()));
    let later: Vec<&AlertState> = after
        .values()
        .filter(|a| a.period.as_str() > "2024-02-01")
        .collect();
    assert_eq!(later.len(), 15);
    for alert in later {
        assert!(april.values().any(|a| a == alert), "untouched: {alert:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_resolve_alerts_and_relapses_reopen_them() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, session) = monitor_city(dir.path()).await;
    let unpaid = "on_roster_unpaid:2:5:2024-03-01";
    let ledger_march = "ledger_imbalance:2:-:2024-03-01";
    let ledger_april = "ledger_imbalance:2:-:2024-04-01";

    let report = monitor::run_monitor(&engine, None).await.unwrap();
    assert_eq!(report.total_alerts, 23);
    let first = alerts(&session).await;
    for key in [unpaid, ledger_march, ledger_april] {
        assert_eq!(first[key].status, STATUS_OPEN, "{key}");
    }

    // Corrections: p5's February salary arrives late (so p5 was not unpaid
    // three months running by March), and a 核减 of 1 from April brings
    // 监测局乙's ledger back to its approved 10 (March stays at 11).
    run(
        &session,
        "INSERT INTO external_roster VALUES \
         ('财政统发工资', DATE '2024-02-01', 'h5', NULL, 2, '应发工资', 10000.00, NULL)",
    )
    .await;
    run(
        &session,
        "INSERT INTO quota_ledger VALUES (5, 2, '行政', '核减', -1, DATE '2024-04-01', NULL, \
         NULL, '深编〔2024〕12号', TIMESTAMP '2024-03-20 08:00:00+00')",
    )
    .await;

    // As of March only the unpaid alert is resolved: the ledger's April alert
    // is after the as-of and stays open though it no longer holds.
    let report = monitor::run_monitor(&engine, Some(date("2024-03-01")))
        .await
        .unwrap();
    let by_rule = |report: &MonitorReport, code: &str| {
        let rule = report.rules.iter().find(|r| r.code == code).unwrap();
        (rule.new, rule.still_open, rule.resolved)
    };
    assert_eq!(by_rule(&report, "on_roster_unpaid"), (0, 0, 1));
    assert_eq!(by_rule(&report, "ledger_imbalance"), (0, 1, 0));
    let resolved: usize = report.rules.iter().map(|r| r.resolved).sum();
    let new: usize = report.rules.iter().map(|r| r.new).sum();
    assert_eq!((resolved, new), (1, 0), "nothing else changed");
    let march = alerts(&session).await;
    assert_eq!(march.len(), 23, "a resolved alert is kept");
    assert_eq!(march[unpaid].status, STATUS_RESOLVED);
    let resolved_at = march[unpaid].resolved_at.expect("resolved_at is set");
    assert!(resolved_at > first[unpaid].last_seen_at);
    assert_eq!(march[unpaid].last_seen_at, first[unpaid].last_seen_at);
    assert_eq!(march[ledger_april], first[ledger_april], "left alone");
    assert_eq!(march[ledger_march].status, STATUS_OPEN);

    // As of April the ledger's April alert is resolved too; the unpaid alert
    // stays resolved with its resolved_at.
    let report = monitor::run_monitor(&engine, None).await.unwrap();
    assert_eq!(by_rule(&report, "on_roster_unpaid"), (0, 0, 0));
    assert_eq!(by_rule(&report, "ledger_imbalance"), (0, 1, 1));
    let april = alerts(&session).await;
    assert_eq!(april.len(), 23);
    assert_eq!(april[ledger_april].status, STATUS_RESOLVED);
    assert!(april[ledger_april].resolved_at.is_some());
    assert_eq!(april[ledger_march].status, STATUS_OPEN);
    assert_eq!(april[unpaid], march[unpaid]);
    let open = april.values().filter(|a| a.status == STATUS_OPEN).count();
    assert_eq!(open, 21);

    // A relapse: another +1 from April puts the ledger at 11 again. The alert
    // is reopened under its old key (counted as new), keeps its first_seen_at
    // and loses its resolved_at; no row is added.
    run(
        &session,
        "INSERT INTO quota_ledger VALUES (6, 2, '行政', '核增', 1, DATE '2024-04-01', NULL, \
         NULL, '深编〔2024〕13号', TIMESTAMP '2024-03-25 08:00:00+00')",
    )
    .await;
    let report = monitor::run_monitor(&engine, None).await.unwrap();
    assert_eq!(by_rule(&report, "ledger_imbalance"), (1, 1, 0));
    assert_eq!(by_rule(&report, "on_roster_unpaid"), (0, 0, 0));
    assert_eq!(report.total_alerts, 23);
    let reopened = alerts(&session).await;
    let alert = &reopened[ledger_april];
    assert_eq!(alert.status, STATUS_OPEN);
    assert_eq!(alert.resolved_at, None);
    assert_eq!(alert.first_seen_at, first[ledger_april].first_seen_at);
    assert!(alert.last_seen_at > april[ledger_april].last_seen_at);
    assert_eq!(reopened[unpaid].status, STATUS_RESOLVED);
    let open = reopened
        .values()
        .filter(|a| a.status == STATUS_OPEN)
        .count();
    assert_eq!(open, 22);
}
