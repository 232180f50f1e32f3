//! similar_pairs: the exact all-pairs join of duty texts at threshold 0.5,
//! self-join of N texts, N from BIANZHI_BENCH_SIZES (default `20000,100000`;
//! add `1000000` if you have the time), on two corpora made from the
//! generated 三定 clauses:
//! - *halves*: the first part of one clause with the rest of another, so
//!   texts are distinct but share halves, and every half recurs in a fixed
//!   share of all texts (partners per text grow with N);
//! - *jurisdictions*: `texts/jurisdiction_corpus.py` (run with python3),
//!   families of one variant per jurisdiction (BIANZHI_BENCH_JURISDICTIONS,
//!   default 10; 0 skips it) with the clauses' word frequencies, so partners
//!   per text grow with the jurisdictions and pairs with N.
//!
//! Clauses come from the data directory in BIANZHI_BENCH_DATA, or from data
//! generated at BIANZHI_BENCH_SCALE (default 0.1). When PostgreSQL answers
//! `su postgres -c psql`, the same texts are loaded there and the pg_trgm GIN
//! self-join `a.t % b.t` at `pg_trgm.similarity_threshold = 0.5` is timed for
//! comparison, for N up to BIANZHI_BENCH_PG_MAX (default 20000) (a different
//! measure — character trigrams — with the index built in the timing).
//! Each size is also joined again through a memo holding its texts' tokens,
//! as a server's later call over the same texts is.
//!
//! It then times `func_similarity` as a scalar over BIANZHI_BENCH_PAIRS
//! (default 200000) pairs, `SELECT sum(func_similarity(a, b))` through the
//! engine, against PostgreSQL's pg_trgm `similarity(a, b)` and DuckDB's
//! `jaccard(a, b)` (character sets) on the same pairs, as pairs/s: once
//! with pairs drawn from the first size's halves texts (each text in many
//! pairs), once with every one of 450 generated clauses against every one
//! of 450 others in a cross join's order (bianzhi segments each distinct
//! text of a batch once), once with pairs of texts that appear nowhere
//! else.
//!
//! Run: `cargo bench -p bianzhi-benches --bench similar_pairs`.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use bianzhi_catalog::generator::{generate, GenerateOptions};
use bianzhi_catalog::DataDir;
use bianzhi_engine::engine::Engine;
use bianzhi_udfs::text::{
    similar_pairs, similar_pairs_with_memo, JoinOptions, PairRow, PairTokenMemo,
};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use std::sync::Arc;

const THRESHOLD: f64 = 0.5;

/// A fixed-seed generator for the synthetic texts (splitmix64).
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % bound as u64) as usize
    }
}

/// `count` texts: the part of one clause before its first comma with the
/// part of another from its first comma on (or a whole clause, one in four).
fn synthesise(clauses: &[String], count: usize) -> Vec<String> {
    let mut random = Random(7);
    let split = |clause: &str| -> (String, String) {
        match clause.find(['，', ',']) {
            Some(at) => (clause[..at].to_string(), clause[at..].to_string()),
            None => (clause.to_string(), String::new()),
        }
    };
    let halves: Vec<(String, String)> = clauses.iter().map(|c| split(c)).collect();
    (0..count)
        .map(|_| {
            let first = &halves[random.below(halves.len())];
            if random.below(4) == 0 {
                return format!("{}{}", first.0, first.1);
            }
            let second = &halves[random.below(halves.len())];
            format!("{}{}", first.0, second.1)
        })
        .collect()
}

