//! The family through SQL: coercion of integer and decimal arguments, and
//! the same answers from one partition as from several (partial states
//! merged by DataFusion).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::*;

const QUOTA: [i32; 7] = [30, 12, 9, 40, 2, 0, 17];
const POPULATION: [i64; 7] = [120_000, 80_000, 45_000, 200_000, 5_000, 30_000, 60_000];
const PROVINCE: [&str; 7] = ["north", "north", "south", "south", "south", "east", "east"];

/// Theil T of the table, from the Python reference in `theil_decompose`.
const THEIL_T: f64 = 0.0775565870925715;

fn district_batch(rows: std::ops::Range<usize>) -> Result<RecordBatch> {
    let schema = Arc::new(district_schema());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(
            rows.clone()
                .map(|row| format!("d{row}"))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(PROVINCE[rows.clone()].to_vec())),
        Arc::new(Int32Array::from(QUOTA[rows.clone()].to_vec())),
        Arc::new(Int64Array::from(POPULATION[rows].to_vec())),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn district_schema() -> Schema {
    Schema::new(vec![
        Field::new("district", DataType::Utf8, false),
        Field::new("province", DataType::Utf8, false),
        Field::new("quota", DataType::Int32, true),
        Field::new("population", DataType::Int64, true),
    ])
}

/// A session with the family registered and `district_quota` split into
/// `partitions` in-memory partitions (rows in a different order than the
/// one-partition table).
fn session(partitions: usize) -> Result<SessionContext> {
    let mut context =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    assert!(crate::register_all(&mut context)? >= 9);
    let table = if partitions == 1 {
        MemTable::try_new(
            Arc::new(district_schema()),
            vec![vec![district_batch(0..7)?]],
        )?
    } else {
        MemTable::try_new(
            Arc::new(district_schema()),
            vec![
                vec![district_batch(5..7)?],
                vec![district_batch(0..2)?, district_batch(2..3)?],
                vec![district_batch(3..5)?],
            ],
        )?
    };
    context.register_table("district_quota", Arc::new(table))?;
    Ok(context)
}

async fn query(context: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    context.sql(sql).await?.collect().await
}

/// Every column of a one-row result as an optional f64.
async fn float_row(context: &SessionContext, sql: &str) -> Result<Vec<Option<f64>>> {
    let batches = query(context, sql).await?;
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 1, "{sql}");
    Ok(batch
        .columns()
        .iter()
        .map(|column| {
            assert_eq!(column.data_type(), &DataType::Float64, "{sql}");
            let column = column.as_primitive::<Float64Type>();
            column.is_valid(0).then(|| column.value(0))
        })
        .collect())
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

#[tokio::test]
async fn scalars_accept_integer_and_decimal_literals() -> Result<()> {
    let context = session(1)?;
    let row = float_row(
        &context,
        "SELECT per_10k(50, 1000000), per_10k(1.5, 3), per_10k(CAST(3 AS SMALLINT), 30000.0), \
         per_10k(5, 0), per_10k(NULL, 10), relative_index(25, 20, 100, 100), \
         relative_index(1, 1, 0, 1)",
    )
    .await?;
    assert_eq!(row[0], Some(0.5));
    assert_eq!(row[1], Some(5000.0));
    assert_eq!(row[2], Some(1.0));
    assert_eq!(row[3], None);
    assert_eq!(row[4], None);
    assert_close(row[5], 1.25);
    assert_eq!(row[6], None);
    Ok(())
}

#[tokio::test]
async fn scalars_over_integer_columns() -> Result<()> {
    let context = session(3)?;
    let batches = query(
        &context,
        "SELECT per_10k(quota, population) AS rate, \
         relative_index(quota, population, SUM(quota) OVER (), SUM(population) OVER ()) AS lq \
         FROM district_quota ORDER BY district",
    )
    .await?;
    let rates: Vec<f64> = batches
        .iter()
        .flat_map(|batch| {
            batch
                .column(0)
                .as_primitive::<Float64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(rates[0], 30.0 * 10_000.0 / 120_000.0);
    let indexes: Vec<f64> = batches
        .iter()
        .flat_map(|batch| {
            batch
                .column(1)
                .as_primitive::<Float64Type>()
                .values()
                .to_vec()
        })
        .collect();
    // d0: 30 of 110 quota, 120000 of 540000 people.
    assert!((indexes[0] - (30.0 / 110.0) / (120_000.0 / 540_000.0)).abs() < 1e-12);
    Ok(())
}

const AGGREGATES: &str = "SELECT gini(quota), gini(per_10k(quota, population), population), \
     theil_t(quota, population), theil_l(quota + 1, population), cv(quota), \
     cv(per_10k(quota, population), population), hoover(quota, population) \
     FROM district_quota";

#[tokio::test]
async fn aggregates_agree_across_partitionings() -> Result<()> {
    let single = float_row(&session(1)?, AGGREGATES).await?;
    let partitioned = float_row(&session(3)?, AGGREGATES).await?;
    for (one, many) in single.iter().zip(&partitioned) {
        assert_close(*many, one.unwrap_or(f64::NAN));
    }
    assert_close(single[2], THEIL_T);

    // The partitioned run really merges partial states.
    let plan = query(&session(3)?, &format!("EXPLAIN {AGGREGATES}")).await?;
    let plan = arrow::util::pretty::pretty_format_batches(&plan)?.to_string();
    assert!(plan.contains("mode=Partial"), "{plan}");
    Ok(())
}

#[tokio::test]
async fn non_numeric_arguments_fail_at_planning() -> Result<()> {
    let context = session(1)?;
    for sql in [
        "SELECT per_10k('a', 10)",
        "SELECT gini(district) FROM district_quota",
        "SELECT theil_t(quota) FROM district_quota",
    ] {
        assert!(context.sql(sql).await.is_err(), "{sql}");
    }
    Ok(())
}

#[tokio::test]
async fn decimal_and_float_columns_are_accepted() -> Result<()> {
    // Separate queries: DataFusion 55.2 strips the casts and then rejects two
    // aggregates with the same name in one projection (built-ins too).
    let context = session(1)?;
    let casted = float_row(
        &context,
        "SELECT gini(CAST(quota AS DECIMAL(10, 2))), \
         theil_t(CAST(quota AS DECIMAL(10, 2)), CAST(population AS REAL)) FROM district_quota",
    )
    .await?;
    let plain = float_row(
        &context,
        "SELECT gini(quota), theil_t(quota, population) FROM district_quota",
    )
    .await?;
    assert_close(casted[0], plain[0].unwrap_or(f64::NAN));
    assert_close(casted[1], THEIL_T);
    Ok(())
}

#[tokio::test]
async fn aggregates_by_group_and_nulls() -> Result<()> {
    let context = session(3)?;
    let batches = query(
        &context,
        "SELECT province, gini(quota) AS g, theil_t(quota, population) AS t, \
         hoover(quota, population) AS h FROM district_quota GROUP BY province ORDER BY province",
    )
    .await?;
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 3);
    // east: quota 0 and 17 for 30000 and 60000 people: s = (0, 1), p = (⅓, ⅔),
    // so T = 1 · ln(1 / ⅔).
    let theil = batch.column(2).as_primitive::<Float64Type>();
    let expected_east = 1.5f64.ln();
    assert_close(theil.is_valid(0).then(|| theil.value(0)), expected_east);

    // cv and theil_l by group (GroupsAccumulator) against single-group queries.
    let grouped = query(
        &context,
        "SELECT province, cv(quota) AS c, theil_l(quota + 1, population) AS l \
         FROM district_quota GROUP BY province ORDER BY province",
    )
    .await?;
    let grouped = &grouped[0];
    for (index, province) in ["east", "north", "south"].into_iter().enumerate() {
        let single = float_row(
            &context,
            &format!(
                "SELECT cv(quota), theil_l(quota + 1, population) FROM district_quota \
                 WHERE province = '{province}'"
            ),
        )
        .await?;
        for (column, expected) in single.iter().enumerate() {
            let actual = grouped.column(column + 1).as_primitive::<Float64Type>();
            assert_close(
                actual.is_valid(index).then(|| actual.value(index)),
                expected.unwrap_or(f64::NAN),
            );
        }
    }

    let row = float_row(
        &context,
        "SELECT gini(x), theil_t(x, w), cv(x) FROM (VALUES (1.0, NULL), (NULL, 2.0), (3.0, 1.0)) AS t(x, w)",
    )
    .await?;
    // gini and cv see 2 rows; theil_t only one complete row.
    assert_close(row[0], 0.25);
    assert_eq!(row[1], None);
    assert_close(row[2], 0.5);
    Ok(())
}

#[tokio::test]
async fn theil_decompose_total_matches_theil_t() -> Result<()> {
    for partitions in [1, 3] {
        let context = session(partitions)?;
        let row = float_row(
            &context,
            "SELECT d['total'], d['between'], d['within'], t FROM \
             (SELECT theil_decompose(quota, population, province) AS d, \
                     theil_t(quota, population) AS t FROM district_quota)",
        )
        .await?;
        let (Some(total), Some(between), Some(within), Some(theil)) =
            (row[0], row[1], row[2], row[3])
        else {
            panic!("expected numbers, got {row:?}");
        };
        assert!((total - theil).abs() < 1e-12);
        assert!((between + within - total).abs() < 1e-15);
        assert_close(Some(between), 0.0006274781676414868);
    }
    Ok(())
}

#[tokio::test]
async fn lorenz_is_a_list_of_points() -> Result<()> {
    let single = query(
        &session(1)?,
        "SELECT lorenz(quota, population) FROM district_quota",
    )
    .await?;
    let partitioned = query(
        &session(3)?,
        "SELECT lorenz(quota, population) FROM district_quota",
    )
    .await?;
    assert_eq!(single[0].column(0), partitioned[0].column(0));
    let list = single[0].column(0).as_list::<i32>();
    let points = list.value(0);
    let points = points.as_struct();
    assert_eq!(points.len(), QUOTA.len() + 1);
    let population_shares = points
        .column_by_name("pop_share")
        .map(|column| column.as_primitive::<Float64Type>().clone());
    let value_shares = points
        .column_by_name("value_share")
        .map(|column| column.as_primitive::<Float64Type>().clone());
    let (Some(population_shares), Some(value_shares)) = (population_shares, value_shares) else {
        panic!("lorenz points lack pop_share/value_share");
    };
    assert_eq!(
        (population_shares.value(0), value_shares.value(0)),
        (0.0, 0.0)
    );
    assert_eq!(
        (population_shares.value(7), value_shares.value(7)),
        (1.0, 1.0)
    );
    // The first unit is the one with quota 0.
    assert_eq!(value_shares.value(1), 0.0);
    Ok(())
}

#[tokio::test]
async fn negative_weight_is_an_error_naming_the_function() -> Result<()> {
    let context = session(1)?;
    let error = query(
        &context,
        "SELECT hoover(x, w) FROM (VALUES (1, 2), (3, -4)) AS t(x, w)",
    )
    .await;
    let Err(error) = error else {
        panic!("a negative weight should fail");
    };
    assert!(error.to_string().contains("hoover"), "{error}");
    Ok(())
}

#[test]
fn every_function_is_documented() {
    for function in all_scalar_udfs() {
        let documentation = function.documentation();
        assert!(documentation.is_some_and(|doc| doc.doc_section.label == "Allocation Functions"));
    }
    for function in all_aggregate_udfs() {
        let documentation = function.documentation();
        assert!(documentation.is_some_and(|doc| doc.doc_section.label == "Allocation Functions"));
    }
}
