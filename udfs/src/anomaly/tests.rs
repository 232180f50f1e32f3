//! The family through SQL: window functions over ordered partitions (rows
//! stored out of order and spread over several partitions), peer groups,
//! aggregates across partitionings, coercion of integer and decimal
//! arguments, and planning errors for non-constant options.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::support::MODIFIED_Z_SCALE;
use super::*;

/// unit, tier, month, staff: unit A is the documented example (a spike in
/// month 8), unit B has a NULL month and a flat stretch.
const MONTHLY: [(&str, &str, i32, Option<i32>); 16] = [
    ("A", "county", 1, Some(50)),
    ("A", "county", 2, Some(52)),
    ("A", "county", 3, Some(51)),
    ("A", "county", 4, Some(53)),
    ("A", "county", 5, Some(52)),
    ("A", "county", 6, Some(54)),
    ("A", "county", 7, Some(53)),
    ("A", "county", 8, Some(70)),
    ("B", "city", 1, Some(10)),
    ("B", "city", 2, Some(10)),
    ("B", "city", 3, None),
    ("B", "city", 4, Some(10)),
    ("B", "city", 5, Some(11)),
    ("B", "city", 6, Some(10)),
    ("B", "city", 7, Some(10)),
    ("B", "city", 8, Some(30)),
];

/// unit, tier, staff at one date.
const PEERS: [(&str, &str, Option<i32>); 12] = [
    ("A", "county", Some(10)),
    ("B", "county", Some(12)),
    ("C", "county", Some(11)),
    ("D", "county", Some(13)),
    ("E", "county", Some(40)),
    ("F", "city", Some(100)),
    ("G", "city", Some(100)),
    ("H", "city", Some(100)),
    ("I", "city", Some(130)),
    ("J", "town", Some(5)),
    ("K", "town", None),
    ("L", "town", Some(7)),
];

fn monthly_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("unit", DataType::Utf8, false),
        Field::new("tier", DataType::Utf8, false),
        Field::new("month", DataType::Int32, false),
        Field::new("staff", DataType::Int32, true),
    ]))
}

fn monthly_batch(rows: &[usize]) -> Result<RecordBatch> {
    let pick = |row: &usize| MONTHLY[*row];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|row| pick(row).0),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|row| pick(row).1),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|row| pick(row).2),
        )),
        Arc::new(Int32Array::from_iter(rows.iter().map(|row| pick(row).3))),
    ];
    Ok(RecordBatch::try_new(monthly_schema(), columns)?)
}

fn peer_batch() -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("unit", DataType::Utf8, false),
        Field::new("tier", DataType::Utf8, false),
        Field::new("staff", DataType::Int32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(PEERS.iter().map(|row| row.0))),
        Arc::new(StringArray::from_iter_values(PEERS.iter().map(|row| row.1))),
        Arc::new(Int32Array::from_iter(PEERS.iter().map(|row| row.2))),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A session with every function registered, `monthly` stored in reverse
/// and scrambled order over three partitions, and `peers`.
fn session() -> Result<SessionContext> {
    let mut context =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
    crate::register_all(&mut context)?;
    let monthly = MemTable::try_new(
        monthly_schema(),
        vec![
            vec![monthly_batch(&[15, 3, 9, 0])?],
            vec![monthly_batch(&[7, 12, 1, 14, 5])?],
            vec![monthly_batch(&[2, 10, 4, 8, 13, 6, 11])?],
        ],
    )?;
    context.register_table("monthly", Arc::new(monthly))?;
    let peer_batch = peer_batch()?;
    let peers = MemTable::try_new(peer_batch.schema(), vec![vec![peer_batch]])?;
    context.register_table("peers", Arc::new(peers))?;
    Ok(context)
}

async fn query(context: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    context.sql(sql).await?.collect().await
}

