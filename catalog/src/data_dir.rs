//! The data directory: one Delta Lake table per table of schema.sql, under one root
//! that is a local path or `file://` URL. Every table is reached through deltalake's
//! object-store layer by URL, so another store is a matter of registering its handler.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructType;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::future::try_join_all;
use url::Url;

use crate::dict::dict_code_batch;
use crate::error::{Error, Result};
use crate::schema::{Catalog, TableDef, PUBLIC_SCHEMA};

/// Default location of the data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./bianzhi-data";

/// An opened data directory whose tables all match schema.sql.
#[derive(Debug, Clone)]
pub struct DataDir {
    location: String,
    root: Url,
    catalog: &'static Catalog,
}

impl DataDir {
    /// Open `location` (a local path or a `file://` URL),
    /// creating every missing table (and filling `dict_code`) and checking that every
    /// existing table has the schema that schema.sql defines.
    pub async fn open(location: &str) -> Result<DataDir> {
        let catalog = Catalog::builtin()?;
        let root = location_url(location)?;
        let dir = DataDir {
            location: location.to_string(),
            root,
            catalog,
        };
        let checks = catalog.tables().iter().map(|table| dir.open_table(table));
        let differences: Vec<String> = try_join_all(checks).await?.into_iter().flatten().collect();
        if !differences.is_empty() {
            return Err(Error::SchemaMismatch {
                location: dir.location.clone(),
                differences,
            });
        }
        tracing::debug!(location = %dir.root, "data directory opened");
        Ok(dir)
    }

    /// The location as the user gave it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The root URL every table lives under.
    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn catalog(&self) -> &'static Catalog {
        self.catalog
    }

    /// Where a table's Delta log and files live: `<root>/<table>/`, or
    /// `<root>/<schema>/<table>/` outside `public`.
    pub fn table_url(&self, table: &TableDef) -> Result<Url> {
        let relative = if table.schema == PUBLIC_SCHEMA {
            format!("{}/", table.name)
        } else {
            format!("{}/{}/", table.schema, table.name)
        };
        self.root.join(&relative).map_err(|e| Error::Location {
            location: self.location.clone(),
            reason: e.to_string(),
        })
    }

    /// The table at its latest version.
    pub async fn load(&self, qualified_name: &str) -> Result<DeltaTable> {
        let table = self.catalog.table(qualified_name)?;
        let url = self.table_url(table)?;
        deltalake::open_table(url)
            .await
            .map_err(|e| Error::delta(qualified_name, e))
    }

    /// Number of rows a table holds now (from the Delta log's file statistics
    /// when they are present, by counting otherwise).
    pub async fn row_count(&self, qualified_name: &str) -> Result<u64> {
        let table = self.load(qualified_name).await?;
        let snapshot = table
            .snapshot()
            .map_err(|e| Error::delta(qualified_name, e))?;
        let mut rows = 0u64;
        for file in snapshot.log_data().into_iter() {
            rows += file.num_records().unwrap_or(0) as u64;
        }
        Ok(rows)
    }

    /// A writer that appends batches to one table and commits them all at once:
    /// until [`TableWriter::commit`] succeeds, readers see the table as it was.
    pub async fn writer(&self, qualified_name: &str) -> Result<TableWriter> {
        let def = self.catalog.table(qualified_name)?;
        let table = self.load(qualified_name).await?;
        let writer =
            RecordBatchWriter::for_table(&table).map_err(|e| Error::delta(qualified_name, e))?;
        Ok(TableWriter {
            name: qualified_name.to_string(),
            schema: def.arrow_schema(),
            table,
            writer,
            rows: 0,
        })
    }

    /// Create the table if it is new; otherwise list how it differs from schema.sql.
    async fn open_table(&self, def: &TableDef) -> Result<Vec<String>> {
        let name = def.qualified_name();
        let url = self.table_url(def)?;
        ensure_local_dir(&url)?;
        // A table without a log is new: build it unloaded rather than have the
        // kernel log a failed load for every table of a fresh directory.
        let is_new = url
            .to_file_path()
            .is_ok_and(|path| !path.join("_delta_log").is_dir());
        let table = if is_new {
            DeltaTableBuilder::from_url(url)
                .and_then(|builder| builder.build())
                .map_err(|e| Error::delta(&name, e))?
        } else {
            DeltaTable::try_from_url(url)
                .await
                .map_err(|e| Error::delta(&name, e))?
        };
        let expected: StructType = def
            .arrow_schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|e| Error::datafusion(format!("schema of {name}"), e))?;
        if table.version().is_none() {
            let mut created = table
                .create()
                .with_table_name(&def.name)
                .with_comment(def.comment.clone().unwrap_or_default())
                .with_columns(expected.fields().cloned())
                .await
                .map_err(|e| Error::delta(&name, e))?;
            tracing::debug!(table = %name, "created empty table");
            if name == "dict_code" {
                let batch = dict_code_batch(self.catalog)?;
                let mut writer =
                    RecordBatchWriter::for_table(&created).map_err(|e| Error::delta(&name, e))?;
                writer
                    .write(batch)
                    .await
                    .map_err(|e| Error::delta(&name, e))?;
                writer
                    .flush_and_commit(&mut created)
                    .await
                    .map_err(|e| Error::delta(&name, e))?;
            }
            return Ok(Vec::new());
        }
        let stored = table
            .snapshot()
            .map_err(|e| Error::delta(&name, e))?
            .schema();
        Ok(schema_differences(&name, &expected, stored.as_ref()))
    }
}

