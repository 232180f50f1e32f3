//! `func_similarity(a, b)`: how much two duty texts describe the same
//! function (职能), with corpus boilerplate weighted down.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::Float64Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;

use super::normalize::{counted, pack_bigram, NormalizedText};
use super::support::{evaluate, map_string_pairs_once_per_text, string_argument, string_pair};
use super::token_weights::{SharedTokenWeights, TokenWeights};

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns how similar two Chinese duty texts are, in [0, 1], as Float64: the \
cosine of their token vectors weighted by log term frequency and inverse document frequency \
(the SMART `ltc` scheme). The tokens of a text are its character bigrams and its jieba words \
(see `zh_tokens(text, 'both')`; bigrams and words are distinct tokens); a token occurring tf \
times weighs `(1 + ln tf) · idf`, `idf = ln((N + 1) / (df + 1)) + 1`, where df is the number of \
duty texts of the corpus containing the token and N the corpus size. Repeats count, but \
sublinearly: a clause naming its object three times is about that object more surely than one \
naming it once, not three times more. So \
words every duty text uses — 负责, 组织实施, 工作, 全市, 有关 — weigh little, and two texts \
sharing only boilerplate score low; nothing is hand-listed. A token in no corpus text gets the \
largest weight. The texts are normalised first (Traditional = Simplified; punctuation and \
spaces are dropped and split the text, so no token spans them), so a text and its Traditional \
form score 1. NULL in gives NULL; 0 when either text has no \
tokens, also when both have none. Every weight is 1 (plain cosine) until the function is \
registered again through `func_similarity_with_weights` with document frequencies counted over \
the duty texts of the opened database (`org_duty.duty_text`, `power_item`); bianzhi counts \
them again before a statement using the function when either table has changed.",
    syntax_example = "func_similarity(a, b)",
    sql_example = r#"```sql
