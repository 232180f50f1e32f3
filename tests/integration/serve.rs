//! The real `bianzhi serve` process: binds a free port and says where, serves
//! a client, and on SIGTERM ends the running statement with 57P01 and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_postgres::NoTls;

/// The child is killed if a test fails before it exits by itself.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_file(path: &std::path::Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return text.trim().to_string();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no address file");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binds_port_zero_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let address_file = dir.path().join("address");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bianzhi"))
        .args(["serve", "--listen", "127.0.0.1:0", "--auth", "trust"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--address-file")
        .arg(&address_file)
        .env("BIANZHI_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut server = ServerProcess(child);

    // The bound address is printed and written to the file, and they agree.
    let address = wait_for_file(&address_file);
    assert!(!address.ends_with(":0"), "a real port: {address}");
    let mut first_line = String::new();
    BufReader::new(stdout).read_line(&mut first_line).unwrap();
    assert!(
        first_line.contains(&format!("listening on {address}")),
        "{first_line}"
    );

    let (host, port) = address.rsplit_once(':').unwrap();
    let (client, connection) = tokio_postgres::connect(
        &format!("host={host} port={port} user=analyst dbname=bianzhi"),
        NoTls,
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let count: i64 = client
        .query_one("SELECT count(*) FROM dict_code", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        count > 100,
        "dict_code filled in a new data directory: {count}"
    );

    // A statement streaming rows when SIGTERM arrives ends with 57P01.
    let rows = client
        .query_raw(
            "SELECT x FROM generate_series(1, 2000000000) AS t(x)",
            std::iter::empty::<i64>(),
        )
        .await
        .unwrap();
    futures::pin_mut!(rows);
    assert!(rows.next().await.unwrap().is_ok(), "first row streams");
    let pid = server.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(30), rows.next()).await {
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(error))) => break error,
            Ok(None) => panic!("the statement finished instead of being stopped"),
            Err(_) => panic!("no end to the statement 30 s after SIGTERM"),
        }
    };
    assert_eq!(
        error.code().map(|c| c.code()),
        Some("57P01"),
        "error: {error}"
    );

    // The process exits by itself, successfully, and the port is closed.
    let start = Instant::now();
    let exit = loop {
        if let Some(exit) = server.0.try_wait().unwrap() {
            break exit;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    let _ = connection.await;
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "port closed"
    );
}