/// Appends batches to one table and commits them in a single Delta transaction.
pub struct TableWriter {
    name: String,
    schema: SchemaRef,
    table: DeltaTable,
    writer: RecordBatchWriter,
    rows: u64,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("name", &self.name)
            .field("rows", &self.rows)
            .finish()
    }
}

impl TableWriter {
    /// The schema batches must have (schema.sql's, comments included).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Stream one batch to storage (not yet visible to readers).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .await
            .map_err(|e| Error::delta(&self.name, e))
    }

    /// The table's qualified name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Make everything written visible in one commit; returns the new version.
    pub async fn commit(mut self) -> Result<u64> {
        if self.rows == 0 {
            return Ok(self.table.version().unwrap_or(0));
        }
        let version = self
            .writer
            .flush_and_commit(&mut self.table)
            .await
            .map_err(|e| Error::delta(&self.name, e))?;
        Ok(version)
    }
}

/// Human-readable differences between the schema.sql schema and a stored one.
fn schema_differences(table: &str, expected: &StructType, stored: &StructType) -> Vec<String> {
    let mut out = Vec::new();
    for field in expected.fields() {
        match stored.field(field.name()) {
            None => out.push(format!(
                "  table {table}: column {} ({}) is missing from the stored table",
                field.name(),
                field.data_type()
            )),
            Some(found) => {
                if found.data_type() != field.data_type() {
                    out.push(format!(
                        "  table {table}: column {} is stored as {}, schema.sql says {}",
                        field.name(),
                        found.data_type(),
                        field.data_type()
                    ));
                }
                if found.is_nullable() != field.is_nullable() {
                    out.push(format!(
                        "  table {table}: column {} is stored {}, schema.sql says {}",
                        field.name(),
                        if found.is_nullable() {
                            "nullable"
                        } else {
                            "NOT NULL"
                        },
                        if field.is_nullable() {
                            "nullable"
                        } else {
                            "NOT NULL"
                        },
                    ));
                }
            }
        }
    }
    for found in stored.fields() {
        if expected.field(found.name()).is_none() {
            out.push(format!(
                "  table {table}: the stored table has a column {} ({}) that schema.sql does not define",
                found.name(),
                found.data_type()
            ));
        }
    }
    out
}