/// Column `index` of a result as optional f64 (Float64) values.
fn floats(batches: &[RecordBatch], index: usize) -> Vec<Option<f64>> {
    batches
        .iter()
        .flat_map(|batch| {
            let column = batch.column(index);
            assert_eq!(column.data_type(), &DataType::Float64);
            let column = column.as_primitive::<Float64Type>();
            (0..column.len())
                .map(|row| column.is_valid(row).then(|| column.value(row)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Column `index` of a result as optional booleans.
fn flags(batches: &[RecordBatch], index: usize) -> Vec<Option<bool>> {
    batches
        .iter()
        .flat_map(|batch| {
            let column = batch.column(index).as_boolean();
            (0..column.len())
                .map(|row| column.is_valid(row).then(|| column.value(row)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let Some(actual) = actual else {
        panic!("expected {expected}, got NULL");
    };
    assert!(
        (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "expected {expected}, got {actual}"
    );
}

#[test]
fn every_function_is_registered_and_documented() -> Result<()> {
    let mut context = SessionContext::new();
    assert_eq!(register(&mut context)?, 10);
    for name in [
        "robust_z",
        "mom_jump_z",
        "ewma",
        "ewma_flag",
        "tukey_score",
        "peer_robust_z",
    ] {
        assert!(context.udwf(name).is_ok(), "{name}");
    }
    for name in ["mad", "iqr", "tukey_fences"] {
        assert!(context.udaf(name).is_ok(), "{name}");
    }
    assert!(context.udf("anomaly_level").is_ok());
    let section = |documentation: Option<&datafusion::logical_expr::Documentation>| {
        documentation.is_some_and(|doc| doc.doc_section.label == "Anomaly Functions")
    };
    assert!(all_scalar_udfs().iter().all(|f| section(f.documentation())));
    assert!(all_aggregate_udfs()
        .iter()
        .all(|f| section(f.documentation())));
    assert!(all_window_udfs().iter().all(|f| section(f.documentation())));
    Ok(())
}

#[tokio::test]
async fn robust_z_over_ordered_partitions() -> Result<()> {
    let context = session()?;
    let batches = query(
        &context,
        "SELECT unit, month, robust_z(staff, 6, 4) OVER (PARTITION BY unit ORDER BY month) AS z, \
         robust_z(staff) OVER (PARTITION BY unit ORDER BY month) AS z_default \
         FROM monthly ORDER BY unit, month",
    )
    .await?;
    let z = floats(&batches, 2);
    // Unit A as in the documentation: NULL until 4 baseline values; month 5
    // against 50 52 51 53 (median 51.5, MAD 1); month 8 (70) against
    // 52 51 53 52 54 53 (median 52.5, MAD 0.5) → 0.6745 · 17.5 / 0.5.
    assert_eq!(&z[..4], &[None, None, None, None]);
    assert_close(z[4], MODIFIED_Z_SCALE * 0.5);
    assert_close(z[7], MODIFIED_Z_SCALE * 35.0);
    // Unit B (rows 8..16), month 8 (30): months 2..7 are 10 NULL 10 11 10 10
    // → 5 values, median 10, deviations 0 0 1 0 0 → MAD 0 → NULL.
    assert_eq!(z[15], None);
    // Unit B, month 6 (10): months 1..5 are 10 10 NULL 10 11 → 4 values,
    // median 10, MAD 0 → NULL as well; month 3 (NULL) is NULL.
    assert_eq!(z[13], None);
    assert_eq!(z[10], None);
    // Defaults (12, 6): unit A month 8 sees all 7 earlier months
    // 50 52 51 53 52 54 53 → median 52, deviations 2 0 1 1 0 2 1 → MAD 1.
    let z_default = floats(&batches, 3);
    assert_eq!(&z_default[..6], &[None; 6]);
    assert_close(z_default[7], MODIFIED_Z_SCALE * 18.0);
    Ok(())
}

#[tokio::test]
async fn the_spike_does_not_dampen_its_own_score() -> Result<()> {
    // Only the spike's value changes; its score grows linearly with it, so
    // the spike is not part of the baseline it is compared with.
    let context = session()?;
    let sql = |spike: i32| {
        format!(
            "SELECT robust_z(x, 6, 4) OVER (ORDER BY m) FROM (VALUES \
             (1, 50), (2, 52), (3, 51), (4, 53), (5, 52), (6, 54), (7, 53), (8, {spike})) \
             AS t(m, x) ORDER BY m"
        )
    };
    let moderate = floats(&query(&context, &sql(70)).await?, 0);
    let huge = floats(&query(&context, &sql(7000)).await?, 0);
    assert_close(moderate[7], MODIFIED_Z_SCALE * 17.5 / 0.5);
    assert_close(huge[7], MODIFIED_Z_SCALE * (7000.0 - 52.5) / 0.5);
    assert_eq!(&moderate[..7], &huge[..7]);
    Ok(())
}

#[tokio::test]
async fn month_over_month_and_ewma() -> Result<()> {
    let context = session()?;
    let batches = query(
        &context,
        "SELECT unit, month, \
           mom_jump_z(staff, 6, 4) OVER (PARTITION BY unit ORDER BY month) AS jump, \
           ewma(staff, 0.5) OVER (PARTITION BY unit ORDER BY month) AS smooth, \
           ewma(staff) OVER (PARTITION BY unit ORDER BY month) AS smooth_default \
         FROM monthly WHERE unit = 'A' OR month <= 4 ORDER BY unit, month",
    )
    .await?;
    let jump = floats(&batches, 2);
    // Unit A changes: NULL 2 −1 2 −1 2 −1 17. Month 6 (change 2) against
    // NULL 2 −1 2 −1: median 0.5, MAD 1.5 → 0.6745; month 7 against
    // 2 −1 2 −1 2: MAD 0 → NULL; month 8 (17) against 2 −1 2 −1 2 −1:
    // median 0.5, MAD 1.5 → 0.6745 · 11.
    assert_eq!(&jump[..5], &[None; 5]);
    assert_close(jump[5], MODIFIED_Z_SCALE);
    assert_eq!(jump[6], None);
    assert_close(jump[7], MODIFIED_Z_SCALE * 11.0);
    let smooth = floats(&batches, 3);
    // Unit A, λ = 0.5: 50, 51, 51, 52, 52, 53, 53, 61.5.
    assert_eq!(
        &smooth[..8],
        &[50.0, 51.0, 51.0, 52.0, 52.0, 53.0, 53.0, 61.5].map(Some)
    );
    // Unit B months 1..4: 10 10 NULL 10 → the NULL row is NULL.
    assert_eq!(&smooth[8..], &[Some(10.0), Some(10.0), None, Some(10.0)]);
    // λ = 0.2: 50, 0.2·52 + 0.8·50 = 50.4.
    let smooth_default = floats(&batches, 4);
    assert_close(smooth_default[1], 50.4);
    Ok(())
}

#[tokio::test]
async fn ewma_flag_catches_a_drift() -> Result<()> {
    let context = session()?;
    // Calibration 48 50 52 (μ 50, σ 2), then a drift 51 53 54 56: only the
    // average leaves μ ± 3σ√(…) at the last month (see ewma_flag's tests);
    // the Shewhart chart (λ = 1) never does. The NULL month is NULL.
    let batches = query(
        &context,
        "SELECT m, ewma_flag(x, 0.5, 3, 3) OVER (ORDER BY m) AS drift, \
           ewma_flag(x, 1, 3, 3) OVER (ORDER BY m) AS shewhart, \
           ewma_flag(x) OVER (ORDER BY m) AS too_short \
         FROM (VALUES (1, 48), (2, 50), (3, 52), (4, 51), (5, 53), (6, CAST(NULL AS INT)), \
           (7, 54), (8, 56)) AS t(m, x) ORDER BY m",
    )
    .await?;
    assert_eq!(
        flags(&batches, 1),
        vec![
            None,
            None,
            None,
            Some(false),
            Some(false),
            None,
            Some(false),
            Some(true)
        ]
    );
    assert_eq!(
        flags(&batches, 2),
        vec![
            None,
            None,
            None,
            Some(false),
            Some(false),
            None,
            Some(false),
            Some(false)
        ]
    );
    // Default calibration is 12 rows, more than the partition has.
    assert_eq!(flags(&batches, 3), vec![None; 8]);
    Ok(())
}

#[tokio::test]
async fn peer_scores_by_tier() -> Result<()> {
    let context = session()?;
    let batches = query(
        &context,
        "SELECT unit, peer_robust_z(staff) OVER (PARTITION BY tier) AS z, \
           peer_robust_z(staff, true) OVER (PARTITION BY tier ORDER BY unit) AS z_others, \
           tukey_score(staff) OVER (PARTITION BY tier) AS beyond, \
           tukey_score(staff, 0) OVER (PARTITION BY tier) AS beyond_quartiles \
         FROM peers ORDER BY unit",
    )
    .await?;
    let z = floats(&batches, 1);
    let z_others = floats(&batches, 2);
    let beyond = floats(&batches, 3);
    let beyond_quartiles = floats(&batches, 4);
    // County 10 12 11 13 40: median 12, MAD 1; without E: median 11.5, MAD 1.
    assert_close(z[0], -2.0 * MODIFIED_Z_SCALE);
    assert_close(z[4], 28.0 * MODIFIED_Z_SCALE);
    assert_close(z_others[4], 28.5 * MODIFIED_Z_SCALE);
    // Fences 8 and 16 (Q1 11, Q3 13): E is 24 above; k = 0: 27 above 13
    // and A 1 below 11.
    assert_eq!(&beyond[..5], &[0.0, 0.0, 0.0, 0.0, 24.0].map(Some));
    assert_eq!(beyond_quartiles[0], Some(-1.0));
    assert_eq!(beyond_quartiles[4], Some(27.0));
    // City 100 100 100 130: MAD 0 → NULL; Tukey fences 100 and 107.5
    // (Q1 100, Q3 107.5) → I is 130 − 118.75 = 11.25 above.
    assert_eq!(&z[5..9], &[None; 4]);
    assert_eq!(beyond[8], Some(11.25));
    // Town 5 NULL 7: two values → NULL scores; the NULL row is NULL.
    assert_eq!(&z[9..], &[None; 3]);
    assert_eq!(beyond[10], None);
    Ok(())
}

#[tokio::test]
async fn aggregates_by_group_and_across_partitionings() -> Result<()> {
    let context = session()?;
    let batches = query(
        &context,
        "SELECT tier, mad(staff) AS m, iqr(staff) AS q, \
           tukey_fences(staff, 1.5)['lower'] AS lower, tukey_fences(staff, 1.5)['upper'] AS upper \
         FROM peers GROUP BY tier ORDER BY tier",
    )
    .await?;
    // city 100 100 100 130: MAD 0, Q1 100, Q3 107.5; county: MAD 1, Q1 11,
    // Q3 13; town 5 7: median 6, MAD 1, Q1 5.5, Q3 6.5.
    assert_eq!(floats(&batches, 1), vec![Some(0.0), Some(1.0), Some(1.0)]);
    assert_eq!(floats(&batches, 2), vec![Some(7.5), Some(2.0), Some(1.0)]);
    assert_eq!(floats(&batches, 3), vec![Some(88.75), Some(8.0), Some(4.0)]);
    assert_eq!(
        floats(&batches, 4),
        vec![Some(118.75), Some(16.0), Some(8.0)]
    );

    // The same values spread over three partitions, in another order.
    let scattered = query(
        &context,
        "SELECT mad(staff), iqr(staff), tukey_fences(staff)['upper'] FROM monthly",
    )
    .await?;
    let reference = query(
        &context,
        "SELECT mad(x), iqr(x), tukey_fences(x)['upper'] FROM (VALUES \
         (50), (52), (51), (53), (52), (54), (53), (70), \
         (10), (10), (NULL), (10), (11), (10), (10), (30)) AS t(x)",
    )
    .await?;
    for column in 0..3 {
        assert_eq!(floats(&scattered, column), floats(&reference, column));
    }
    let plan = query(
        &context,
        "EXPLAIN SELECT mad(staff), iqr(staff) FROM monthly",
    )
    .await?;
    let plan = arrow::util::pretty::pretty_format_batches(&plan)?.to_string();
    assert!(plan.contains("mode=Partial"), "{plan}");

    let empty = query(
        &context,
        "SELECT mad(staff), iqr(staff), tukey_fences(staff, 1.5) IS NULL FROM monthly \
         WHERE staff IS NULL",
    )
    .await?;
    assert_eq!(floats(&empty, 0), vec![None]);
    assert_eq!(floats(&empty, 1), vec![None]);
    assert_eq!(flags(&empty, 2), vec![Some(true)]);
    Ok(())
}

#[tokio::test]
async fn numeric_types_and_decimal_literals() -> Result<()> {
    let context = session()?;
    // Decimal literals (1.5, 0.5) and a DECIMAL / SMALLINT / REAL series.
    let batches = query(
        &context,
        "SELECT tukey_score(CAST(staff AS DECIMAL(10, 2)), 1.5) OVER (PARTITION BY tier), \
           ewma(CAST(staff AS SMALLINT), 0.5) OVER (PARTITION BY tier ORDER BY unit), \
           peer_robust_z(CAST(staff AS REAL)) OVER (PARTITION BY tier) \
         FROM peers WHERE tier = 'county' ORDER BY unit",
    )
    .await?;
    assert_eq!(floats(&batches, 0)[4], Some(24.0));
    assert_eq!(floats(&batches, 1)[1], Some(11.0));
    assert_close(floats(&batches, 2)[4], 28.0 * MODIFIED_Z_SCALE);

    // A separate query: DataFusion 55.2 strips the cast above and then
    // rejects two window expressions with the same name.
    let batches = query(
        &context,
        "SELECT anomaly_level(z, 2, 3.5) FROM (SELECT unit, \
           peer_robust_z(staff) OVER (PARTITION BY tier) AS z FROM peers \
           WHERE tier = 'county') ORDER BY unit",
    )
    .await?;
    let levels: Vec<Option<String>> = batches
        .iter()
        .flat_map(|batch| {
            let column = batch.column(0).as_string::<i32>();
            (0..column.len())
                .map(|row| column.is_valid(row).then(|| column.value(row).to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    // County z-scores: −1.349 0 −0.6745 0.6745 18.886.
    assert_eq!(
        levels,
        ["normal", "normal", "normal", "normal", "alert"].map(|level| Some(level.to_string()))
    );

    let scalar = query(
        &context,
        "SELECT anomaly_level(-3.5, 2, 3.5), anomaly_level(2, 2.0, 3.5), \
         anomaly_level(CAST(1 AS SMALLINT), 2, 3.5), anomaly_level(NULL, 2, 3.5)",
    )
    .await?;
    let row: Vec<Option<String>> = scalar[0]
        .columns()
        .iter()
        .map(|column| {
            assert_eq!(column.data_type(), &DataType::Utf8);
            let column = column.as_string::<i32>();
            column.is_valid(0).then(|| column.value(0).to_string())
        })
        .collect();
    assert_eq!(
        row,
        vec![
            Some("alert".to_string()),
            Some("warn".to_string()),
            Some("normal".to_string()),
            None
        ]
    );
    Ok(())
}

/// Planning (or physical planning) must fail with the function's name.
async fn assert_fails(context: &SessionContext, sql: &str, expected: &str) {
    let result = match context.sql(sql).await {
        Ok(frame) => frame.collect().await.map(|_| ()),
        Err(error) => Err(error),
    };
    let Err(error) = result else {
        panic!("{sql} should fail");
    };
    let message = error.to_string();
    assert!(message.contains(expected), "{sql}: {message}");
}

#[tokio::test]
async fn options_must_be_constant_literals() -> Result<()> {
    let context = session()?;
    let cases = [
        (
            "SELECT robust_z(staff, month) OVER (PARTITION BY unit ORDER BY month) FROM monthly",
            "robust_z: lookback must be a constant literal",
        ),
        (
            "SELECT robust_z(staff, 4, 6) OVER (ORDER BY month) FROM monthly",
            "robust_z: min_n (6) must not exceed lookback (4)",
        ),
        (
            "SELECT robust_z(staff, 0) OVER (ORDER BY month) FROM monthly",
            "robust_z: lookback must be at least 1",
        ),
        (
            "SELECT mom_jump_z(staff, 12, CAST(NULL AS INT)) OVER (ORDER BY month) FROM monthly",
            "mom_jump_z: min_n must not be NULL",
        ),
        (
            "SELECT ewma(staff, 1.5) OVER (ORDER BY month) FROM monthly",
            "ewma: lambda must be in (0, 1]",
        ),
        (
            "SELECT ewma_flag(staff, 0.2, staff) OVER (ORDER BY month) FROM monthly",
            "ewma_flag: L must be a constant literal",
        ),
        (
            "SELECT ewma_flag(staff, 0.2, 3, 1) OVER (ORDER BY month) FROM monthly",
            "ewma_flag: lookback must be at least 2",
        ),
        (
            "SELECT tukey_score(staff, -1) OVER (PARTITION BY tier) FROM monthly",
            "tukey_score: k must not be negative",
        ),
        (
            "SELECT peer_robust_z(staff, staff > 10) OVER (PARTITION BY tier) FROM monthly",
            "peer_robust_z: leave_one_out must be a constant literal",
        ),
        (
            "SELECT tukey_fences(staff, month) FROM monthly",
            "tukey_fences: k must be a constant literal",
        ),
        // Integer options are integers: a type error at planning.
        (
            "SELECT robust_z(staff, 12.5) OVER (ORDER BY month) FROM monthly",
            "robust_z",
        ),
        ("SELECT mad(unit) FROM monthly", "mad"),
    ];
    for (sql, expected) in cases {
        assert_fails(&context, sql, expected).await;
    }
    Ok(())
}
