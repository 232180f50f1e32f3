//! The real `bianzhi` binary on scripts: results, formats, stdin, and errors
//! that name the statement and line.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bianzhi(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bianzhi"))
        .args(args)
        .env("BIANZHI_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bianzhi");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("bianzhi finished")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn run_prints_each_result_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let script = dir.path().join("report.sql");
    std::fs::write(
        &script,
        "-- two queries and a comment\n\
         SELECT code FROM dict_code WHERE code_set = 'quota_type' ORDER BY sort_order;\n\
         /* a block comment; with a semicolon */\n\
         SELECT count(*) AS n FROM org;\n",
    )
    .unwrap();
    let out = bianzhi(
        &[
            "run",
            script.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(stdout.contains("| 政法专项 |"), "{stdout}");
    assert!(stdout.contains("(5 rows)"), "{stdout}");
    assert!(stdout.contains("| 0 |"), "{stdout}");
    assert!(stdout.contains("(1 row)"), "{stdout}");
}

#[test]
fn run_reads_stdin_and_writes_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let sql =
        "SELECT code, sort_order FROM dict_code WHERE code_set = 'gender' ORDER BY sort_order;";
    let out = bianzhi(
        &["run", "-", "--data-dir", data, "--format", "csv"],
        Some(sql),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "code,sort_order\n男,1\n女,2\n");
    let out = bianzhi(
        &["run", "-", "--data-dir", data, "--format", "json"],
        Some(sql),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json[1]["code"], "女");
    assert_eq!(json[1]["sort_order"], 2);
    let out = bianzhi(
        &["run", "-", "--data-dir", data, "--format", "json"],
        Some("SELECT * FROM org;"),
    );
    assert_eq!(text(&out.stdout).trim(), "[]");
}

#[test]
fn run_stops_at_the_first_error_with_statement_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let script = "SELECT 1 AS one;\n\n-- the next one is wrong\nSELECT no_such_column\nFROM org;\nSELECT 'never printed' AS x;\n";
    let out = bianzhi(
        &["run", "-", "--data-dir", data.to_str().unwrap()],
        Some(script),
    );
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stdout.contains("| 1   |") || stdout.contains("| 1 "),
        "{stdout}"
    );
    assert!(!stdout.contains("never printed"), "{stdout}");
    assert!(stderr.contains("statement 2 (line 4)"), "{stderr}");
    assert!(stderr.contains("no_such_column"), "{stderr}");
}

#[test]
fn run_reports_unterminated_strings_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = bianzhi(
        &["run", "-", "--data-dir", data.to_str().unwrap()],
        Some("SELECT 1;\nSELECT 'open\n"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("<stdin>:2: unterminated ' quote"),
        "{}",
        text(&out.stderr)
    );
    let out = bianzhi(
        &[
            "run",
            "/nonexistent/report.sql",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("reading /nonexistent/report.sql"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn generate_then_report_on_the_generated_city() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = bianzhi(
        &[
            "generate",
            "--scale",
            "0.005",
            "--seed",
            "11",
            "--data-dir",
            data,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("external_roster"),
        "{}",
        text(&out.stdout)
    );
    let report = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sql/reports/vacancy_by_district.sql"
    );
    let out = bianzhi(
        &["run", report, "--data-dir", data, "--format", "csv"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // All eleven districts and areas appear, and the city's own bodies.
    for district in ["市本级", "福田区", "宝安区", "深汕特别合作区"] {
        assert!(
            stdout.contains(district),
            "{district} missing from\n{stdout}"
        );
    }
    // A second generate into the same directory is refused and changes nothing.
    let out = bianzhi(
        &[
            "generate",
            "--scale",
            "0.005",
            "--seed",
            "12",
            "--data-dir",
            data,
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already holds data"),
        "{}",
        text(&out.stderr)
    );
}
