//! `bianzhi export` with the real binary: a generated table and a query's
//! result read back from CSV and Parquet equal what the engine returns
//! (Chinese text, NULLs and empty strings kept apart, decimals, dates,
//! timestamps), and a failed export leaves no file and no partial file.

use std::path::Path;
use std::process::{Command, Output};

use bianzhi_engine::session::Output as SessionOutput;
use bianzhi_engine::{Engine, Session, SessionIdentity, Settings};
use datafusion::arrow::array::{Array, RecordBatch, RecordBatchReader, StringArray};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

fn bianzhi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bianzhi"))
        .args(args)
        .env("BIANZHI_LOG", "error")
        .output()
        .expect("run bianzhi")
}

fn succeed(args: &[&str]) -> Output {
    let out = bianzhi(args);
    assert!(
        out.status.success(),
        "bianzhi {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn engine_rows(data: &str, sql: &str) -> RecordBatch {
    let engine = Engine::open(data).await.unwrap();
    let session = Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
    match session.run_one(sql).await {
        Ok(SessionOutput::Rows { schema, batches }) => concat_batches(&schema, &batches).unwrap(),
        other => panic!("{sql}: {other:?}"),
    }
}

/// A CSV text as rows of fields: an unquoted empty field is NULL (`None`),
/// a quoted one the empty string. Line breaks inside quotes are data.
fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                in_quotes = true;
            }
            ',' | '\n' => {
                let value = std::mem::take(&mut field);
                row.push((quoted || !value.is_empty()).then_some(value));
                quoted = false;
                if c == '\n' {
                    rows.push(std::mem::take(&mut row));
                }
            }
            _ => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the file ends with a line break"
    );
    rows
}

/// The engine's rows as text, the way arrow's cast renders each value.
fn as_text(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
    let columns: Vec<StringArray> = batch
        .columns()
        .iter()
        .map(|c| {
            cast(c, &DataType::Utf8)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        })
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .map(|c| (!c.is_null(row)).then(|| c.value(row).to_string()))
                .collect()
        })
        .collect()
}

fn read_parquet(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    concat_batches(&schema, &batches).unwrap()
}