> SELECT func_similarity('負責全市道路交通安全管理工作', '负责全市道路交通安全管理工作');
+--------------------------------------------------------------------------------------------+
| func_similarity(Utf8("負責全市道路交通安全管理工作"),Utf8("负责全市道路交通安全管理工作")) |
+--------------------------------------------------------------------------------------------+
| 1.0                                                                                        |
+--------------------------------------------------------------------------------------------+
```"#,
    argument(name = "a", description = "First duty text."),
    argument(name = "b", description = "Second duty text.")
)]
#[derive(Debug)]
pub struct FuncSimilarityFunc {
    signature: Signature,
    /// Read once per batch: the engine may put in new counts between statements.
    weights: Arc<SharedTokenWeights>,
}

impl Default for FuncSimilarityFunc {
    fn default() -> Self {
        Self::new(Arc::new(TokenWeights::uniform()))
    }
}

impl FuncSimilarityFunc {
    pub fn new(weights: Arc<TokenWeights>) -> Self {
        Self::with_shared_weights(Arc::new(SharedTokenWeights::new(weights)))
    }

    /// Scoring with whatever weights `weights` holds when it runs.
    pub fn with_shared_weights(weights: Arc<SharedTokenWeights>) -> Self {
        Self {
            signature: Signature::coercible(
                vec![string_argument(), string_argument()],
                Volatility::Immutable,
            ),
            weights,
        }
    }

    /// The weights in place now.
    pub fn weights(&self) -> Arc<TokenWeights> {
        self.weights.current()
    }
}

/// `func_similarity` with the given corpus weights, to register over the
/// default one: `registry.register_udf(Arc::new(func_similarity_with_weights(w)))`.
pub fn func_similarity_with_weights(weights: Arc<TokenWeights>) -> ScalarUDF {
    ScalarUDF::from(FuncSimilarityFunc::new(weights))
}

/// `func_similarity` scoring with the weights `weights` holds when it runs,
/// so that new counts reach sessions already open.
pub fn func_similarity_with_shared_weights(weights: Arc<SharedTokenWeights>) -> ScalarUDF {
    ScalarUDF::from(FuncSimilarityFunc::with_shared_weights(weights))
}

// Two instances are the same function when they share their weights or
// these are equal now; the hash only looks at sizes, which equal weights
// share.
impl PartialEq for FuncSimilarityFunc {
    fn eq(&self, other: &Self) -> bool {
        self.signature == other.signature
            && (Arc::ptr_eq(&self.weights, &other.weights)
                || self.weights.current() == other.weights.current())
    }
}

impl Eq for FuncSimilarityFunc {}

impl Hash for FuncSimilarityFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let weights = self.weights.current();
        self.signature.hash(state);
        weights.documents().hash(state);
        weights.distinct_tokens().hash(state);
    }
}

impl ScalarUDFImpl for FuncSimilarityFunc {
    fn name(&self) -> &str {
        "func_similarity"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (left, right) = string_pair("func_similarity", &args.args)?;
        let weights = self.weights.current();
        evaluate(&args.args, args.number_rows, |rows| {
            let scores = map_string_pairs_once_per_text(
                &left,
                &right,
                rows,
                |text| WeightedTokens::new(text, &weights),
                WeightedTokens::cosine,
            );
            Ok(Arc::new(Float64Array::from(scores)))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The distinct tokens of one text with their weights `(1 + ln tf) · idf`,
/// sorted, and the squared length of the weight vector.
#[derive(Debug)]
pub(crate) struct WeightedTokens {
    bigrams: Vec<(u64, f64)>,
    words: Vec<(String, f64)>,
    squared_norm: f64,
}

/// The distinct tokens of one text with how often each occurs, before any
/// weighting: bigrams (packed) by packed value, then words as strings, the
/// order `func_similarity` sums in. A function of the text alone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CountedTokens {
    pub(crate) bigrams: Vec<(u64, u32)>,
    pub(crate) words: Vec<(String, u32)>,
}

impl CountedTokens {
    pub(crate) fn new(text: &str) -> Self {
        let normalized = NormalizedText::new(text);
        let mut packed: Vec<u64> = normalized.bigrams().map(pack_bigram).collect();
        packed.sort_unstable();
        let mut all_words: Vec<&str> = normalized.words().collect();
        all_words.sort_unstable();
        Self {
            bigrams: counted(packed),
            words: counted(all_words)
                .into_iter()
                .map(|(word, count)| (word.to_owned(), count))
                .collect(),
        }
    }
}

impl WeightedTokens {
    pub(crate) fn new(text: &str, weights: &TokenWeights) -> Self {
        let counted = CountedTokens::new(text);
        let bigrams: Vec<(u64, f64)> = counted
            .bigrams
            .into_iter()
            .map(|(bigram, count)| {
                let weight = log_tf(count) * weights.packed_bigram_weight(bigram);
                (bigram, weight)
            })
            .collect();
        let words: Vec<(String, f64)> = counted
            .words
            .into_iter()
            .map(|(word, count)| {
                let weight = log_tf(count) * weights.word_weight(&word);
                (word, weight)
            })
            .collect();
        // Summed as the dot product is (bigrams, then words, then the two
        // sums added), so that equal token sets give a dot product equal to
        // the squared norm to the last bit.
        let squared_norm = squared_weights(&bigrams) + squared_weights(&words);
        Self {
            bigrams,
            words,
            squared_norm,
        }
    }

    /// Cosine of two weight vectors; 0 when either is empty. Summed in the
    /// same order as the norms, identical token counts give exactly 1.
    pub(crate) fn cosine(&self, other: &Self) -> f64 {
        if self.squared_norm <= 0.0 || other.squared_norm <= 0.0 {
            return 0.0;
        }
        let dot = shared_weights(&self.bigrams, &other.bigrams)
            + shared_weights(&self.words, &other.words);
        (dot / (self.squared_norm * other.squared_norm).sqrt()).min(1.0)
    }
}

fn squared_weights<T>(tokens: &[(T, f64)]) -> f64 {
    sum_of_squares(tokens.iter().map(|(_, weight)| *weight))
}

/// `Σ w²` added in the order given: how a norm is summed everywhere, so
/// that norms computed apart agree to the last bit.
pub(crate) fn sum_of_squares(weights: impl Iterator<Item = f64>) -> f64 {
    weights.map(|weight| weight * weight).sum()
}

/// Sublinear term frequency: 1 for one occurrence, 1 + ln tf for more.
pub(crate) fn log_tf(count: u32) -> f64 {
    // Most tokens occur once: 1 is what `1.0 + 1.0.ln()` gives, without
    // the logarithm.
    if count <= 1 {
        1.0
    } else {
        1.0 + f64::from(count).ln()
    }
}

/// The dot product over the tokens both sides have.
fn shared_weights<T: Ord>(left: &[(T, f64)], right: &[(T, f64)]) -> f64 {
    let (mut left_index, mut right_index, mut sum) = (0, 0, 0.0);
    while left_index < left.len() && right_index < right.len() {
        let (left_token, weight) = &left[left_index];
        let (right_token, right_weight) = &right[right_index];
        match left_token.cmp(right_token) {
            std::cmp::Ordering::Less => left_index += 1,
            std::cmp::Ordering::Greater => right_index += 1,
            std::cmp::Ordering::Equal => {
                sum += weight * right_weight;
                left_index += 1;
                right_index += 1;
            }
        }
    }
    sum
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Duty clauses (职责条款) in the style of 三定 provisions: 负责, 全市,
    /// 工作, 监督管理, 组织实施 recur throughout, as in a real corpus.
    pub(crate) const DUTY_CLAUSES: [&str; 30] = [
        "负责全市道路交通安全管理工作",
        "组织实施道路交通秩序管理",
        "负责全市档案监督管理工作",
        "负责全市价格监督管理工作",
        "负责全市食品安全监督管理工作",
        "负责全市安全生产监督管理工作",
        "负责全市药品医疗器械监督管理工作",
        "负责全市特种设备安全监督管理工作",
        "负责全市城乡规划监督管理工作",
        "负责全市建筑市场监督管理工作",
        "负责全市环境保护监督管理工作",
        "负责全市水资源统一监督管理工作",
        "负责全市统计工作的组织实施和监督管理",
        "负责全市审计监督工作",
        "负责全市人力资源市场监督管理工作",
        "负责全市社会保险基金监督管理工作",
        "组织实施全市国土资源调查评价工作",
        "组织实施全市农业综合开发项目",
        "负责全市文化市场综合执法监督管理工作",
        "负责全市旅游市场秩序监督管理工作",
        "负责全市机动车驾驶人考试和车辆登记管理工作",
        "组织实施城市道路桥梁设施养护管理",
        "负责全市公共交通运营监督管理工作",
        "负责全市质量技术监督管理工作",
        "负责全市计量标准化监督管理工作",
        "组织实施全市档案资料收集整理工作",
        "负责全市物价收费监督检查工作",
        "负责全市住房公积金监督管理工作",
        "负责全市民政事业有关监督管理工作",
        "负责全市森林防火有关组织实施工作",
    ];

    fn corpus() -> TokenWeights {
        TokenWeights::from_texts(DUTY_CLAUSES)
    }

    fn similarity(weights: &TokenWeights, left: &str, right: &str) -> f64 {
        WeightedTokens::new(left, weights).cosine(&WeightedTokens::new(right, weights))
    }

    #[test]
    fn boilerplate_is_weighted_down_by_the_corpus() {
        let weights = corpus();
        assert_eq!(weights.documents(), 30);
        for boilerplate in ["负责", "全市", "工作", "监督"] {
            assert!(
                weights.bigram_weight(boilerplate) < 1.3,
                "{boilerplate}: {}",
                weights.bigram_weight(boilerplate)
            );
        }
        assert!(weights.bigram_weight("交通") > 2.0);
    }

    #[test]
    fn related_duties_beat_shared_boilerplate() {
        let weights = corpus();
        let related = similarity(
            &weights,
            "负责全市道路交通安全管理工作",
            "组织实施道路交通秩序管理",
        );
        let unrelated = similarity(
            &weights,
            "负责全市档案监督管理工作",
            "负责全市价格监督管理工作",
        );
        assert!(
            related > unrelated,
            "related {related} should exceed unrelated {unrelated}"
        );
        // Without corpus weights the boilerplate wins: the reason for IDF.
        let uniform = TokenWeights::uniform();
        let related_plain = similarity(
            &uniform,
            "负责全市道路交通安全管理工作",
            "组织实施道路交通秩序管理",
        );
        let unrelated_plain = similarity(
            &uniform,
            "负责全市档案监督管理工作",
            "负责全市价格监督管理工作",
        );
        assert!(
            related_plain < unrelated_plain,
            "{related_plain} vs {unrelated_plain}"
        );
    }

    #[test]
    fn traditional_form_scores_one() {
        let weights = corpus();
        assert_eq!(
            similarity(
                &weights,
                "負責全市道路交通安全管理工作",
                "负责全市道路交通安全管理工作"
            ),
            1.0
        );
        assert_eq!(similarity(&weights, "", ""), 0.0);
        assert_eq!(similarity(&weights, "，", "交通"), 0.0);
    }

    #[test]
    fn repeats_count_sublinearly() {
        let uniform = TokenWeights::uniform();
        let tokens = WeightedTokens::new("交通，交通，交通", &uniform);
        assert_eq!(tokens.bigrams, [(pack_bigram("交通"), 1.0 + 3.0f64.ln())]);
        assert_eq!(tokens.words, [("交通".to_string(), 1.0 + 3.0f64.ln())]);
        // Same tokens, other counts: similar but not the same.
        let repeated = similarity(&uniform, "交通管理，交通", "交通管理");
        assert!(repeated > 0.8 && repeated < 1.0, "{repeated}");
    }

    /// One call of `function` on two constant texts.
    fn invoke(function: &FuncSimilarityFunc, left: &str, right: &str) -> Result<f64> {
        use arrow::datatypes::Field;
        use datafusion::common::config::ConfigOptions;
        use datafusion::common::ScalarValue;

        let args = vec![
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(left.to_string()))),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(right.to_string()))),
        ];
        let arg_fields = args
            .iter()
            .map(|argument| Arc::new(Field::new("text", argument.data_type(), true)))
            .collect();
        let result = function.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: 1,
            return_field: Arc::new(Field::new("func_similarity", DataType::Float64, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        match result {
            ColumnarValue::Scalar(ScalarValue::Float64(Some(score))) => Ok(score),
            other => panic!("expected one score, got {other:?}"),
        }
    }

    #[test]
    fn shared_weights_are_read_when_the_function_runs() -> Result<()> {
        let (left, right) = ("负责全市道路交通安全管理工作", "组织实施道路交通秩序管理");
        let shared = Arc::new(SharedTokenWeights::new(Arc::new(TokenWeights::uniform())));
        let function = FuncSimilarityFunc::with_shared_weights(Arc::clone(&shared));
        let before = invoke(&function, left, right)?;
        assert_eq!(before, similarity(&TokenWeights::uniform(), left, right));
        shared.replace(Arc::new(corpus()));
        let after = invoke(&function, left, right)?;
        assert_eq!(after, similarity(&corpus(), left, right));
        assert_ne!(before, after);
        assert_eq!(function.weights().documents(), 30);
        // Another instance over the same cell is the same function, and one
        // over other weights that are equal now is too.
        assert_eq!(
            function,
            FuncSimilarityFunc::with_shared_weights(Arc::clone(&shared))
        );
        assert_eq!(function, FuncSimilarityFunc::new(Arc::new(corpus())));
        Ok(())
    }

    #[test]
    fn instances_compare_by_weights() {
        let weights = Arc::new(corpus());
        let first = FuncSimilarityFunc::new(Arc::clone(&weights));
        let second = FuncSimilarityFunc::new(Arc::new(corpus()));
        assert_eq!(first, second);
        assert_ne!(first, FuncSimilarityFunc::default());
        assert_eq!(
            func_similarity_with_weights(weights).name(),
            "func_similarity"
        );
    }
}