/// Times the self-join of `texts` (and pg_trgm's, up to `postgres_max`).
fn compare(
    corpus: &str,
    texts: &[String],
    weights: &bianzhi_udfs::text::TokenWeights,
    postgres_max: usize,
) -> anyhow::Result<()> {
    let size = texts.len();
    let rows: Vec<PairRow<'_>> = texts
        .iter()
        .enumerate()
        .map(|(id, text)| PairRow {
            id: id as i64,
            group: 0,
            text,
        })
        .collect();
    let options = JoinOptions {
        threshold: THRESHOLD,
        top_k: None,
        threads: 0,
    };
    let started = Instant::now();
    let pairs = similar_pairs(&rows, None, weights, &options);
    let ours = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "  {corpus:<13} N = {size:>8}  bianzhi similar_pairs      {ours:>10.1} ms  {} pairs",
        pairs.len()
    );
    // A later call over the same texts, as in a server: their tokens kept.
    let memo = PairTokenMemo::new();
    similar_pairs_with_memo(&rows, None, weights, &options, &memo);
    let started = Instant::now();
    let again = similar_pairs_with_memo(&rows, None, weights, &options, &memo);
    let kept = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        again == pairs,
        "a call with the texts kept gave other pairs"
    );
    println!(
        "  {corpus:<13} N = {size:>8}  bianzhi, tokens kept       {kept:>10.1} ms  (a later call)"
    );
    if size > postgres_max {
        println!(
            "  {corpus:<13} N = {size:>8}  pg_trgm not run (above BIANZHI_BENCH_PG_MAX = {postgres_max})"
        );
        return Ok(());
    }
    if let Some((index, join, count)) = postgres(texts)? {
        println!(
            "  {corpus:<13} N = {size:>8}  pg_trgm GIN index + % join {:>10.1} ms  ({index:.1} + {join:.1})  {count} pairs",
            index + join
        );
        println!("  ratio postgres / bianzhi = {:.2}", (index + join) / ours);
    }
    Ok(())
}

/// `count` texts of the jurisdictions corpus, from `benches/texts/jurisdiction_corpus.py`.
fn jurisdiction_texts(
    temporary: &tempfile::TempDir,
    clause_words: &[String],
    count: usize,
    jurisdictions: usize,
) -> anyhow::Result<Vec<String>> {
    let words_file = temporary.path().join("clause_words.csv");
    let mut words = String::from("words\n");
    for clause in clause_words {
        words.push_str(clause);
        words.push('\n');
    }
    std::fs::write(&words_file, words)?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/texts/jurisdiction_corpus.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&words_file)
        .arg(count.to_string())
        .arg(jurisdictions.to_string())
        .output()
        .context("python3 is needed for the jurisdictions corpus")?;
    anyhow::ensure!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // duty_id,org_id,version_year,seq,duty_text,valid_from; the texts hold
    // no ASCII comma or quote (words of normalised text, ，and 。).
    let csv = String::from_utf8(output.stdout)?;
    let texts: Vec<String> = csv
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (_, rest) = line.split_once(',')?;
            let (_, rest) = rest.split_once(',')?;
            let (_, rest) = rest.split_once(',')?;
            let (_, rest) = rest.split_once(',')?;
            let (text, _) = rest.rsplit_once(',')?;
            Some(text.to_string())
        })
        .collect();
    anyhow::ensure!(
        texts.len() == count,
        "{script} gave {} texts, not {count}",
        texts.len()
    );
    Ok(texts)
}

