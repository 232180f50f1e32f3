//! `bianzhi import` with the real binary: GBK CSV with Chinese headers, a
//! workbook with a merged title above the header, JSON and Parquet; every
//! error class with its message; and a rejected import leaving the table
//! exactly as it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use datafusion::arrow::array::{Date32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use rust_xlsxwriter::{Format, Workbook};

fn bianzhi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bianzhi"))
        .args(args)
        .env("BIANZHI_LOG", "error")
        .output()
        .expect("run bianzhi")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

struct Data {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: String,
}

impl Data {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let data = root.join("data").to_str().unwrap().to_string();
        Self {
            _dir: dir,
            root,
            data,
        }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn import(&self, table: &str, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "import",
            table,
            file.to_str().unwrap(),
            "--data-dir",
            &self.data,
        ];
        args.extend_from_slice(extra);
        bianzhi(&args)
    }

    /// The query's rows as CSV lines (header dropped).
    fn query(&self, sql: &str) -> Vec<String> {
        let script = self.root.join("query.sql");
        std::fs::write(&script, sql).unwrap();
        let out = bianzhi(&[
            "run",
            script.to_str().unwrap(),
            "--data-dir",
            &self.data,
            "--format",
            "csv",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The Delta log's newest version of a table.
    fn version(&self, table: &str) -> usize {
        std::fs::read_dir(Path::new(&self.data).join(table).join("_delta_log"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    }
}

const ROSTER_HEADER: &str =
    "数据来源,所属期,公民身份号码摘要,姓名,发薪或缴费单位标识,项目,金额（元）,事件日期\n";

#[test]
fn gbk_csv_with_chinese_headers_and_date_forms() {
    let data = Data::new();
    let csv = format!(
        "{ROSTER_HEADER}\
         财政统发工资,2024-01-01,h1,张三,101,应发工资,\"8,500.50\",\n\
         财政统发工资,2024/2/1,h1,张三,101,应发工资,8500.5,\n\
         社会保险,2024年3月1日,h2,李四,102,养老保险缴费,1200,\n\
         公安户籍,20240401,h3,王五,,死亡注销,,2024年4月2日\n"
    );
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&csv);
    assert!(!unmappable);
    let file = data.file("payroll_gbk.csv", &gbk);
    let out = data.import("external_roster", &file, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("imported 4 rows into external_roster"),
        "{stdout}"
    );
    assert!(stdout.contains("read as GB18030"), "{stdout}");
    assert_eq!(
        data.query(
            "SELECT source, period, person_name, org_id, item, amount, event_date \
             FROM external_roster ORDER BY period"
        ),
        [
            "财政统发工资,2024-01-01,张三,101,应发工资,8500.50,",
            "财政统发工资,2024-02-01,张三,101,应发工资,8500.50,",
            "社会保险,2024-03-01,李四,102,养老保险缴费,1200.00,",
            "公安户籍,2024-04-01,王五,,死亡注销,,2024-04-02",
        ]
    );
}

#[test]
fn rejected_values_name_row_column_and_change_nothing() {
    let data = Data::new();
    let good = data.file(
        "good.csv",
        format!("{ROSTER_HEADER}社会保险,2024-01-01,h9,赵六,7,养老保险缴费,10,\n").as_bytes(),
    );
    assert!(data.import("external_roster", &good, &[]).status.success());
    let version = data.version("external_roster");
    let bad = data.file(
        "bad.csv",
        format!(
            "{ROSTER_HEADER}\
             财政统发工资,2024-02-30,h1,张三,101,应发工资,1,\n\
             工资,2024-01-01,h1,张三,101,应发工资,1,\n\
             社会保险,2024-01-01,,张三,abc,应发工资,1e3,\n"
        )
        .as_bytes(),
    );
    let out = data.import("external_roster", &bad, &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for expected in [
        "bad.csv: 5 value(s) rejected; nothing was imported, external_roster is unchanged",
        "row 2, column \"所属期\" (period): \"2024-02-30\": expected date: 2024-02-30 is not a day of the calendar",
        "row 3, column \"数据来源\" (source): \"工资\": expected a code of 代码集 roster_source: 人力资源社会保障, 公安户籍, 社会保险, 财政统发工资",
        "row 4, column \"公民身份号码摘要\" (id_hash): empty: expected a value: the column is required",
        "row 4, column \"发薪或缴费单位标识\" (org_id): \"abc\": expected bigint: a whole number",
        "row 4, column \"金额（元）\" (amount): \"1e3\": expected numeric(12,2): a number",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in\n{stderr}");
    }
    assert_eq!(data.version("external_roster"), version, "no commit");
    assert_eq!(data.query("SELECT count(*) FROM external_roster"), ["1"]);

    // --max-errors stops early and says so.
    let out = data.import("external_roster", &bad, &["--max-errors", "1"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("1 value(s) rejected (stopped at --max-errors, there may be more)"),
        "{stderr}"
    );
    assert!(!stderr.contains("row 3"), "{stderr}");
}

#[test]
fn header_problems_are_reported_before_any_row() {
    let data = Data::new();
    let file = data.file(
        "header.csv",
        "来源,所属期,period,项目\n社会保险,2024-01-01,2024-01-01,应发工资\n".as_bytes(),
    );
    let out = data.import("external_roster", &file, &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for expected in [
        "header.csv: the header does not fit table external_roster:",
        "header \"来源\" (column 1) names no column of external_roster",
        "both name column period",
        "required column source (数据来源[代码集 roster_source]) is missing",
        "required column id_hash",
        "the columns of external_roster are: source (数据来源[代码集 roster_source]), period",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
    let out = data.import("no_such_table", &file, &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no_such_table"));
    let unknown = data.file("data.txt", b"a,b\n");
    let out = data.import("external_roster", &unknown, &[]);
    assert!(text(&out.stderr).contains("give --format"));
}

#[test]
fn workbook_with_merged_title_and_primary_keys() {
    let data = Data::new();
    let path = data.root.join("实名制.xlsx");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("人员").unwrap();
    sheet
        .merge_range(0, 0, 0, 5, "2024年实名制人员名册", &Format::new())
        .unwrap();
    sheet.write_string(1, 0, "填报单位：某区委编办").unwrap();
    let headers = [
        "人员标识",
        "公民身份号码摘要",
        "公民身份号码",
        "姓名",
        "性别",
        "出生日期",
    ];
    for (column, header) in headers.iter().enumerate() {
        sheet.write_string(2, column as u16, *header).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    // Excel serial 45296 is 2024-01-05; 32874 is 1990-01-01.
    let people = [
        (1.0, "h1", "4403**1", "张三", "男", 32874.0),
        (2.0, "h2", "4403**2", "李四", "女", 45296.0),
    ];
    for (index, (id, hash, masked, name, gender, born)) in people.iter().enumerate() {
        let row = 3 + index as u32;
        sheet.write_number(row, 0, *id).unwrap();
        sheet.write_string(row, 1, *hash).unwrap();
        sheet.write_string(row, 2, *masked).unwrap();
        sheet.write_string(row, 3, *name).unwrap();
        sheet.write_string(row, 4, *gender).unwrap();
        sheet
            .write_number_with_format(row, 5, *born, &date)
            .unwrap();
    }
    workbook.save(&path).unwrap();
    let out = data.import("person", &path, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("header on row 3, sheet \"人员\""),
        "{stdout}"
    );
    assert_eq!(
        data.query("SELECT person_id, person_name, gender, birth_date FROM person ORDER BY 1"),
        ["1,张三,男,1990-01-01", "2,李四,女,2024-01-05"]
    );
    // The same file again: every key is already in the table.
    let version = data.version("person");
    let out = data.import("person", &path, &["--header-row", "3", "--sheet", "人员"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("sheet \"人员\", row 4, column \"人员标识\" (person_id): \"1\": expected a key not already in person"),
        "{stderr}"
    );
    assert_eq!(data.version("person"), version);
    // Replace mode swaps the rows in one commit.
    let out = data.import("person", &path, &["--mode", "replace"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(data.version("person"), version + 1);
    assert_eq!(data.query("SELECT count(*) FROM person"), ["2"]);
    let out = data.import("person", &path, &["--sheet", "不存在"]);
    assert!(text(&out.stderr).contains("no sheet \"不存在\""));
}

#[test]
fn excel_97_2003_xls_with_title_rows() {
    let data = Data::new();
    // Written by tests/fixtures/make_xls.py (xlwt, BIFF8).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/person_2003.xls");
    let out = data.import("person", &fixture, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("imported 2 rows into person")
            && stdout.contains("header on row 3, sheet \"人员名册\""),
        "{stdout}"
    );
    assert_eq!(
        data.query("SELECT person_id, id_masked, person_name, gender, birth_date, education FROM person ORDER BY 1"),
        ["11,4403**11,周八,男,1975-03-09,大学本科", "12,4403**12,吴九,女,1988-12-31,"]
    );
}

#[test]
fn json_and_parquet_and_duplicate_keys_in_the_file() {
    let data = Data::new();
    let json = data.file(
        "people.json",
        r#"[{"person_id": 1, "id_hash": "h1", "id_masked": "m", "person_name": "张三", "gender": "男", "birth_date": "1990-01-01", "education": null},
            {"person_id": 1, "id_hash": "h2", "id_masked": "m", "person_name": "李四", "gender": "女", "birth_date": "1991-01-01"}]"#
            .as_bytes(),
    );
    let out = data.import("person", &json, &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("row 2, column \"person_id\" (person_id): \"1\": expected a key not used before (row 1 has it)"),
        "{stderr}"
    );

    let schema = Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Int64, false),
        Field::new("id_hash", DataType::Utf8, false),
        Field::new("id_masked", DataType::Utf8, false),
        Field::new("person_name", DataType::Utf8, false),
        Field::new("gender", DataType::Utf8, false),
        Field::new("birth_date", DataType::Date32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![5, 6])),
            Arc::new(StringArray::from(vec!["h5", "h6"])),
            Arc::new(StringArray::from(vec!["m5", "m6"])),
            Arc::new(StringArray::from(vec!["周七", "吴八"])),
            Arc::new(StringArray::from(vec!["男", "女"])),
            Arc::new(Date32Array::from(vec![7305, 7306])),
        ],
    )
    .unwrap();
    let parquet = data.root.join("people.parquet");
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&parquet).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let out = data.import("person", &parquet, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        data.query("SELECT person_id, person_name, birth_date FROM person ORDER BY 1"),
        ["5,周七,1990-01-01", "6,吴八,1990-01-02"]
    );
}

/// A CSV of `rows` external_roster rows, ids prefixed by `tag`.
fn roster_csv(tag: &str, rows: usize) -> String {
    let mut csv = String::from(ROSTER_HEADER);
    for row in 0..rows {
        csv.push_str(&format!(
            "社会保险,2024-{:02}-01,{tag}-{row},某人,{},养老保险缴费,{}.25,\n",
            row % 12 + 1,
            row % 500,
            row % 9000
        ));
    }
    csv
}

#[test]
fn sigkill_during_imports_never_leaves_partial_rows() {
    const ROWS: usize = 40_000;
    let data = Data::new();
    let file = data.file("big.csv", roster_csv("k", ROWS).as_bytes());
    // Kill at spread-out moments: while reading, converting, writing files
    // and committing. Each time the table must hold whole imports only.
    let mut committed = 0usize;
    for delay_ms in [30u64, 150, 400, 800, 1500, 2500] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bianzhi"))
            .args([
                "import",
                "external_roster",
                file.to_str().unwrap(),
                "--data-dir",
                &data.data,
            ])
            .env("BIANZHI_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let count: usize = data.query("SELECT count(*) FROM external_roster")[0]
            .parse()
            .unwrap();
        assert_eq!(
            count % ROWS,
            0,
            "partial import visible after a kill at {delay_ms} ms"
        );
        assert!(count >= committed, "a committed import was lost");
        committed = count;
    }
    // The table still takes a whole import afterwards.
    let out = data.import("external_roster", &file, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let count: usize = data.query("SELECT count(*) FROM external_roster")[0]
        .parse()
        .unwrap();
    assert_eq!(count, committed + ROWS);
}

#[test]
fn concurrent_writers_and_readers_see_whole_versions() {
    const ROWS: usize = 20_000;
    let data = Data::new();
    // Create the tables before the writers race to.
    assert_eq!(data.query("SELECT count(*) FROM external_roster"), ["0"]);
    let first = data.file("first.csv", roster_csv("a", ROWS).as_bytes());
    let second = data.file("second.csv", roster_csv("b", ROWS).as_bytes());
    let spawn = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_bianzhi"))
            .args([
                "import",
                "external_roster",
                file.to_str().unwrap(),
                "--data-dir",
                &data.data,
            ])
            .env("BIANZHI_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let writers = [spawn(&first), spawn(&second)];
    // Read while they write: every count is a whole number of imports.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let count: usize = data.query("SELECT count(*) FROM external_roster")[0]
            .parse()
            .unwrap();
        assert_eq!(count % ROWS, 0, "a reader saw part of an import: {count}");
        seen.push(count);
    }
    let mut succeeded = 0;
    for writer in writers {
        let out = writer.wait_with_output().unwrap();
        if out.status.success() {
            succeeded += 1;
        } else {
            // The only acceptable failure is a clear conflict.
            let stderr = text(&out.stderr);
            assert!(
                stderr.to_lowercase().contains("conflict") || stderr.contains("version"),
                "writer failed without a conflict error: {stderr}"
            );
        }
    }
    assert!(succeeded >= 1);
    let count: usize = data.query("SELECT count(*) FROM external_roster")[0]
        .parse()
        .unwrap();
    assert_eq!(count, succeeded * ROWS, "seen while writing: {seen:?}");
    assert_eq!(
        data.query("SELECT count(DISTINCT id_hash) FROM external_roster")[0],
        count.to_string()
    );
}

#[test]
fn compaction_and_vacuum_keep_the_rows() {
    let data = Data::new();
    for tag in ["x", "y", "z"] {
        let file = data.file(&format!("{tag}.csv"), roster_csv(tag, 300).as_bytes());
        assert!(data.import("external_roster", &file, &[]).status.success());
    }
    let before = data.query("SELECT count(*), sum(amount) FROM external_roster");
    let parquet_files = || {
        std::fs::read_dir(Path::new(&data.data).join("external_roster"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".parquet")
            })
            .count()
    };
    assert!(parquet_files() >= 3);
    let out = bianzhi(&["compact", "external_roster", "--data-dir", &data.data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("files ->   1  version"), "{stdout}");
    assert_eq!(
        data.query("SELECT count(*), sum(amount) FROM external_roster"),
        before
    );

    // The compacted-away files stay for time travel until a vacuum, which
    // refuses a retention below the table's 7 days unless forced.
    let files_before_vacuum = parquet_files();
    let out = bianzhi(&[
        "vacuum",
        "external_roster",
        "--retain-hours",
        "0",
        "--data-dir",
        &data.data,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).to_lowercase().contains("retention"),
        "{}",
        text(&out.stderr)
    );
    let out = bianzhi(&[
        "vacuum",
        "external_roster",
        "--retain-hours",
        "0",
        "--force",
        "--dry-run",
        "--data-dir",
        &data.data,
    ]);
    assert!(
        text(&out.stdout).contains("would be deleted"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(parquet_files(), files_before_vacuum);
    let out = bianzhi(&[
        "vacuum",
        "external_roster",
        "--retain-hours",
        "0",
        "--force",
        "--data-dir",
        &data.data,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(parquet_files(), 1);
    assert_eq!(
        data.query("SELECT count(*), sum(amount) FROM external_roster"),
        before
    );
}
