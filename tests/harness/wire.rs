//! The wire engine for .slt files: a fresh bianzhi server on 127.0.0.1:0 per
//! file, queried with tokio-postgres over the extended protocol (binary
//! results), values decoded by type and rendered like the embedded engine's.

use std::error::Error as _;

use async_trait::async_trait;
use bianzhi_engine::server::config::{ConfigFile, Overrides, ServerConfig};
use bianzhi_engine::server::Server;
use bianzhi_engine::{Engine, EngineOptions};
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

use crate::embedded::{EngineError, TARGET_PARTITIONS};
use crate::value::{render, Value};

pub struct Wire {
    client: Client,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn engine_error(e: impl std::fmt::Display) -> EngineError {
    EngineError(e.to_string())
}

impl Wire {
    pub async fn new() -> Result<Self, EngineError> {
        let dir = tempfile::tempdir().map_err(engine_error)?;
        let location = dir.path().join("data");
        let engine = Engine::open_with(
            location.to_str().unwrap_or_default(),
            EngineOptions {
                target_partitions: Some(TARGET_PARTITIONS),
                ..EngineOptions::default()
            },
        )
        .await
        .map_err(engine_error)?;
        let config = ServerConfig::resolve(
            ConfigFile::default(),
            Overrides {
                listen: Some("127.0.0.1:0".into()),
                ..Overrides::default()
            },
        )
        .map_err(engine_error)?;
        let server = Server::bind(engine, config).await.map_err(engine_error)?;
        let port = server.local_addr().port();
        let shutdown = CancellationToken::new();
        tokio::spawn(server.run(shutdown.clone()));
        let (client, connection) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=slt dbname=bianzhi"),
            NoTls,
        )
        .await
        .map_err(engine_error)?;
        tokio::spawn(connection);
        Ok(Wire {
            client,
            shutdown,
            _dir: dir,
        })
    }
}

/// The error as the embedded engine writes it: `[SQLSTATE] message`.
fn db_error(e: tokio_postgres::Error) -> EngineError {
    match e.as_db_error() {
        Some(db) => EngineError(format!("[{}] {}", db.code().code(), db.message())),
        None => EngineError(e.source().map_or_else(|| e.to_string(), |s| s.to_string())),
    }
}

/// Any value, undecoded.
struct Raw {
    ty: Type,
    bytes: Vec<u8>,
}

impl<'a> FromSql<'a> for Raw {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw {
            ty: ty.clone(),
            bytes: raw.to_vec(),
        })
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

type Decoded = Result<Value, Box<dyn std::error::Error + Sync + Send>>;

fn decode(raw: Option<Raw>) -> Decoded {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    let (ty, bytes) = (&raw.ty, raw.bytes.as_slice());
    if let Kind::Array(element) = ty.kind() {
        let items: Vec<Option<Raw>> = Vec::from_sql(ty, bytes)?;
        let _ = element;
        return Ok(Value::List(
            items.into_iter().map(decode).collect::<Result<_, _>>()?,
        ));
    }
    Ok(match *ty {
        Type::BOOL => Value::Bool(bool::from_sql(ty, bytes)?),
        Type::INT2 => Value::Int(i16::from_sql(ty, bytes)?.into()),
        Type::INT4 => Value::Int(i32::from_sql(ty, bytes)?.into()),
        Type::INT8 => Value::Int(i64::from_sql(ty, bytes)?.into()),
        Type::OID => Value::Int(u32::from_sql(ty, bytes)?.into()),
        Type::FLOAT4 => Value::Float(f32::from_sql(ty, bytes)?.into()),
        Type::FLOAT8 => Value::Float(f64::from_sql(ty, bytes)?),
        Type::NUMERIC => Value::Decimal(numeric(bytes)?),
        Type::DATE => Value::Date(
            chrono::NaiveDate::from_sql(ty, bytes)?
                .format("%Y-%m-%d")
                .to_string(),
        ),
        Type::TIMESTAMP => Value::Timestamp(
            chrono::NaiveDateTime::from_sql(ty, bytes)?
                .and_utc()
                .timestamp_micros(),
        ),
        Type::TIMESTAMPTZ => Value::TimestampUtc(
            chrono::DateTime::<chrono::Utc>::from_sql(ty, bytes)?.timestamp_micros(),
        ),
        _ => Value::Text(String::from_utf8_lossy(bytes).to_string()),
    })
}