/// Milliseconds of the pg_trgm GIN self-join over `texts` (index build, then
/// the join) and its pair count; `None` with a note when PostgreSQL is not
/// reachable.
fn postgres(texts: &[String]) -> anyhow::Result<Option<(f64, f64, u64)>> {
    let reachable = Command::new("su")
        .args(["postgres", "-c", "psql -XAtc 'SELECT 1'"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !reachable {
        println!("  postgres comparison not run (su postgres -c psql failed)");
        return Ok(None);
    }
    let directory = tempfile::Builder::new()
        .prefix("bianzhi-pairs")
        .tempdir_in("/tmp")?;
    let data = directory.path().join("texts.tsv");
    let ids: Vec<String> = (0..texts.len()).map(|id| id.to_string()).collect();
    let rows: Vec<Vec<&str>> = ids
        .iter()
        .zip(texts)
        .map(|(id, text)| vec![id.as_str(), text.as_str()])
        .collect();
    write_tsv(&data, &rows)?;
    let script = format!(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n\
         DROP TABLE IF EXISTS bianzhi_bench_pairs;\n\
         CREATE TABLE bianzhi_bench_pairs (id bigint, t text);\n\
         \\copy bianzhi_bench_pairs FROM '{}'\n\
         ANALYZE bianzhi_bench_pairs;\n\
         SET pg_trgm.similarity_threshold = {THRESHOLD};\n\
         \\timing on\n\
         CREATE INDEX ON bianzhi_bench_pairs USING gin (t gin_trgm_ops);\n\
         SELECT count(*) FROM bianzhi_bench_pairs a JOIN bianzhi_bench_pairs b ON a.t % b.t AND a.id < b.id;\n\
         \\timing off\n\
         DROP TABLE bianzhi_bench_pairs;\n",
        data.display()
    );
    let script_path = directory.path().join("pairs.sql");
    std::fs::write(&script_path, script)?;
    for path in [directory.path(), data.as_path(), script_path.as_path()] {
        Command::new("chmod").arg("a+rX").arg(path).status()?;
    }
    let output = Command::new("su")
        .args([
            "postgres",
            "-c",
            &format!("psql -XAt -v ON_ERROR_STOP=1 -f {}", script_path.display()),
        ])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        println!(
            "  postgres comparison failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Ok(None);
    }
    let times: Vec<f64> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("Time: "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    let count: Option<u64> = stdout.lines().filter_map(|l| l.trim().parse().ok()).next();
    match (times.as_slice(), count) {
        ([index, join, ..], Some(count)) => Ok(Some((*index, *join, count))),
        _ => {
            println!("  postgres output not understood: {stdout}");
            Ok(None)
        }
    }
}

/// Writes `rows` as a tab-separated file PostgreSQL's `\\copy` and DuckDB
/// both read (backslash escapes, no quoting).
fn write_tsv(path: &std::path::Path, rows: &[Vec<&str>]) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for row in rows {
        let escaped: Vec<String> = row
            .iter()
            .map(|field| {
                field
                    .replace('\\', "\\\\")
                    .replace('\t', "\\t")
                    .replace('\n', "\\n")
            })
            .collect();
        writeln!(file, "{}", escaped.join("\t"))?;
    }
    file.flush()?;
    Ok(())
}

/// Milliseconds of `SELECT sum(similarity(a, b))` over the pairs in
/// PostgreSQL 15 with pg_trgm; `None` when PostgreSQL is not reachable.
fn postgres_scalar(pairs_file: &std::path::Path) -> anyhow::Result<Option<f64>> {
    let script = format!(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n\
         DROP TABLE IF EXISTS bianzhi_bench_scalar;\n\
         CREATE TABLE bianzhi_bench_scalar (a text, b text);\n\
         \\copy bianzhi_bench_scalar FROM '{}'\n\
         SELECT count(*) FROM bianzhi_bench_scalar;\n\
         \\timing on\n\
         SELECT sum(similarity(a, b)) FROM bianzhi_bench_scalar;\n\
         \\timing off\n\
         DROP TABLE bianzhi_bench_scalar;\n",
        pairs_file.display()
    );
    let script_path = pairs_file.with_extension("sql");
    std::fs::write(&script_path, script)?;
    for path in [pairs_file, script_path.as_path()] {
        Command::new("chmod").arg("a+rX").arg(path).status()?;
    }
    let output = Command::new("su")
        .args([
            "postgres",
            "-c",
            &format!("psql -XAt -v ON_ERROR_STOP=1 -f {}", script_path.display()),
        ])
        .output();
    let Ok(output) = output else {
        return Ok(None);
    };
    if !output.status.success() {
        println!(
            "  postgres scalar comparison not run: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Ok(None);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout
        .lines()
        .filter_map(|line| line.strip_prefix("Time: "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next())
}

/// Milliseconds of `SELECT sum(jaccard(a, b))` over the pairs in DuckDB
/// (loaded first, untimed); `None` when `python3 -c 'import duckdb'` fails.
fn duckdb_scalar(pairs_file: &std::path::Path) -> Option<f64> {
    let program = r#"
import sys, time, duckdb
con = duckdb.connect()
con.execute("CREATE TABLE p AS SELECT * FROM read_csv(?, delim='\t', header=false, quote='', escape='', columns={'a': 'VARCHAR', 'b': 'VARCHAR'})", [sys.argv[1]])
started = time.perf_counter()
con.execute("SELECT sum(jaccard(a, b)) FROM p").fetchall()
print((time.perf_counter() - started) * 1e3)
"#;
    let output = Command::new("python3")
        .args(["-c", program])
        .arg(pairs_file)
        .output()
        .ok()?;
    if !output.status.success() {
        println!(
            "  duckdb scalar comparison not run: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// `count` pairs drawn at random from `texts`: each text is in many
/// pairs, as in the rows of a join.
fn pairs_drawn_from(texts: &[String], count: usize) -> Vec<Vec<&str>> {
    let mut random = Random(11);
    (0..count)
        .map(|_| {
            vec![
                texts[random.below(texts.len())].as_str(),
                texts[random.below(texts.len())].as_str(),
            ]
        })
        .collect()
}

/// Every text of `left` against every text of `right`, in the order a
/// cross join gives them: what an analyst comparing two departments' duty
/// clauses computes.
fn pairs_across<'t>(left: &'t [String], right: &'t [String]) -> Vec<Vec<&'t str>> {
    left.iter()
        .flat_map(|a| right.iter().map(move |b| vec![a.as_str(), b.as_str()]))
        .collect()
}

/// Up to `count` pairs in which no text appears twice.
fn pairs_of_distinct_texts(texts: &[String], count: usize) -> Vec<Vec<&str>> {
    let mut seen = std::collections::HashSet::new();
    let distinct: Vec<&str> = texts
        .iter()
        .map(String::as_str)
        .filter(|text| seen.insert(*text))
        .collect();
    distinct
        .chunks_exact(2)
        .take(count)
        .map(|pair| pair.to_vec())
        .collect()
}

/// Times `func_similarity` (and bianzhi's own pg_trgm `similarity`) as
/// scalars over `pairs`, with the peers alongside.
fn scalar_throughput(
    runtime: &tokio::runtime::Runtime,
    data: &std::path::Path,
    pairs: &[Vec<&str>],
    description: &str,
) -> anyhow::Result<()> {
    let count = pairs.len();
    println!("func_similarity as a scalar over {count} pairs, {description}:");
    let (ours, trigram) = runtime.block_on(async {
        let engine = Engine::open(data.to_str().context("path")?).await?;
        let ctx = engine.session()?;
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, false),
            Field::new("b", DataType::Utf8, false),
        ]));
        let column =
            |index: usize| -> StringArray { pairs.iter().map(|pair| Some(pair[index])).collect() };
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(column(0)), Arc::new(column(1))],
        )?;
        // Two partitions: one per core, as a scan of two files would give.
        let half = batch.num_rows() / 2;
        let partitions = vec![
            vec![batch.slice(0, half)],
            vec![batch.slice(half, batch.num_rows() - half)],
        ];
        ctx.register_table(
            "bench_pairs",
            Arc::new(MemTable::try_new(schema, partitions)?),
        )?;
        let mut timings = Vec::new();
        for function in ["func_similarity", "similarity"] {
            let sql = format!("SELECT sum({function}(a, b)) FROM bench_pairs");
            ctx.sql(&sql).await?.collect().await?; // warm: jieba, plans
            let started = Instant::now();
            ctx.sql(&sql).await?.collect().await?;
            timings.push(started.elapsed().as_secs_f64() * 1e3);
        }
        anyhow::Ok((timings[0], timings[1]))
    })?;
    let rate = |ms: f64| count as f64 / (ms / 1e3);
    println!(
        "  bianzhi func_similarity        {ours:>10.1} ms  {:>12.0} pairs/s",
        rate(ours)
    );
    println!(
        "  bianzhi similarity (pg_trgm)   {trigram:>10.1} ms  {:>12.0} pairs/s",
        rate(trigram)
    );
    let directory = tempfile::Builder::new()
        .prefix("bianzhi-scalar")
        .tempdir_in("/tmp")?;
    Command::new("chmod")
        .arg("a+rX")
        .arg(directory.path())
        .status()?;
    let pairs_file = directory.path().join("pairs.tsv");
    write_tsv(&pairs_file, pairs)?;
    match postgres_scalar(&pairs_file)? {
        Some(ms) => println!(
            "  postgres pg_trgm similarity    {ms:>10.1} ms  {:>12.0} pairs/s  ratio postgres / bianzhi func_similarity = {:.2}",
            rate(ms),
            ms / ours
        ),
        None => println!("  postgres scalar comparison not run"),
    }
    match duckdb_scalar(&pairs_file) {
        Some(ms) => println!(
            "  duckdb jaccard                 {ms:>10.1} ms  {:>12.0} pairs/s  ratio duckdb / bianzhi func_similarity = {:.2}",
            rate(ms),
            ms / ours
        ),
        None => println!("  duckdb scalar comparison not run (pip install duckdb)"),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let temporary = tempfile::tempdir()?;
    let data: PathBuf = match std::env::var("BIANZHI_BENCH_DATA") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            let scale: f64 = std::env::var("BIANZHI_BENCH_SCALE")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.1);
            let location = temporary.path().join("data");
            println!("generating scale {scale} into {}", location.display());
            runtime.block_on(async {
                let dir = DataDir::open(location.to_str().context("path")?).await?;
                generate(&dir, GenerateOptions { scale, seed: 1 }, &|_, _, _| {}).await?;
                anyhow::Ok(())
            })?;
            location
        }
    };
    let (clauses, clause_words, weights) = runtime.block_on(async {
        let engine = Engine::open(data.to_str().context("path")?).await?;
        let ctx = engine.session()?;
        let mut columns = Vec::new();
        for sql in [
            "SELECT DISTINCT duty_text FROM org_duty ORDER BY duty_text",
            "SELECT array_to_string(zh_tokens(duty_text, 'word'), ' ') \
             FROM (SELECT DISTINCT duty_text FROM org_duty) ORDER BY 1",
        ] {
            let mut column = Vec::new();
            for batch in ctx.sql(sql).await?.collect().await? {
                let values = cast(batch.column(0), &DataType::Utf8)?;
                let texts = values.as_string::<i32>();
                column.extend((0..texts.len()).map(|row| texts.value(row).to_string()));
            }
            columns.push(column);
        }
        let clause_words = columns.pop().unwrap_or_default();
        let clauses = columns.pop().unwrap_or_default();
        anyhow::Ok((clauses, clause_words, engine.text_weights()))
    })?;
    anyhow::ensure!(!clauses.is_empty(), "no duty texts in {}", data.display());
    let sizes: Vec<usize> = std::env::var("BIANZHI_BENCH_SIZES")
        .unwrap_or_else(|_| "20000,100000".to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "similar_pairs self-join at {THRESHOLD}, texts from {} distinct clauses of {}:",
        clauses.len(),
        data.display()
    );
    // pg_trgm's GIN join grows fast with N: 27 s at 20k, over 10 min at 100k.
    let postgres_max: usize = std::env::var("BIANZHI_BENCH_PG_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let jurisdictions: usize = std::env::var("BIANZHI_BENCH_JURISDICTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for &size in &sizes {
        let texts = synthesise(&clauses, size);
        compare("halves", &texts, &weights, postgres_max)?;
    }
    if jurisdictions > 0 {
        println!("  jurisdictions corpus: {jurisdictions} jurisdictions");
        for &size in &sizes {
            let texts = jurisdiction_texts(&temporary, &clause_words, size, jurisdictions)?;
            compare("jurisdictions", &texts, &weights, postgres_max)?;
        }
    }
    let pair_count: usize = std::env::var("BIANZHI_BENCH_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let texts = synthesise(&clauses, sizes.first().copied().unwrap_or(100_000).max(1));
    scalar_throughput(
        &runtime,
        &data,
        &pairs_drawn_from(&texts, pair_count),
        &format!(
            "drawn from {} texts (each text in about {} pairs, as in a join)",
            texts.len(),
            2 * pair_count / texts.len().max(1)
        ),
    )?;
    let across = clauses.len().min(900) / 2;
    scalar_throughput(
        &runtime,
        &data,
        &pairs_across(&clauses[..across], &clauses[across..2 * across]),
        &format!("{across} clauses against {across} others, in a cross join's order"),
    )?;
    // Texts seen once each: nothing is prepared only once.
    let fresh = synthesise(&clauses, 3 * pair_count);
    scalar_throughput(
        &runtime,
        &data,
        &pairs_of_distinct_texts(&fresh, pair_count),
        "no text in two pairs",
    )?;
    Ok(())
}
