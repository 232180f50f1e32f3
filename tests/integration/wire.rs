//! The PostgreSQL server with tokio-postgres on a real socket: parameters,
//! binary results, types, SQLSTATEs, cancel and timeouts while rows stream,
//! session isolation, memory limits, SCRAM, TLS, limits and bad clients.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bianzhi_catalog::generator::{generate, GenerateOptions};
use bianzhi_catalog::{Catalog, DataDir};
use bianzhi_engine::server::config::{ConfigFile, Overrides, ServerConfig};
use bianzhi_engine::server::registry::Registry;
use bianzhi_engine::server::scram::Verifier;
use bianzhi_engine::server::Server;
use bianzhi_engine::{Engine, EngineOptions};
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_util::sync::CancellationToken;

/// A generated city shared by the read-only tests (generated once).
fn shared_data() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("data");
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let data = DataDir::open(location.to_str().unwrap()).await.unwrap();
                generate(
                    &data,
                    GenerateOptions {
                        scale: 0.003,
                        seed: 5,
                    },
                    &|_, _, _| {},
                )
                .await
                .unwrap();
            });
        })
        .join()
        .unwrap();
        dir
    })
    .path()
}

struct TestServer {
    address: SocketAddr,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestServer {
    async fn start(file: &str, overrides: Overrides, generated: bool) -> TestServer {
        let (dir, location) = if generated {
            (None, shared_data().join("data"))
        } else {
            let dir = tempfile::tempdir().unwrap();
            let location = dir.path().join("data");
            (Some(dir), location)
        };
        let config = ServerConfig::resolve(
            ConfigFile::parse("test.toml", file).unwrap(),
            Overrides {
                listen: Some("127.0.0.1:0".into()),
                ..overrides
            },
        )
        .unwrap();
        let engine = Engine::open_with(
            location.to_str().unwrap(),
            EngineOptions {
                target_partitions: Some(2),
                query_memory_limit: config.query_memory_limit,
            },
        )
        .await
        .unwrap();
        let server = Server::bind(engine, config).await.unwrap();
        let address = server.local_addr();
        let registry = server.state().registry.clone();
        let shutdown = CancellationToken::new();
        tokio::spawn(server.run(shutdown.clone()));
        TestServer {
            address,
            registry,
            shutdown,
            _dir: dir,
        }
    }

    async fn trust() -> TestServer {
        Self::start("", Overrides::default(), true).await
    }

    fn url(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=bianzhi",
            self.address.port()
        )
    }

    async fn client(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.url("analyst"), NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

/// Sends `csv` to `COPY person (…) FROM STDIN WITH (FORMAT csv)`: the
/// rows copied, or the server's error.
async fn copy_person_csv(
    client: &tokio_postgres::Client,
    csv: &'static str,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client
        .copy_in("COPY person (person_id, id_hash, id_masked, person_name, gender, birth_date) FROM STDIN WITH (FORMAT csv)")
        .await?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(csv.as_bytes())).await?;
    sink.finish().await
}

fn code(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map(|e| e.code().code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {error}"))
}

#[tokio::test]
async fn parameters_and_binary_results_match_the_text_protocol() {
    let server = TestServer::trust().await;
    let client = server.client().await;
    // Typed parameters with ParameterDescription: bigint, text, date.
    let statement = client
        .prepare("SELECT org_id, org_name, tier FROM org WHERE org_id = $1 AND tier = $2 AND valid_from <= $3")
        .await
        .unwrap();
    assert_eq!(statement.params(), &[Type::INT8, Type::TEXT, Type::DATE]);
    let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let rows = client
        .query(&statement, &[&1i64, &"市", &date])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let name: String = rows[0].get(1);
    assert_eq!(name, "中共深圳市纪律检查委员会");
    // The same row through the simple (text) protocol.
    let text = client
        .simple_query("SELECT org_id, org_name FROM org WHERE org_id = 1")
        .await
        .unwrap();
    let row = text.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    });
    assert_eq!(row.unwrap().get(1), Some(name.as_str()));
    // NULL parameters and NULL results.
    let rows = client
        .query(
            "SELECT $1::text IS NULL AS is_null, NULL::bigint AS nothing",
            &[&None::<String>],
        )
        .await
        .unwrap();
    assert!(rows[0].get::<_, bool>(0));
    assert_eq!(rows[0].get::<_, Option<i64>>(1), None);
}

