//! `bianzhi monitor` on generated data: alerts written, a second run adds
//! nothing, and the alerts are read over the wire.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