/// Same columns (names and types) and the same values, row by row.
fn assert_same(read: &RecordBatch, expected: &RecordBatch) {
    assert_eq!(read.num_rows(), expected.num_rows());
    assert_eq!(read.num_columns(), expected.num_columns());
    for (index, field) in expected.schema().fields().iter().enumerate() {
        let found = read.schema().field(index).clone();
        assert_eq!(found.name(), field.name());
        assert_eq!(found.data_type(), field.data_type(), "{}", field.name());
        assert_eq!(
            read.column(index).as_ref(),
            expected.column(index).as_ref(),
            "column {}",
            field.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_tables_and_queries_read_back_from_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    succeed(&["generate", "--scale", "0.01", "--data-dir", data]);

    // A table by name, to CSV: the header and every row, as sets (a scan's
    // order is not fixed).
    let csv_path = dir.path().join("org.csv");
    let out = succeed(&[
        "export",
        "org",
        "--out",
        csv_path.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    let org = engine_rows(data, "SELECT * FROM org").await;
    assert!(org.num_rows() > 1000);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("exported {} rows to {}", org.num_rows(), csv_path.display())
    );
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut read = parse_csv(&text);
    let header = read.remove(0);
    let names: Vec<Option<String>> = org
        .schema()
        .fields()
        .iter()
        .map(|f| Some(f.name().clone()))
        .collect();
    assert_eq!(header, names);
    let mut expected = as_text(&org);
    read.sort();
    expected.sort();
    assert_eq!(read.len(), expected.len());
    assert_eq!(read, expected);
    assert!(text.contains("中共深圳市"), "Chinese names as UTF-8");
    assert!(
        read.iter().any(|row| row[2].is_none()),
        "some short names are NULL and stay NULL"
    );

    // The same to standard output, with the format given: the same bytes.
    let stdout = succeed(&["export", "org", "--format", "csv", "--data-dir", data]);
    let mut lines: Vec<&str> = std::str::from_utf8(&stdout.stdout)
        .unwrap()
        .lines()
        .collect();
    let mut file_lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    file_lines.sort_unstable();
    assert_eq!(lines, file_lines);

    // A query, to Parquet (the format from the file name), in a fixed order.
    let query = "SELECT s.assignment_id, o.org_name, s.quota_type, s.post_name, s.entry_date, \
                 s.exit_date, p.person_name, p.id_masked FROM staff_assignment s JOIN org o ON o.org_id = s.org_id \
                 JOIN person p ON p.person_id = s.person_id ORDER BY s.assignment_id";
    let parquet_path = dir.path().join("staff.parquet");
    succeed(&[
        "export",
        query,
        "--out",
        parquet_path.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    let expected = engine_rows(data, query).await;
    assert!(expected.num_rows() > 1000);
    let read = read_parquet(&parquet_path);
    assert_same(&read, &expected);
    let org_name = read.schema().field_with_name("org_name").unwrap().clone();
    assert_eq!(
        org_name.metadata().get("comment").map(String::as_str),
        Some("机构名称"),
        "the columns' comments are kept"
    );
    let file = SerializedFileReader::new(std::fs::File::open(&parquet_path).unwrap()).unwrap();
    let metadata = file
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    assert!(
        metadata
            .iter()
            .any(|kv| kv.key == "bianzhi.query" && kv.value.as_deref() == Some(query)),
        "the query is kept in the file"
    );

    // A table outside public, by its qualified name, and a time-travel query.
    let planted = dir.path().join("planted.parquet");
    succeed(&[
        "export",
        "generator.planted",
        "--out",
        planted.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    let expected = engine_rows(data, "SELECT * FROM generator.planted").await;
    assert!(expected.num_rows() > 10);
    assert_eq!(read_parquet(&planted).num_rows(), expected.num_rows());
    let version_one = dir.path().join("org_v1.csv");
    succeed(&[
        "export",
        "SELECT count(*) AS n FROM table_at('org', 1)",
        "--out",
        version_one.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert_eq!(
        std::fs::read_to_string(&version_one).unwrap(),
        format!("n\n{}\n", org.num_rows())
    );
}

/// Values that CSV writers commonly lose or mangle.
const AWKWARD: &str = "SELECT * FROM (VALUES \
    (1, '深圳市福田区', NULL, '', 1.50, DATE '2024-05-01', CAST('2024-05-01 12:00:00.5' AS TIMESTAMP), true), \
    (2, 'a,\"b\"', '编制', NULL, NULL, NULL, NULL, NULL), \
    (3, 'two\nlines', ' padded ', 'x', -0.05, DATE '1999-12-31', CAST('1999-12-31 23:59:59' AS TIMESTAMP), false)\
    ) AS t(id, name, note, empty, amount, day, at, flag) ORDER BY id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nulls_empty_strings_and_chinese_survive_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    let out = succeed(&["export", AWKWARD, "--data-dir", data]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "id,name,note,empty,amount,day,at,flag\n\
         1,深圳市福田区,,\"\",1.50,2024-05-01,2024-05-01 12:00:00.500,true\n\
         2,\"a,\"\"b\"\"\",编制,,,,,\n\
         3,\"two\nlines\", padded ,x,-0.05,1999-12-31,1999-12-31 23:59:59,false\n"
    );
    // With a byte order mark for Excel.
    let out = succeed(&["export", AWKWARD, "--bom", "--data-dir", data]);
    assert!(out.stdout.starts_with("\u{feff}id,name".as_bytes()));

    let path = dir.path().join("awkward.parquet");
    succeed(&[
        "export",
        AWKWARD,
        "--format",
        "parquet",
        "--out",
        path.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    let read = read_parquet(&path);
    let expected = engine_rows(data, AWKWARD).await;
    assert_same(&read, &expected);
    let empty = read
        .column(3)
        .as_any()
        .downcast_ref::<StringArray>()
        .map(|a| (a.is_null(0), a.value(0).to_string(), a.is_null(1)));
    assert_eq!(
        empty,
        Some((false, String::new(), true)),
        "'' and NULL stay apart"
    );
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_export_leaves_no_file_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let old = out_dir.join("report.csv");
    std::fs::write(&old, "the previous export\n").unwrap();

    // Fails in the seventh batch of 8,192 rows, after six were written.
    let failing = "SELECT x, 10 / (x - 50000) AS y FROM generate_series(1, 100000) AS t(x)";
    for format in ["csv", "parquet"] {
        let out = bianzhi(&[
            "export",
            failing,
            "--format",
            format,
            "--out",
            old.to_str().unwrap(),
            "--data-dir",
            data,
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("division by zero"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(&old).unwrap(),
            "the previous export\n"
        );
        assert_eq!(files_in(&out_dir), vec!["report.csv".to_string()]);
    }

    // Nothing to export: no file at all.
    let new = out_dir.join("new.csv");
    let out = bianzhi(&[
        "export",
        "orgg",
        "--out",
        new.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[42P01] relation \"orgg\" does not exist"),
        "{stderr}"
    );
    assert!(!new.exists());

    // A statement that returns no rows is refused, and not run.
    let out = bianzhi(&[
        "export",
        "INSERT INTO dict_code SELECT * FROM dict_code",
        "--out",
        new.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("needs a table name or a query that returns rows"),
        "{stderr}"
    );
    assert_eq!(files_in(&out_dir), vec!["report.csv".to_string()]);
    let counts = engine_rows(data, "SELECT count(*) AS n FROM table_history('dict_code')").await;
    assert_eq!(
        as_text(&counts),
        vec![vec![Some("2".to_string())]],
        "dict_code has its two versions, no third"
    );

    // A directory that does not exist is named.
    let out = bianzhi(&[
        "export",
        "org",
        "--out",
        dir.path().join("missing/org.csv").to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

/// Every row of `sql`, each value as text, sorted (for comparing tables).
async fn sorted_text(data: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = as_text(&engine_rows(data, sql).await);
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_excel_export_imports_back_to_the_same_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    succeed(&["generate", "--scale", "0.01", "--data-dir", data]);
    let before = sorted_text(data, "SELECT * FROM staff_assignment").await;
    assert!(before.len() > 500);
    assert!(before.iter().any(|row| row.iter().any(Option::is_none)));

    let path = dir.path().join("编制实名.xlsx");
    let out = succeed(&[
        "export",
        "staff_assignment",
        "--out",
        path.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("exported {} rows", before.len())),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Dates are Excel dates and ids numbers, not text.
    let mut workbook = calamine::open_workbook_auto(&path).unwrap();
    use calamine::Reader;
    let sheet = workbook.worksheet_range("result").unwrap();
    let second = sheet.rows().nth(1).unwrap().to_vec();
    assert!(matches!(second[0], calamine::Data::Float(_)), "{second:?}");
    assert!(
        second
            .iter()
            .any(|cell| matches!(cell, calamine::Data::DateTime(_))),
        "{second:?}"
    );

    // Replacing the table with the workbook's rows changes nothing.
    succeed(&[
        "import",
        "staff_assignment",
        path.to_str().unwrap(),
        "--mode",
        "replace",
        "--data-dir",
        data,
    ]);
    let after = sorted_text(data, "SELECT * FROM staff_assignment").await;
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_writes_each_result_set_to_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let script = dir.path().join("report.sql");
    std::fs::write(
        &script,
        "SET TimeZone = 'UTC';\n\
         SELECT code_set, count(*) AS codes FROM dict_code GROUP BY code_set ORDER BY code_set;\n\
         -- a second result set\n\
         SELECT 1 AS one, '编制' AS word;\n",
    )
    .unwrap();
    let target = out_dir.join("汇总.parquet");
    let out = succeed(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        target.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert_eq!(files_in(&out_dir), vec!["汇总-1.parquet", "汇总-2.parquet"]);
    let first = read_parquet(&out_dir.join("汇总-1.parquet"));
    let expected = engine_rows(
        data,
        "SELECT code_set, count(*) AS codes FROM dict_code GROUP BY code_set ORDER BY code_set",
    )
    .await;
    assert_same(&first, &expected);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!("wrote {} rows to", expected.num_rows())),
        "{stdout}"
    );
    let second = as_text(&read_parquet(&out_dir.join("汇总-2.parquet")));
    assert_eq!(
        second,
        vec![vec![Some("1".to_string()), Some("编制".to_string())]]
    );

    // One result set: the file itself, in the format of its extension.
    std::fs::write(&script, "SELECT 2 AS two;").unwrap();
    let csv = out_dir.join("one.csv");
    succeed(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "two\n2\n");

    // A failing statement writes nothing.
    std::fs::write(&script, "SELECT 3 AS three;\nSELECT * FROM orgg;").unwrap();
    let failed = out_dir.join("failed.xlsx");
    let out = bianzhi(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        failed.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("42P01"));
    assert!(!failed.exists());
    assert!(!out_dir.join("failed-1.xlsx").exists());
}
