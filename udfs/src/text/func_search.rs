//! `func_search(query [, top_k])`: fuzzy search over duty clauses and power
//! items. The table function itself lives in the engine, which knows where
//! the documents are (`org_duty`, `power_item`); this module holds its
//! documentation, its result schema and [`SearchCorpus`], the documents with
//! their [`SearchIndex`].

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::Int64Type;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::Documentation;
use datafusion_macros::user_doc;

use super::search_index::{DocumentTerms, SavedIndexError, SearchIndex};

/// Rows `func_search(query)` returns when no `top_k` is given.
pub const DEFAULT_TOP_K: usize = 10;

/// Documents tokenised in parallel per block while building; bounds the
/// memory of terms waiting to be added.
const TOKENISE_BLOCK: usize = 16_384;

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Table function: the duty clauses (`org_duty.duty_text`) and power items \
(`power_item.item_name`) in force (`valid_to IS NULL`) that best match `query`, best first, at \
most `top_k` rows (default 10). Columns: `source` ('duty' or 'power_item'), `org_id`, \
`org_name` (from `org`), `item_id` (`duty_id` or `item_id`), `text`, `score` (Float64). \
Ranking is Okapi BM25 (k1 = 1.2, b = 0.75) over the tokens `func_similarity` compares: the \
character bigrams and jieba words of the normalised text. Because texts are normalised, \
Traditional and Simplified forms match; because most terms are bigrams, word order does not \
matter and a one-character typo still leaves most of the query's bigrams matching. Only rows \
sharing a term with the query are returned; equal scores come in (source, item_id) order. The \
index is built at the first search and saved beside the tables, so that later processes read \
it; rows appended to `org_duty` or `power_item` since (an `INSERT`, `COPY FROM`, an import) are \
added to it, any other change to them or to `org` builds it again. `query` and `top_k` must be \
constants; a NULL query gives no rows.",
    syntax_example = "SELECT * FROM func_search(query [, top_k])",
    sql_example = r#"```sql