/// PostgreSQL's binary numeric → decimal text with its display scale.
fn numeric(bytes: &[u8]) -> Result<String, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> Result<i16, Box<dyn std::error::Error + Sync + Send>> {
        let b = bytes.get(i..i + 2).ok_or("short numeric")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i32;
    let sign = word(4)? as u16;
    let dscale = word(6)? as usize;
    if sign == 0xC000 {
        return Ok("NaN".into());
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Result<_, _>>()?;
    // Integer part: base-10000 digits with weight ≥ 0.
    let mut integer = String::new();
    for position in 0..=weight.max(0) {
        let digit = if weight >= 0 {
            digits.get(position as usize).copied().unwrap_or(0)
        } else {
            0
        };
        if integer.is_empty() {
            integer = digit.to_string();
        } else {
            integer.push_str(&format!("{digit:04}"));
        }
    }
    if weight < 0 {
        integer = "0".into();
    }
    let mut fraction = String::new();
    for k in 1..=dscale.div_ceil(4) as i32 {
        let index = weight + k;
        let digit = if index >= 0 {
            digits.get(index as usize).copied().unwrap_or(0)
        } else {
            0
        };
        fraction.push_str(&format!("{digit:04}"));
    }
    fraction.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if dscale > 0 {
        format!("{sign}{integer}.{fraction}")
    } else {
        format!("{sign}{integer}")
    })
}

fn column_type(ty: &Type) -> DefaultColumnType {
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 => DefaultColumnType::Integer,
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => DefaultColumnType::FloatingPoint,
        Type::TEXT | Type::VARCHAR => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Wire {
    type Error = EngineError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let statement = self.client.prepare(sql).await.map_err(db_error)?;
        if statement.columns().is_empty() {
            let count = self
                .client
                .execute(&statement, &[])
                .await
                .map_err(db_error)?;
            return Ok(DBOutput::StatementComplete(count));
        }
        let types = statement
            .columns()
            .iter()
            .map(|c| column_type(c.type_()))
            .collect();
        let rows = self.client.query(&statement, &[]).await.map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut cells = Vec::with_capacity(row.len());
            for index in 0..row.len() {
                let raw: Option<Raw> = row.try_get(index).map_err(db_error)?;
                cells.push(render(&decode(raw).map_err(engine_error)?));
            }
            out.push(cells);
        }
        Ok(DBOutput::Rows { types, rows: out })
    }

    async fn shutdown(&mut self) {
        self.shutdown.cancel();
    }

    fn engine_name(&self) -> &str {
        "pgwire"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// Checks of the numeric decoder, run by the harness before any file.
pub fn self_check() -> Result<(), String> {
    // 12.50 (dscale 2): ndigits 2, weight 0, sign 0, dscale 2, digits [12, 5000].
    let bytes = [0, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x13, 0x88];
    let got = numeric(&bytes).map_err(|e| e.to_string())?;
    if got != "12.50" {
        return Err(format!("numeric decoder: got {got}, want 12.50"));
    }
    // -0.0301 (dscale 4): ndigits 1, weight -1, sign 0x4000, digits [301].
    let bytes = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 4, 0x01, 0x2D];
    let got = numeric(&bytes).map_err(|e| e.to_string())?;
    if got != "-0.0301" {
        return Err(format!("numeric decoder: got {got}, want -0.0301"));
    }
    Ok(())
}