#[tokio::test]
async fn every_schema_type_is_sent_with_its_postgres_oid() {
    let server = TestServer::trust().await;
    let client = server.client().await;
    let catalog = Catalog::builtin().unwrap();
    for table in catalog.tables() {
        let statement = client
            .prepare(&format!("SELECT * FROM {}", table.qualified_name()))
            .await
            .unwrap();
        for (column, def) in statement.columns().iter().zip(&table.columns) {
            let expected = match def.pg_type.as_str() {
                "bigint" => Type::INT8,
                "integer" => Type::INT4,
                "smallint" => Type::INT2,
                "text" => Type::TEXT,
                "boolean" => Type::BOOL,
                "date" => Type::DATE,
                "timestamp with time zone" => Type::TIMESTAMPTZ,
                "double precision" => Type::FLOAT8,
                t if t.starts_with("numeric") => Type::NUMERIC,
                other => panic!("unexpected type {other}"),
            };
            assert_eq!(column.type_(), &expected, "{}.{}", table.name, def.name);
        }
    }
    // Values of each type decode in binary.
    let row = client
        .query_one(
            "SELECT stat_year, resident_population, land_area_km2 FROM region_stat_year \
             WHERE region_code = '440300000000' ORDER BY stat_year LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i16>(0), 2020);
    assert!(row.get::<_, i64>(1) > 40_000);
    assert!(row.get::<_, f64>(2) > 2000.0);
    let row = client
        .query_one(
            "SELECT period, amount::text FROM external_roster WHERE item = '应发工资' LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let period: chrono::NaiveDate = row.get(0);
    assert!(period >= chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
    let amount: String = row.get(1);
    assert!(amount.contains('.'), "{amount}");
    let row = client
        .query_one(
            "SELECT recorded_at FROM staff_event ORDER BY event_id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let recorded: chrono::DateTime<chrono::Utc> = row.get(0);
    assert!(recorded.timestamp() > 1_577_836_800);
    let row = client
        .query_one("SELECT is_vertical FROM org WHERE org_id = 1", &[])
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0));
}

#[tokio::test]
async fn errors_carry_postgres_sqlstates_and_transactions_abort() {
    let server = TestServer::trust().await;
    let client = server.client().await;
    for (sql, expected) in [
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM org", "42703"),
        ("SELEC 1", "42601"),
        ("SELECT 1/0", "22012"),
        ("SELECT CAST('abc' AS INT)", "22P02"),
        ("COPY org FROM '/tmp/org.csv'", "0A000"),
    ] {
        let error = client.simple_query(sql).await.unwrap_err();
        assert_eq!(code(&error), expected, "{sql}");
    }
    client.batch_execute("BEGIN").await.unwrap();
    assert_eq!(
        code(&client.simple_query("SELECT 1/0").await.unwrap_err()),
        "22012"
    );
    assert_eq!(
        code(&client.simple_query("SELECT 1").await.unwrap_err()),
        "25P02"
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    // ROLLBACK TO SAVEPOINT leaves the failed state.
    client.batch_execute("BEGIN; SAVEPOINT s").await.unwrap();
    assert!(client.simple_query("SELECT 1/0").await.is_err());
    client
        .batch_execute("ROLLBACK TO SAVEPOINT s")
        .await
        .unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    // Several statements in one simple query, and empty ones.
    let messages = client.simple_query("SELECT 1; SELECT 2, 3").await.unwrap();
    let rows = messages
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(rows, 2);
    client.simple_query("-- ping").await.unwrap();
    client.simple_query("").await.unwrap();
    // After an error in a list, later statements do not run.
    let error = client
        .simple_query(
            "CREATE VIEW v1 AS SELECT 1 AS a; SELECT 1/0; CREATE VIEW v2 AS SELECT 2 AS b",
        )
        .await
        .unwrap_err();
    assert_eq!(code(&error), "22012");
    assert!(client.simple_query("SELECT * FROM v1").await.is_ok());
    assert_eq!(
        code(&client.simple_query("SELECT * FROM v2").await.unwrap_err()),
        "42P01"
    );
}

#[tokio::test]
async fn cancel_stops_a_query_while_rows_stream() {
    let server = TestServer::trust().await;
    let client = server.client().await;
    let cancel = client.cancel_token();
    let started = Instant::now();
    let stream = client
        .query_raw(
            "SELECT value FROM generate_series(1, 2000000000) AS t(value)",
            Vec::<i64>::new(),
        )
        .await
        .unwrap();
    futures::pin_mut!(stream);
    let mut rows = 0;
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(_) => {
                rows += 1;
                if rows == 1000 {
                    cancel.cancel_query(NoTls).await.unwrap();
                }
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("the query was cancelled");
    assert_eq!(code(&error), "57014");
    assert!(
        (1000..200_000_000).contains(&rows),
        "{rows} rows before the cancel took"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // The connection is still usable.
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn statement_timeout_stops_streaming_rows() {
    let server = TestServer::trust().await;
    let client = server.client().await;
    client
        .batch_execute("SET statement_timeout = '500ms'")
        .await
        .unwrap();
    let started = Instant::now();
    let stream = client
        .query_raw(
            "SELECT value FROM generate_series(1, 2000000000) AS t(value)",
            Vec::<i64>::new(),
        )
        .await
        .unwrap();
    futures::pin_mut!(stream);
    let error = loop {
        match stream.next().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the query finished instead of timing out"),
        }
    };
    assert_eq!(code(&error), "57014");
    assert!(error
        .as_db_error()
        .unwrap()
        .message()
        .contains("statement timeout"));
    assert!(started.elapsed() < Duration::from_secs(30));
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn sessions_keep_their_own_settings() {
    let server = TestServer::trust().await;
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("SET TimeZone = 'Asia/Shanghai'; SET search_path TO generator, public")
        .await
        .unwrap();
    let show = |rows: Vec<SimpleQueryMessage>| -> String {
        rows.into_iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(
        show(a.simple_query("SHOW TimeZone").await.unwrap()),
        "Asia/Shanghai"
    );
    assert_eq!(show(b.simple_query("SHOW TimeZone").await.unwrap()), "UTC");
    assert!(a.simple_query("SELECT count(*) FROM planted").await.is_ok());
    assert_eq!(
        code(
            &b.simple_query("SELECT count(*) FROM planted")
                .await
                .unwrap_err()
        ),
        "42P01"
    );
    // Text timestamps follow each session's time zone.
    let in_a = show(
        a.simple_query("SELECT recorded_at FROM staff_event ORDER BY event_id LIMIT 1")
            .await
            .unwrap(),
    );
    let in_b = show(
        b.simple_query("SELECT recorded_at FROM staff_event ORDER BY event_id LIMIT 1")
            .await
            .unwrap(),
    );
    assert!(in_a.ends_with("+08:00") || in_a.ends_with("+08"), "{in_a}");
    assert!(in_b.ends_with("+00:00") || in_b.ends_with("+00"), "{in_b}");
    // A prepared statement of one connection is unknown to the other.
    let statement = a.prepare("SELECT 1").await.unwrap();
    assert!(b.query(&statement, &[]).await.is_err());
}

#[tokio::test]
async fn a_query_over_its_memory_limit_fails_cleanly() {
    let server = TestServer::start(
        "[limits]\nquery_memory = \"8MiB\"\n",
        Overrides::default(),
        false,
    )
    .await;
    let client = server.client().await;
    let error = client
        .simple_query(
            "SELECT count(*) FROM generate_series(1, 3000000) AS a(v) JOIN generate_series(1, 3000000) AS b(v) ON a.v = b.v",
        )
        .await
        .unwrap_err();
    assert_eq!(code(&error), "53200", "{error}");
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn scram_accepts_the_password_and_nothing_else() {
    let verifier = Verifier::generate("s3cret", 4096).unwrap().encode();
    let file = format!("[auth]\nmethod = \"scram-sha-256\"\n[[auth.users]]\nname = \"analyst\"\npassword = \"{verifier}\"\n");
    let server = TestServer::start(&file, Overrides::default(), false).await;
    let good = format!("{} password=s3cret", server.url("analyst"));
    let (client, connection) = tokio_postgres::connect(&good, NoTls).await.unwrap();
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
    for url in [
        format!("{} password=wrong", server.url("analyst")),
        format!("{} password=s3cret", server.url("nobody")),
    ] {
        let error = tokio_postgres::connect(&url, NoTls)
            .await
            .err()
            .expect("login refused");
        assert_eq!(code(&error), "28P01", "{url}");
    }
    assert!(
        tokio_postgres::connect(&server.url("analyst"), NoTls)
            .await
            .is_err(),
        "no password"
    );
}

#[tokio::test]
async fn tls_with_a_certificate_serves_sslmode_require() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start(
        "",
        Overrides {
            tls_cert: Some(cert.clone()),
            tls_key: Some(key.clone()),
            ..Overrides::default()
        },
        false,
    )
    .await;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let url = format!(
        "host=localhost port={} user=analyst dbname=bianzhi sslmode=require",
        server.address.port()
    );
    let (client, connection) = tokio_postgres::connect(&url, tls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query("SELECT count(*) FROM dict_code", &[])
        .await
        .unwrap();
    assert!(rows[0].get::<_, i64>(0) > 100);

    // A key that cannot be loaded stops the server from starting.
    std::fs::write(&key, "not a key").unwrap();
    let config = ServerConfig::resolve(
        ConfigFile::default(),
        Overrides {
            listen: Some("127.0.0.1:0".into()),
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..Overrides::default()
        },
    )
    .unwrap();
    let engine = Engine::open(dir.path().join("data").to_str().unwrap())
        .await
        .unwrap();
    let error = Server::bind(engine, config)
        .await
        .err()
        .expect("bad key refused");
    assert!(error.to_string().contains("server.key"), "{error}");
}

#[tokio::test]
async fn max_connections_refuses_with_53300() {
    let server = TestServer::start("max_connections = 2\n", Overrides::default(), false).await;
    let first = server.client().await;
    let second = server.client().await;
    let error = tokio_postgres::connect(&server.url("analyst"), NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(code(&error), "53300");
    drop(first);
    // The slot comes back once a client leaves.
    let mut third = None;
    for _ in 0..50 {
        if let Ok((client, connection)) =
            tokio_postgres::connect(&server.url("analyst"), NoTls).await
        {
            tokio::spawn(connection);
            third = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    third
        .expect("a slot was freed")
        .simple_query("SELECT 1")
        .await
        .unwrap();
    second.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn copy_to_stdout_exports_csv_with_a_header() {
    let server = TestServer::trust().await;
    let client = server.client().await;
    let stream = client
        .copy_out("COPY (SELECT code, sort_order FROM dict_code WHERE code_set = 'gender' ORDER BY sort_order) TO STDOUT WITH (FORMAT csv, HEADER)")
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    assert_eq!(text, "code,sort_order\n男,1\n女,2\n");
    let stream = client.copy_out("COPY region TO STDOUT").await.unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    assert!(
        text.contains("440300000000\t深圳市\t市\t\\N\t440300\tf\t1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn copy_from_stdin_loads_rows_in_one_commit() {
    let server = TestServer::start("", Overrides::default(), false).await;
    let client = server.client().await;
    // Text format (tab, \N) through the extended protocol, as tokio-postgres sends it.
    let sink = client
        .copy_in("COPY person (person_id, id_hash, id_masked, person_name, gender, birth_date, education) FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        "1\th1\tm1\t张三\t男\t1990-01-01\t\\N\n2\th2\tm2\t李\\t四\t女\t1991年2月3日\t大学本科\n"
            .as_bytes(),
    ))
    .await
    .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let rows = client
        .query(
            "SELECT person_name, birth_date::text, education FROM person ORDER BY person_id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        [
            ("张三".to_string(), "1990-01-01".to_string(), None),
            (
                "李\t四".to_string(),
                "1991-02-03".to_string(),
                Some("大学本科".to_string())
            )
        ]
    );

    // A repeated key rejects everything with 23505, the line, and commits nothing.
    let error = copy_person_csv(
        &client,
        "3,h3,m3,王五,男,1990-01-01\n1,h1,m1,张三,男,1990-01-01\n",
    )
    .await
    .unwrap_err();
    assert_eq!(code(&error), "23505");
    let message = error.as_db_error().unwrap().message().to_string();
    assert!(
        message.starts_with("COPY person, line 2, column person_id:"),
        "{message}"
    );
    let count: i64 = client
        .query_one("SELECT count(*) FROM person", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);

    // CSV as PostgreSQL reads it: a quoted "" is the empty string (a value,
    // so a NOT NULL column takes it), an unquoted empty field is NULL.
    assert_eq!(
        copy_person_csv(&client, "8,h8,m8,\"\",女,1990-01-01\n")
            .await
            .unwrap(),
        1
    );
    let name: String = client
        .query_one("SELECT person_name FROM person WHERE person_id = 8", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "");
    let error = copy_person_csv(&client, "7,h7,m7,,男,1990-01-01\n")
        .await
        .unwrap_err();
    assert_eq!(code(&error), "23502");
    client
        .execute("DELETE FROM person WHERE person_id = 8", &[])
        .await
        .unwrap();

    // UPDATE and DELETE commit at once, with their row counts as the tag.
    let updated = client
        .execute(
            "UPDATE person SET education = '研究生', person_name = person_name || '（改）' WHERE person.person_id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let deleted = client
        .execute(
            "DELETE FROM person WHERE birth_date > DATE '1991-01-01'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let rows = client
        .query("SELECT person_id, person_name, education FROM person", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].get::<_, i64>(0),
            rows[0].get::<_, String>(1),
            rows[0].get::<_, Option<String>>(2)
        ),
        (1, "张三（改）".to_string(), Some("研究生".to_string()))
    );
    assert_eq!(
        client
            .execute("DELETE FROM person WHERE person_id = 99", &[])
            .await
            .unwrap(),
        0
    );

    // Unknown tables and columns fail before any data is sent.
    let error = client
        .copy_in::<_, bytes::Bytes>("COPY no_such_table FROM STDIN")
        .await
        .err()
        .expect("an error");
    assert_eq!(code(&error), "42P01");
    let error = client
        .copy_in::<_, bytes::Bytes>("COPY person (nope) FROM STDIN")
        .await
        .err()
        .expect("an error");
    assert_eq!(code(&error), "42703");
    // The connection is still usable.
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

/// Read backend messages until ReadyForQuery: (type, body) pairs.
async fn read_until_ready(socket: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    loop {
        let mut header = [0u8; 5];
        if socket.read_exact(&mut header).await.is_err() {
            return messages;
        }
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; length - 4];
        socket.read_exact(&mut body).await.unwrap();
        let done = header[0] == b'Z';
        messages.push((header[0], body));
        if done {
            return messages;
        }
    }
}

fn startup_packet(user: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for (k, v) in [
        ("user", user),
        ("database", "bianzhi"),
        ("application_name", "raw"),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

#[tokio::test]
async fn startup_reports_the_parameters_clients_need() {
    let server = TestServer::trust().await;
    let mut socket = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    socket.write_all(&startup_packet("analyst")).await.unwrap();
    let messages = read_until_ready(&mut socket).await;
    let parameters: std::collections::HashMap<String, String> = messages
        .iter()
        .filter(|(t, _)| *t == b'S')
        .map(|(_, body)| {
            let mut parts = body.split(|b| *b == 0);
            let k = String::from_utf8_lossy(parts.next().unwrap()).to_string();
            let v = String::from_utf8_lossy(parts.next().unwrap()).to_string();
            (k, v)
        })
        .collect();
    assert!(
        parameters["server_version"].starts_with("16."),
        "{parameters:?}"
    );
    assert_eq!(parameters["server_encoding"], "UTF8");
    assert_eq!(parameters["client_encoding"], "UTF8");
    assert!(parameters["DateStyle"].starts_with("ISO"));
    assert_eq!(parameters["integer_datetimes"], "on");
    assert_eq!(parameters["standard_conforming_strings"], "on");
    assert_eq!(parameters["TimeZone"], "UTC");
    assert_eq!(parameters["application_name"], "raw");
    assert!(
        messages.iter().any(|(t, _)| *t == b'K'),
        "BackendKeyData sent"
    );
}

#[tokio::test]
async fn bad_clients_do_not_disturb_the_others() {
    let server = TestServer::trust().await;
    // Garbage bytes instead of a startup packet.
    let mut socket = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let garbage: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = socket.write_all(&garbage).await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut sink)).await;
    drop(socket);
    // A truncated message after a good startup.
    let mut socket = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    socket.write_all(&startup_packet("analyst")).await.unwrap();
    read_until_ready(&mut socket).await;
    socket
        .write_all(&[b'Q', 0, 0, 0, 100, b'S', b'E'])
        .await
        .unwrap();
    drop(socket);
    // A malformed Bind body (too short for what it declares).
    let mut socket = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    socket.write_all(&startup_packet("analyst")).await.unwrap();
    read_until_ready(&mut socket).await;
    socket.write_all(&[b'B', 0, 0, 0, 6, 0, 0]).await.unwrap();
    socket.write_all(&[b'S', 0, 0, 0, 4]).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut sink)).await;
    drop(socket);
    // A client that vanishes in the middle of a large result.
    {
        let (client, connection) = tokio_postgres::connect(&server.url("analyst"), NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(connection);
        let stream = client
            .query_raw(
                "SELECT value FROM generate_series(1, 50000000) AS t(value)",
                Vec::<i64>::new(),
            )
            .await
            .unwrap();
        futures::pin_mut!(stream);
        for _ in 0..100 {
            stream.next().await;
        }
        task.abort();
    }
    // 64 clients at once, each with its own query.
    let mut tasks = Vec::new();
    for n in 0..64i64 {
        let url = server.url("analyst");
        tasks.push(tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
            tokio::spawn(connection);
            let row = client
                .query_one(
                    "SELECT count(*) + $1 FROM org WHERE tier <> '不存在'",
                    &[&n],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) - n
        }));
    }
    let counts: Vec<i64> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        counts.iter().all(|c| *c == counts[0] && *c > 1000),
        "{counts:?}"
    );
    // Every connection is released.
    for _ in 0..100 {
        if server.registry.open_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.registry.open_connections(), 0, "connections leaked");
    let client = server.client().await;
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn pooled_connection_resets_are_accepted() {
    let server = TestServer::trust().await;
    let client = server.client().await;
    // asyncpg's and npgsql's resets.
    client
        .batch_execute("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;")
        .await
        .unwrap();
    client.batch_execute("DISCARD ALL").await.unwrap();
    let version: String = client
        .query_one("SELECT pg_catalog.version()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(version.starts_with("PostgreSQL 16."), "{version}");
    let rows = client
        .simple_query("SHOW standard_conforming_strings")
        .await
        .unwrap();
    assert!(rows
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("on"))));
}
