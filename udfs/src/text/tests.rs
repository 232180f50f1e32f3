//! The family through SQL: planning-time checks, NULLs, literal and column
//! arguments, string encodings, the `levenshtein` override and corpus
//! weights for `func_similarity`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int32Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::*;

const CLAUSES: [Option<&str>; 4] = [
    Some("负责全市道路交通安全管理工作"),
    Some("組織實施道路交通秩序管理"),
    None,
    Some("负责全市档案监督管理工作"),
];

fn session() -> Result<SessionContext> {
    let mut context = SessionContext::new();
    crate::register_all(&mut context)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("duty_text", DataType::Utf8, true),
        Field::new("method", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
        Arc::new(StringArray::from(CLAUSES.to_vec())),
        Arc::new(StringArray::from(vec![
            Some("bigram_jaccard"),
            Some("word_jaccard"),
            Some("bigram_dice"),
            Some("cosine"),
        ])),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    context.register_table(
        "org_duty",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(context)
}

async fn query(context: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    context.sql(sql).await?.collect().await
}

/// The one row of a query, each column rendered as text ("NULL" for NULL).
async fn row(context: &SessionContext, sql: &str) -> Result<Vec<String>> {
    let batches = query(context, sql).await?;
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 1, "{sql}");
    batch
        .columns()
        .iter()
        .map(|column| {
            Ok(if column.is_null(0) {
                "NULL".to_string()
            } else {
                arrow::util::display::array_value_to_string(column, 0)?
            })
        })
        .collect()
}

#[tokio::test]
async fn registers_every_function() -> Result<()> {
    let mut context = SessionContext::new();
    assert_eq!(register(&mut context)?, all_scalar_udfs().len());
    for name in [
        "zh_normalize",
        "zh_tokens",
        "text_sim",
        "func_similarity",
        "similarity",
        "word_similarity",
        "strict_word_similarity",
        "show_trgm",
        "trgm_match",
        "jaro_winkler",
        "levenshtein",
    ] {
        assert!(context.udf(name).is_ok(), "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn pg_trgm_functions_through_sql() -> Result<()> {
    let context = session()?;
    let batches = query(
        &context,
        "SELECT similarity('负责全市道路交通安全管理工作', '组织实施道路交通秩序管理'), \
         word_similarity('word', 'two words'), strict_word_similarity('word', 'two words'), \
         trgm_match('PostgreSQL', 'postgres'), trgm_match('PostgreSQL', 'postgres', 0.7), \
         show_trgm('Ab')",
    )
    .await?;
    let batch = &batches[0];
    // PostgreSQL 15.18 (tests/pg_trgm_reference.sql): real values.
    assert_eq!(
        batch.column(0).as_primitive::<Float32Type>().value(0),
        0.07692308
    );
    assert_eq!(batch.column(1).as_primitive::<Float32Type>().value(0), 0.8);
    assert_eq!(
        batch.column(2).as_primitive::<Float32Type>().value(0),
        0.5714286
    );
    assert!(batch.column(3).as_boolean().value(0));
    assert!(!batch.column(4).as_boolean().value(0));
    assert_eq!(
        arrow::util::display::array_value_to_string(batch.column(5), 0)?,
        "[  a,  ab, ab ]"
    );
    Ok(())
}

#[tokio::test]
async fn nulls_give_nulls() -> Result<()> {
    let context = session()?;
    let values = row(
        &context,
        "SELECT zh_normalize(NULL), zh_tokens(NULL), zh_tokens('交通', NULL), \
         text_sim(NULL, '交通', 'bigram_dice'), text_sim('交通', '交通', NULL), \
         func_similarity('交通', NULL), similarity(NULL, 'a'), word_similarity('a', NULL), \
         strict_word_similarity(NULL, NULL), show_trgm(NULL), trgm_match('a', 'a', NULL), \
         jaro_winkler(NULL, 'a'), levenshtein('a', NULL), levenshtein('a', 'b', NULL)",
    )
    .await?;
    assert!(values.iter().all(|value| value == "NULL"), "{values:?}");
    Ok(())
}

#[tokio::test]
async fn unknown_literal_method_or_mode_fails_at_planning() -> Result<()> {
    let context = session()?;
    let Err(error) = context
        .sql("SELECT text_sim(duty_text, '交通', 'cosine') FROM org_duty")
        .await
    else {
        panic!("an unknown literal method should fail at planning");
    };
    let message = error.to_string();
    assert!(
        message.contains("'cosine'") && message.contains("'bigram_overlap'"),
        "{message}"
    );
    let Err(error) = context.sql("SELECT zh_tokens('交通', 'trigram')").await else {
        panic!("an unknown literal mode should fail at planning");
    };
    assert!(error.to_string().contains("'trigram'"), "{error}");
    Ok(())
}

#[tokio::test]
async fn unknown_method_in_a_column_fails_at_execution() -> Result<()> {
    let context = session()?;
    // Planning succeeds: the method is only known per row.
    let frame = context
        .sql("SELECT text_sim(duty_text, '道路交通，管理', method) FROM org_duty")
        .await?;
    let Err(error) = frame.collect().await else {
        panic!("row 4 has the unknown method 'cosine'");
    };
    let message = error.to_string();
    assert!(
        message.contains("'cosine'") && message.contains("'word_jaccard'"),
        "{message}"
    );
    // Without that row every method is known.
    let batches = query(
        &context,
        "SELECT text_sim(duty_text, '道路交通，管理', method) FROM org_duty WHERE id < 4 ORDER BY id",
    )
    .await?;
    let scores = batches[0].column(0).as_primitive::<Float64Type>();
    assert!(scores.value(0) > 0.0 && scores.value(1) > 0.0);
    assert!(scores.is_null(2));
    Ok(())
}

#[tokio::test]
async fn column_against_literal_and_string_encodings() -> Result<()> {
    let context = session()?;
    for column in [
        "duty_text",
        "arrow_cast(duty_text, 'Utf8View')",
        "arrow_cast(duty_text, 'LargeUtf8')",
        "arrow_cast(duty_text, 'Dictionary(Int32, Utf8)')",
    ] {
        let batches = query(
            &context,
            &format!(
                "SELECT similarity({column}, '负责全市道路交通安全管理工作'), \
                 text_sim({column}, '负责全市道路交通安全管理工作', 'bigram_jaccard'), \
                 zh_normalize({column}) FROM org_duty ORDER BY id"
            ),
        )
        .await?;
        let batch = &batches[0];
        let trigram = batch.column(0).as_primitive::<Float32Type>();
        assert_eq!(trigram.value(0), 1.0, "{column}");
        assert!(trigram.is_null(2), "{column}");
        let bigram = batch.column(1).as_primitive::<Float64Type>();
        assert_eq!(bigram.value(0), 1.0, "{column}");
        assert!(bigram.value(1) > 0.0 && bigram.value(1) < bigram.value(0));
        assert!(bigram.is_null(2));
        let normalized = batch.column(2).as_string::<i32>();
        assert_eq!(normalized.value(1), "组织实施道路交通秩序管理", "{column}");
    }
    Ok(())
}

#[tokio::test]
async fn levenshtein_replaces_the_built_in() -> Result<()> {
    let context = session()?;
    let values = row(
        &context,
        "SELECT levenshtein('交通局', '交通运输局'), levenshtein('kitten', 'sitting', 2), \
         levenshtein('kitten', 'sitting', 5), levenshtein('a', 'b', -1), \
         arrow_typeof(levenshtein('a', 'b')), \
         arrow_typeof(levenshtein(arrow_cast('a', 'LargeUtf8'), 'b'))",
    )
    .await?;
    assert_eq!(values, ["2", "3", "3", "NULL", "Int32", "Int64"]);
    let batches = query(
        &context,
        "SELECT levenshtein(duty_text, '负责全市档案监督管理工作', CAST(3 AS SMALLINT)) \
         FROM org_duty ORDER BY id",
    )
    .await?;
    let distances = batches[0].column(0).as_primitive::<Int32Type>();
    assert_eq!(distances.value(0), 4);
    assert!(distances.is_null(2));
    assert_eq!(distances.value(3), 0);
    Ok(())
}

#[tokio::test]
async fn func_similarity_with_corpus_weights() -> Result<()> {
    let context = session()?;
    let sql =
        "SELECT func_similarity('负责全市道路交通安全管理工作', '组织实施道路交通秩序管理'), \
               func_similarity('负责全市档案监督管理工作', '负责全市价格监督管理工作'), \
               func_similarity('負責全市道路交通安全管理工作', '负责全市道路交通安全管理工作')";
    let plain = row(&context, sql).await?;
    let plain: Vec<f64> = plain
        .iter()
        .map(|value| value.parse().unwrap_or(f64::NAN))
        .collect();
    // Plain cosine: the boilerplate pair wins.
    assert!(plain[0] < plain[1], "{plain:?}");
    assert_eq!(plain[2], 1.0);

    let weights = TokenWeights::from_texts(func_similarity::tests::DUTY_CLAUSES);
    context.register_udf(func_similarity_with_weights(Arc::new(weights)));
    let weighted = row(&context, sql).await?;
    let weighted: Vec<f64> = weighted
        .iter()
        .map(|value| value.parse().unwrap_or(f64::NAN))
        .collect();
    assert!(weighted[0] > weighted[1], "{weighted:?}");
    assert_eq!(weighted[2], 1.0);
    Ok(())
}

#[tokio::test]
async fn zh_tokens_lists() -> Result<()> {
    let context = session()?;
    let values = row(
        &context,
        "SELECT zh_tokens('負責全市交通，市'), zh_tokens('市'), zh_tokens('。'), \
         arrow_typeof(zh_tokens('交通', 'both'))",
    )
    .await?;
    assert_eq!(values[0], "[负责, 责全, 全市, 市交, 交通, 市]");
    assert_eq!(values[1], "[市]");
    assert_eq!(values[2], "[]");
    assert!(values[3].starts_with("List("), "{}", values[3]);
    Ok(())
}

#[test]
fn every_function_is_documented() {
    for function in all_scalar_udfs() {
        let documentation = function.documentation();
        assert!(
            documentation.is_some_and(|doc| doc.doc_section.label == "Text Functions"),
            "{}",
            function.name()
        );
    }
}