> SELECT source, org_name, text, round(score, 2) AS score FROM func_search('食品安全監管', 3);
```"#,
    argument(name = "query", description = "What to look for, any script."),
    argument(
        name = "top_k",
        description = "How many rows at most (default 10, 0 gives none)."
    )
)]
#[derive(Debug, Default)]
pub struct FuncSearchFunc;

impl FuncSearchFunc {
    /// The function's documentation (a table function has no
    /// `ScalarUDFImpl::documentation` to carry it).
    pub fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The columns of `func_search`'s result.
pub fn func_search_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("org_id", DataType::Int64, true),
            Field::new("org_name", DataType::Utf8, true),
            Field::new("item_id", DataType::Int64, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("score", DataType::Float64, false),
        ]))
    });
    SCHEMA.clone()
}

/// The columns a [`SearchCorpus`] is built from: `func_search_schema`
/// without `score`.
pub fn search_document_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let fields: Vec<Field> = func_search_schema()
            .fields()
            .iter()
            .filter(|field| field.name() != "score")
            .map(|field| field.as_ref().clone())
            .collect();
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// The searchable documents (one row per document, columns of
/// [`search_document_schema`]) and their index.
#[derive(Debug)]
pub struct SearchCorpus {
    documents: RecordBatch,
    index: SearchIndex,
}

impl SearchCorpus {
    /// Builds the index over `batches`, whose columns are matched to
    /// [`search_document_schema`] by position and cast to its types.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self> {
        let documents = documents_of(batches)?;
        let index = build_index(SearchIndex::new(), text_column(&documents)?);
        Ok(Self { documents, index })
    }

    /// These documents and those of `batches` after them (rows appended to
    /// the tables): only the new ones are tokenised. Searches give what a
    /// corpus built from all the rows at once gives, scores and ties
    /// included (equal scores rank by source and item_id, not by when a
    /// document came).
    pub fn with_added(&self, batches: &[RecordBatch]) -> Result<Self> {
        Self {
            documents: self.documents.clone(),
            index: self.index.clone(),
        }
        .into_added(batches)
    }

    /// [`Self::with_added`] without copying the index (for a corpus no
    /// search holds any more).
    pub fn into_added(self, batches: &[RecordBatch]) -> Result<Self> {
        let added = documents_of(batches)?;
        let index = build_index(self.index, text_column(&added)?);
        let documents = concat_batches(&search_document_schema(), [&self.documents, &added])?;
        Ok(Self { documents, index })
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.documents.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.num_rows() == 0
    }

    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// Writes the documents (an Arrow IPC stream, after its length in bytes)
    /// and the index, for [`Self::read_saved`].
    pub fn write_saved(&self, out: &mut impl std::io::Write) -> Result<()> {
        let mut documents = Vec::new();
        let mut writer = StreamWriter::try_new(&mut documents, &search_document_schema())?;
        writer.write(&self.documents)?;
        writer.finish()?;
        drop(writer);
        out.write_all(&(documents.len() as u64).to_le_bytes())?;
        out.write_all(&documents)?;
        self.index.write_saved(out)?;
        Ok(())
    }

    /// A corpus written by [`Self::write_saved`], which must be all of
    /// `bytes`; an error if anything is missing, damaged or of another
    /// shape (the documents' schema, one document per indexed text).
    pub fn read_saved(bytes: &[u8]) -> Result<Self> {
        let invalid = |problem| {
            datafusion::error::DataFusionError::External(Box::new(SavedIndexError::Invalid(
                problem,
            )))
        };
        let truncated =
            || datafusion::error::DataFusionError::External(Box::new(SavedIndexError::Truncated));
        let (length, rest) = bytes.split_first_chunk::<8>().ok_or_else(truncated)?;
        let length = usize::try_from(u64::from_le_bytes(*length)).map_err(|_| truncated())?;
        if length > rest.len() {
            return Err(truncated());
        }
        let (documents, index) = rest.split_at(length);
        let reader = StreamReader::try_new(std::io::Cursor::new(documents), None)?;
        if reader.schema() != search_document_schema() {
            return Err(invalid("the documents have other columns"));
        }
        let batches = reader.collect::<std::result::Result<Vec<RecordBatch>, _>>()?;
        let documents = concat_batches(&search_document_schema(), &batches)?;
        let index = SearchIndex::read_saved(index)
            .map_err(|error| datafusion::error::DataFusionError::External(Box::new(error)))?;
        if index.len() != documents.num_rows() {
            return Err(invalid("the documents and the index differ in number"));
        }
        text_column(&documents)?;
        Ok(Self { documents, index })
    }

    /// The best `top_k` documents for `query` with their scores, as rows of
    /// [`func_search_schema`].
    pub fn search(&self, query: &str, top_k: usize) -> Result<RecordBatch> {
        let (Some(sources), Some(item_ids)) = (
            self.documents.column(0).as_string_opt::<i32>(),
            self.documents.column(3).as_primitive_opt::<Int64Type>(),
        ) else {
            return exec_err!("func_search documents lost their source and item_id types");
        };
        // Documents come in (source, item_id) order when built at once, but
        // rows appended later follow the others: rank ties by those columns.
        let hits = self.index.search_with_ties(query, top_k, |document| {
            (
                sources.is_valid(document).then(|| sources.value(document)),
                item_ids
                    .is_valid(document)
                    .then(|| item_ids.value(document)),
            )
        });
        let rows = UInt32Array::from_iter_values(hits.iter().map(|hit| hit.document as u32));
        let mut columns = self
            .documents
            .columns()
            .iter()
            .map(|column| take(column.as_ref(), &rows, None))
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        columns.push(Arc::new(Float64Array::from_iter_values(
            hits.iter().map(|hit| hit.score),
        )));
        Ok(RecordBatch::try_new(func_search_schema(), columns)?)
    }
}

/// The text column of documents made by [`documents_of`].
fn text_column(documents: &RecordBatch) -> Result<&arrow::array::StringArray> {
    documents.column(4).as_any().downcast_ref().ok_or_else(|| {
        datafusion::error::DataFusionError::Internal("text column is not Utf8".into())
    })
}

/// `batches` as one batch of [`search_document_schema`], their columns
/// matched to it by position and cast to its types.
fn documents_of(batches: &[RecordBatch]) -> Result<RecordBatch> {
    let schema = search_document_schema();
    let mut cast_batches = Vec::with_capacity(batches.len());
    for batch in batches {
        if batch.num_columns() != schema.fields().len() {
            return exec_err!(
                "func_search documents need {} columns (source, org_id, org_name, item_id, text), got {}",
                schema.fields().len(),
                batch.num_columns()
            );
        }
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| cast(column, field.data_type()))
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        cast_batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(concat_batches(&schema, &cast_batches)?)
}

/// `index` with `texts` added: tokenised in blocks on every core, added in
/// order. A NULL text is a document without terms. Adding is sequential
/// (document numbers are the order), so the next block is tokenised while
/// one is added.
fn build_index(mut index: SearchIndex, texts: &arrow::array::StringArray) -> SearchIndex {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let blocks: Vec<std::ops::Range<usize>> = (0..texts.len())
        .step_by(TOKENISE_BLOCK)
        .map(|start| start..(start + TOKENISE_BLOCK).min(texts.len()))
        .collect();
    std::thread::scope(|scope| {
        let tokenise = |block: &std::ops::Range<usize>| {
            let chunk = block.len().div_ceil(threads).max(1);
            block
                .clone()
                .step_by(chunk)
                .map(|from| {
                    let rows = from..(from + chunk).min(block.end);
                    scope.spawn(move || {
                        rows.map(|row| {
                            if texts.is_valid(row) {
                                DocumentTerms::new(texts.value(row))
                            } else {
                                DocumentTerms::default()
                            }
                        })
                        .collect::<Vec<_>>()
                    })
                })
                .collect::<Vec<_>>()
        };
        let mut pending = blocks.first().map(tokenise);
        for next in blocks.iter().skip(1).map(Some).chain([None]) {
            let Some(workers) = pending.take() else {
                break;
            };
            pending = next.map(tokenise);
            for worker in workers {
                let terms = worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                for terms in terms {
                    index.add_terms(terms);
                }
            }
        }
    });
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::func_similarity::tests::DUTY_CLAUSES;
    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::Int64Type;

    fn corpus() -> SearchCorpus {
        let rows = DUTY_CLAUSES.len();
        let batch = RecordBatch::try_new(
            search_document_schema(),
            vec![
                Arc::new(StringArray::from_iter_values((0..rows).map(|row| {
                    if row % 2 == 0 {
                        "duty"
                    } else {
                        "power_item"
                    }
                }))),
                Arc::new(Int64Array::from_iter_values(
                    (0..rows as i64).map(|r| r / 3),
                )),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|r| (r % 5 != 0).then(|| format!("机构{}", r / 3))),
                )),
                Arc::new(Int64Array::from_iter_values(100..100 + rows as i64)),
                Arc::new(StringArray::from_iter_values(DUTY_CLAUSES)),
            ],
        )
        .unwrap();
        // Two batches, as a scan gives them.
        SearchCorpus::from_batches(&[batch.slice(0, 10), batch.slice(10, rows - 10)]).unwrap()
    }

    #[test]
    fn a_saved_corpus_reads_back_searching_the_same() {
        let corpus = corpus();
        let mut bytes = Vec::new();
        corpus.write_saved(&mut bytes).unwrap();
        let read = SearchCorpus::read_saved(&bytes).unwrap();
        assert_eq!(read.documents, corpus.documents);
        for query in ["住房公積金", "负责全市", "档案"] {
            assert_eq!(
                read.search(query, 5).unwrap(),
                corpus.search(query, 5).unwrap()
            );
        }
        for end in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                SearchCorpus::read_saved(&bytes[..end]).is_err(),
                "cut at {end}"
            );
        }
        // A corpus whose documents and index differ in number.
        let mut mismatched = Vec::new();
        let fewer = SearchCorpus::from_batches(&[corpus.documents.slice(0, 4)]).unwrap();
        let mut documents = Vec::new();
        fewer.write_saved(&mut documents).unwrap();
        let documents_end =
            8 + usize::try_from(u64::from_le_bytes(documents[..8].try_into().unwrap())).unwrap();
        mismatched.extend_from_slice(&documents[..documents_end]);
        corpus.index.write_saved(&mut mismatched).unwrap();
        let error = SearchCorpus::read_saved(&mismatched)
            .unwrap_err()
            .to_string();
        assert!(error.contains("differ in number"), "{error}");
    }

    #[test]
    fn search_returns_rows_with_scores() {
        let corpus = corpus();
        assert_eq!(corpus.len(), 30);
        let result = corpus.search("住房公積金", 3).unwrap();
        assert_eq!(result.schema(), func_search_schema());
        assert!(result.num_rows() >= 1);
        let item_ids = result.column(3).as_primitive::<Int64Type>();
        assert_eq!(item_ids.value(0), 127);
        assert_eq!(
            result.column(4).as_string::<i32>().value(0),
            "负责全市住房公积金监督管理工作"
        );
        assert_eq!(result.column(0).as_string::<i32>().value(0), "power_item");
        assert_eq!(result.column(2).as_string::<i32>().value(0), "机构9");
        let scores = result
            .column(5)
            .as_primitive::<arrow::datatypes::Float64Type>();
        assert!(scores.value(0) > 0.0);
        assert_eq!(corpus.search("量子", 10).unwrap().num_rows(), 0);
    }

    #[test]
    fn wrong_shape_is_an_error() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["档案"]))],
        )
        .unwrap();
        assert!(SearchCorpus::from_batches(&[batch]).is_err());
        assert!(SearchCorpus::from_batches(&[]).unwrap().is_empty());
    }

    /// Documents of `rows`: row `r` is the duty clause `r mod 30` (each
    /// clause three times in 90 rows, as one clause recurs in several
    /// districts) with item id `37 r mod 1000`, in (source, item_id) order.
    fn documents(rows: &[usize]) -> RecordBatch {
        let mut rows: Vec<(&str, i64, usize)> = rows
            .iter()
            .map(|&row| {
                let source = if row % 4 == 0 { "power_item" } else { "duty" };
                (source, (row as i64 * 37) % 1000, row % DUTY_CLAUSES.len())
            })
            .collect();
        rows.sort_unstable();
        RecordBatch::try_new(
            search_document_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1 / 10))),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| format!("机构{}", r.1 / 10)),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| DUTY_CLAUSES[r.2]),
                )),
            ],
        )
        .unwrap()
    }

    #[test]
    fn appended_documents_search_as_if_built_at_once() {
        let all: Vec<usize> = (0..90).collect();
        let (earlier, later): (Vec<usize>, Vec<usize>) = all.iter().partition(|&&row| row % 3 != 1);
        let at_once = SearchCorpus::from_batches(&[documents(&all)]).unwrap();
        let appended = SearchCorpus::from_batches(&[documents(&earlier)])
            .unwrap()
            .with_added(&[documents(&later)])
            .unwrap();
        assert_eq!(appended.len(), 90);
        // The appended rows interleave with the earlier ones by item_id, and
        // every clause is three documents: ties rank the same, scores are
        // bit for bit the same.
        for query in ["道路交通", "负责全市", "住房公積金监督", "档案", "量子"] {
            for top_k in [1, 2, 5, 90] {
                assert_eq!(
                    appended.search(query, top_k).unwrap(),
                    at_once.search(query, top_k).unwrap(),
                    "{query} top {top_k}"
                );
            }
        }
        let ties = at_once.search("负责全市", 90).unwrap();
        let scores = ties
            .column(5)
            .as_primitive::<arrow::datatypes::Float64Type>();
        assert!(
            (1..ties.num_rows()).any(|row| scores.value(row) == scores.value(row - 1)),
            "the corpus has ties to order"
        );
        // Appending nothing changes nothing.
        let same = at_once.with_added(&[]).unwrap();
        assert_eq!(
            same.search("档案", 5).unwrap(),
            at_once.search("档案", 5).unwrap()
        );
    }

    #[test]
    fn parallel_build_equals_sequential() {
        let texts =
            StringArray::from_iter((0..20_000).map(|row| {
                (row % 7 != 0).then(|| DUTY_CLAUSES[row % DUTY_CLAUSES.len()].to_string())
            }));
        let parallel = build_index(SearchIndex::new(), &texts);
        assert_eq!(parallel.len(), 20_000);
        let sequential = SearchIndex::from_texts((0..20_000).map(|row| {
            if row % 7 != 0 {
                DUTY_CLAUSES[row % 30]
            } else {
                ""
            }
        }));
        assert_eq!(
            parallel.search("道路交通", 20),
            sequential.search("道路交通", 20)
        );
        assert!(FuncSearchFunc.documentation().is_some());
    }
}
