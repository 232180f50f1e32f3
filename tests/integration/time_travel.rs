//! `table_at` and `table_history` on a generated city (`bianzhi generate
//! --scale 0.01`) that then gets three more commits: every version and every
//! commit time reads the rows the table had then, history counts what each
//! commit added, errors name the problem, and the same holds over the wire.

use std::process::{Command, Output};
use std::time::Duration;

use bianzhi_engine::server::config::{ConfigFile, Overrides, ServerConfig};
use bianzhi_engine::server::Server;
use bianzhi_engine::session::Output as SessionOutput;
use bianzhi_engine::{Engine, Session, SessionIdentity, Settings};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::TimestampMicrosecondArray;
use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::DataType;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;

const TABLE: &str = "staff_assignment";

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

async fn rows(session: &Session, sql: &str) -> RecordBatch {
    match session.run_one(sql).await {
        Ok(SessionOutput::Rows { schema, batches }) => concat_batches(&schema, &batches).unwrap(),
        other => panic!("{sql}: {other:?}"),
    }
}

async fn error(session: &Session, sql: &str) -> String {
    match session.run_one(sql).await {
        Ok(output) => panic!("{sql} should fail, gave {output:?}"),
        Err(e) => format!("[{}] {}", e.code, e.message),
    }
}

fn int64(batch: &RecordBatch, column: usize) -> Vec<Option<i64>> {
    let values = cast(batch.column(column), &DataType::Int64).unwrap();
    let values = values.as_any().downcast_ref::<Int64Array>().unwrap();
    (0..values.len())
        .map(|i| (!values.is_null(i)).then(|| values.value(i)))
        .collect()
}

/// Row count and the sum of assignment_id: a fingerprint of the table's rows.
async fn fingerprint(session: &Session, from: &str) -> (i64, Option<i64>) {
    let batch = rows(
        session,
        &format!("SELECT count(*), sum(assignment_id) FROM {from}"),
    )
    .await;
    (int64(&batch, 0)[0].unwrap(), int64(&batch, 1)[0])
}