/// A path or URL → the root URL (always ending in `/`). Local paths are created.
pub fn location_url(location: &str) -> Result<Url> {
    let bad = |reason: String| Error::Location {
        location: location.to_string(),
        reason,
    };
    if location.trim().is_empty() {
        return Err(bad("the location is empty".into()));
    }
    let mut url = if location.contains("://") {
        Url::parse(location).map_err(|e| bad(e.to_string()))?
    } else {
        let path = Path::new(location);
        std::fs::create_dir_all(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let absolute = path.canonicalize().map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Url::from_directory_path(&absolute)
            .map_err(|()| bad("not an absolute directory path".into()))?
    };
    if url.scheme() != "file" {
        return Err(bad(format!(
            "the {}:// scheme is not built into this bianzhi; use a local path or a file:// URL",
            url.scheme()
        )));
    }
    ensure_local_dir(&url)?;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// deltalake expects a local table directory to exist before it is created.
fn ensure_local_dir(url: &Url) -> Result<()> {
    if url.scheme() == "file" {
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path).map_err(|e| Error::Io { path, source: e })?;
        }
    }
    Ok(())
}

/// Arc-wrapped for sharing between sessions.
pub type SharedDataDir = Arc<DataDir>;

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn locations_become_directory_urls() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let url = location_url(nested.to_str().unwrap()).unwrap();
        assert_eq!(url.scheme(), "file");
        assert!(url.path().ends_with("/a/b/"));
        assert!(nested.is_dir());
        let url = location_url(&format!("file://{}", nested.display())).unwrap();
        assert!(url.as_str().ends_with("/a/b/"));
        let err = location_url("gopher://host/x").unwrap_err();
        assert!(
            err.to_string().contains("gopher:// scheme is not built in"),
            "{err}"
        );
        assert!(location_url("  ").is_err());
    }

    #[tokio::test]
    async fn new_directory_gets_every_table_and_the_code_sets() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("data");
        let data = DataDir::open(location.to_str().unwrap()).await.unwrap();
        for table in data.catalog().tables() {
            let url = data.table_url(table).unwrap();
            let log = url.to_file_path().unwrap().join("_delta_log");
            assert!(log.is_dir(), "{} has no _delta_log", table.qualified_name());
        }
        assert!(data.row_count("dict_code").await.unwrap() > 150);
        assert_eq!(data.row_count("org").await.unwrap(), 0);
        // Opening again checks and succeeds without re-seeding.
        let again = DataDir::open(location.to_str().unwrap()).await.unwrap();
        assert_eq!(
            again.row_count("dict_code").await.unwrap(),
            data.row_count("dict_code").await.unwrap()
        );
    }

    #[tokio::test]
    async fn a_changed_schema_is_reported_column_by_column() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap().to_string();
        // Make `region` by hand with a wrong schema, then open the directory.
        let url = location_url(&location).unwrap().join("region/").unwrap();
        ensure_local_dir(&url).unwrap();
        let table = DeltaTable::try_from_url(url).await.unwrap();
        let wrong = Schema::new(vec![
            Field::new("region_code", DataType::Int64, false),
            Field::new("extra", DataType::Utf8, true),
        ]);
        let wrong: StructType = (&wrong).try_into_kernel().unwrap();
        table
            .create()
            .with_columns(wrong.fields().cloned())
            .await
            .unwrap();
        let err = DataDir::open(&location).await.unwrap_err().to_string();
        assert!(err.contains("does not match sql/schema.sql"), "{err}");
        assert!(
            err.contains("column region_code is stored as long, schema.sql says string"),
            "{err}"
        );
        assert!(
            err.contains("column region_name (string) is missing"),
            "{err}"
        );
        assert!(
            err.contains("has a column extra (string) that schema.sql does not define"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn writes_are_invisible_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path().to_str().unwrap()).await.unwrap();
        let table = data.catalog().table("dict_code").unwrap();
        let before = data.row_count("dict_code").await.unwrap();
        let batch = crate::dict::values_batch(
            table,
            "t.sql",
            "INSERT INTO dict_code VALUES ('x', 'x', 'a', 1, NULL, NULL, NULL);",
        )
        .unwrap();
        let mut writer = data.writer("dict_code").await.unwrap();
        writer.write(batch.clone()).await.unwrap();
        assert_eq!(data.row_count("dict_code").await.unwrap(), before);
        drop(writer);
        assert_eq!(data.row_count("dict_code").await.unwrap(), before);
        let mut writer = data.writer("dict_code").await.unwrap();
        writer.write(batch).await.unwrap();
        writer.commit().await.unwrap();
        assert_eq!(data.row_count("dict_code").await.unwrap(), before + 1);
    }
}