/// A commit time as a timestamptz string literal, to the microsecond.
fn literal(micros: i64) -> String {
    let time = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
    format!("'{}'", time.format("%Y-%m-%d %H:%M:%S%.6f+00:00"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_and_commit_time_reads_the_rows_of_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    bianzhi(&["generate", "--scale", "0.01", "--data-dir", data]);

    let engine = Engine::open(data).await.unwrap();
    let session = Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();

    // Version 0 is the empty table, version 1 what generate wrote; three
    // INSERTs make versions 2..4. The live table's fingerprint after each
    // commit is what table_at must give for that version.
    let mut expected = vec![(0, None), fingerprint(&session, TABLE).await];
    assert!(expected[1].0 > 1000, "generated rows: {expected:?}");
    let columns = "person_id, org_id, quota_type, staff_category, post_name, leader_level, \
                   civil_rank, entry_date, exit_date, entry_doc_number, exit_reason";
    for k in 1..=3i64 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let sql = format!(
            "INSERT INTO {TABLE} SELECT assignment_id + {offset}, {columns} FROM {TABLE} \
             WHERE assignment_id < 1000000 AND assignment_id % 5 = {k}",
            offset = k * 10_000_000
        );
        session.run_one(&sql).await.unwrap();
        expected.push(fingerprint(&session, TABLE).await);
    }
    assert!(expected.windows(2).all(|w| w[0].0 < w[1].0), "{expected:?}");

    let history = rows(
        &session,
        &format!(
            "SELECT version, committed_at, operation, rows_added, rows_removed, row_count, \
             files_added, files_removed FROM table_history('{TABLE}') ORDER BY version"
        ),
    )
    .await;
    assert_eq!(
        int64(&history, 0),
        (0..=4).map(Some).collect::<Vec<_>>(),
        "one row per commit"
    );
    let operations = history
        .column(2)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(operations.value(0), "CREATE TABLE");
    for version in 1..=4 {
        assert_eq!(operations.value(version), "WRITE");
    }
    let counts: Vec<i64> = expected.iter().map(|(count, _)| *count).collect();
    let added: Vec<Option<i64>> = std::iter::once(Some(0))
        .chain(counts.windows(2).map(|w| Some(w[1] - w[0])))
        .collect();
    assert_eq!(int64(&history, 3), added, "rows_added");
    assert_eq!(int64(&history, 4), vec![Some(0); 5], "rows_removed");
    assert_eq!(
        int64(&history, 5),
        counts.iter().copied().map(Some).collect::<Vec<_>>(),
        "row_count"
    );
    assert_eq!(
        int64(&history, 6),
        vec![Some(0), Some(1), Some(1), Some(1), Some(1)]
    );
    let committed = history
        .column(1)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    let committed: Vec<i64> = committed.values().iter().copied().collect();
    assert!(
        committed.windows(2).all(|w| w[0] < w[1]),
        "commit times increase: {committed:?}"
    );
    let now = Utc::now().timestamp_micros();
    assert!(
        committed
            .iter()
            .all(|t| *t <= now && *t > now - 600_000_000),
        "commit times are of the last minutes: {committed:?}, now {now}"
    );

    for (version, want) in expected.iter().enumerate() {
        let by_version = format!("table_at('{TABLE}', {version})");
        assert_eq!(
            fingerprint(&session, &by_version).await,
            *want,
            "{by_version}"
        );
        // At its commit time exactly, a version is there ...
        let at = format!("table_at('{TABLE}', {})", literal(committed[version]));
        assert_eq!(fingerprint(&session, &at).await, *want, "{at}");
        // ... a millisecond earlier it is not yet.
        if version > 0 {
            let before = format!(
                "table_at('{TABLE}', {})",
                literal(committed[version] - 1000)
            );
            assert_eq!(
                fingerprint(&session, &before).await,
                expected[version - 1],
                "{before}"
            );
        }
    }
    // A TIMESTAMP without zone is UTC; between two commits means the earlier.
    let between = DateTime::<Utc>::from_timestamp_micros((committed[2] + committed[3]) / 2)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S%.6f");
    assert_eq!(
        fingerprint(
            &session,
            &format!("table_at('public.{TABLE}', CAST('{between}' AS TIMESTAMP))")
        )
        .await,
        expected[2]
    );
    // The rows themselves, not only their fingerprint: version 1 is the
    // generated table, which the live table still holds besides the inserts.
    let extra = rows(
        &session,
        &format!(
            "SELECT count(*) FROM (SELECT * FROM {TABLE} EXCEPT ALL \
             SELECT * FROM table_at('{TABLE}', 1))"
        ),
    )
    .await;
    assert_eq!(int64(&extra, 0)[0], Some(counts[4] - counts[1]));

    // Errors say what there is.
    let message = error(&session, &format!("SELECT * FROM table_at('{TABLE}', 5)")).await;
    assert!(
        message
            .contains("table_at: table staff_assignment has versions 0..4; there is no version 5"),
        "{message}"
    );
    let first = DateTime::<Utc>::from_timestamp_micros(committed[0])
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string();
    let message = error(
        &session,
        &format!(
            "SELECT * FROM table_at('{TABLE}', {})",
            literal(committed[0] - 1000)
        ),
    )
    .await;
    assert!(
        message.contains("table_at: table staff_assignment has no version at or before")
            && message.contains(&format!("its first commit (version 0) was made at {first}")),
        "{message}"
    );
    let message = error(&session, "SELECT * FROM table_history('staff_assignments')").await;
    assert!(
        message.starts_with("[42P01]")
            && message.contains("relation \"staff_assignments\" doesn't exist"),
        "{message}"
    );

    // The same over the wire, from a server on this engine.
    let config = ServerConfig::resolve(
        ConfigFile::default(),
        Overrides {
            listen: Some("127.0.0.1:0".into()),
            auth: Some("trust".into()),
            ..Overrides::default()
        },
    )
    .unwrap();
    let server = Server::bind(engine.clone(), config).await.unwrap();
    let port = server.local_addr().port();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=analyst dbname=bianzhi"),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let wire = client
        .query(
            &format!("SELECT version, committed_at, row_count FROM table_history('{TABLE}') ORDER BY version"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(wire.len(), 5);
    for (version, row) in wire.iter().enumerate() {
        assert_eq!(row.get::<_, i64>(0), version as i64);
        let at: DateTime<Utc> = row.get(1);
        assert_eq!(at.timestamp_micros(), committed[version]);
        assert_eq!(row.get::<_, Option<i64>>(2), Some(counts[version]));
    }
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), sum(assignment_id) FROM table_at('{TABLE}', {})",
                literal(committed[3])
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, Option<i64>>(1)),
        expected[3]
    );
    let refused = client
        .query("SELECT * FROM table_at('staff_assignment', 99)", &[])
        .await
        .unwrap_err();
    let db = refused.as_db_error().unwrap();
    assert!(
        db.message()
            .contains("table staff_assignment has versions 0..4; there is no version 99"),
        "{db:?}"
    );
    shutdown.cancel();

    // A data file gone (as a vacuum deletes those only old versions need):
    // the versions that need it say so, the older ones still read.
    let log = std::fs::read_to_string(
        dir.path()
            .join("data")
            .join(TABLE)
            .join("_delta_log/00000000000000000003.json"),
    )
    .unwrap();
    let added: Vec<String> = log
        .lines()
        .filter_map(|line| {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            action["add"]["path"].as_str().map(str::to_string)
        })
        .collect();
    assert_eq!(added.len(), 1, "{log}");
    std::fs::remove_file(dir.path().join("data").join(TABLE).join(&added[0])).unwrap();
    let message = error(&session, &format!("SELECT * FROM table_at('{TABLE}', 3)")).await;
    assert!(
        message.contains(&format!(
            "table_at: version 3 of table staff_assignment can no longer be read: 1 of its data files ({}) are gone",
            added[0]
        )),
        "{message}"
    );
    assert_eq!(
        fingerprint(&session, &format!("table_at('{TABLE}', 2)")).await,
        expected[2]
    );
}
