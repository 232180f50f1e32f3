//! func_search latency over many items: 1,000,000 duty clauses and power
//! items (BIANZHI_SEARCH_ITEMS to change), synthesised by recombining
//! clause parts — an object (食品安全, 特种设备 …), an action (监督管理,
//! 行政许可 …), a scope and a tail — with a seeded generator, so every run
//! searches the same corpus. Reports the index build time and, per query, the
//! median latency of `SearchCorpus::search` (what the table function's scan
//! runs once the index is built) over several runs.
//!
//! Run: `cargo bench -p bianzhi-benches --bench search`.

use std::sync::Arc;
use std::time::Instant;

use bianzhi_udfs::text::{search_document_schema, SearchCorpus};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};

const RUNS: usize = 7;

const SCOPES: &[&str] = &[
    "负责全市",
    "负责全区",
    "组织实施全市",
    "指导全区",
    "承担本级",
    "负责本行政区域",
];
const OBJECTS: &[&str] = &[
    "食品安全",
    "特种设备",
    "药品医疗器械",
    "化妆品",
    "噪声污染",
    "饮用水水源",
    "排污许可",
    "环境影响评价",
    "农村公路",
    "矿山安全",
    "统计调查",
    "传染病",
    "灾情报告",
    "应急预案",
    "档案",
    "价格",
    "道路交通安全",
    "城乡规划",
    "建筑市场",
    "水资源",
    "森林防火",
    "住房公积金",
    "社会保险基金",
    "文化市场",
    "旅游市场",
    "计量标准化",
    "自然资源确权登记",
    "市场主体登记",
    "燃气管道",
    "城市照明",
    "园林绿化",
    "人力资源市场",
    "国有资产",
    "土地征收",
    "不动产登记",
];
const ACTIONS: &[&str] = &[
    "监督管理",
    "行政许可",
    "行政处罚",
    "行政检查",
    "综合协调",
    "风险监测",
    "统计分析",
    "应急处置",
    "规划编制",
    "标准制定",
    "宣传教育",
    "执法监督",
    "信息公开",
    "项目审批",
];
const TAILS: &[&str] = &[
    "工作",
    "的组织实施",
    "有关工作",
    "和监督检查",
    "并组织实施",
    "，拟订相关政策措施",
    "，承担相关责任",
    "，指导下级开展相关工作",
];

/// The queries of the evaluation set, and variants in Traditional script,
/// another word order and with a one-character typo.
const QUERIES: &[&str] = &[
    "食品安全",
    "噪声污染",
    "燃气管道",
    "化妆品监管",
    "饮用水水源保护",
    "排污许可",
    "环境影响评价",
    "农村公路",
    "矿山安全监管",
    "统计调查",
    "传染病防治",
    "灾情报告",
    "食品安全監管",
    "管道燃气",
    "特种设被",
    "负责全市监督管理工作",
];

/// A small linear congruential generator: enough to mix parts reproducibly.
struct Lcg(u64);

impl Lcg {
    fn pick<'a>(&mut self, parts: &[&'a str]) -> &'a str {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        parts[((self.0 >> 33) as usize) % parts.len()]
    }
}

fn corpus_batch(items: usize) -> anyhow::Result<RecordBatch> {
    let mut random = Lcg(42);
    let mut texts = Vec::with_capacity(items);
    for _ in 0..items {
        let first = format!(
            "{}{}{}{}",
            random.pick(SCOPES),
            random.pick(OBJECTS),
            random.pick(ACTIONS),
            random.pick(TAILS)
        );
        // About half the items carry a second clause on another object.
        let second = match random.pick(&["", "x"]) {
            "" => String::new(),
            _ => format!(
                "；{}{}{}",
                random.pick(OBJECTS),
                random.pick(ACTIONS),
                random.pick(TAILS)
            ),
        };
        texts.push(first + &second);
    }
    let items = items as i64;
    Ok(RecordBatch::try_new(
        search_document_schema(),
        vec![
            Arc::new(StringArray::from_iter_values((0..items).map(|i| {
                if i % 3 == 0 {
                    "power_item"
                } else {
                    "duty"
                }
            }))),
            Arc::new(Int64Array::from_iter_values((0..items).map(|i| i % 2_000))),
            Arc::new(StringArray::from_iter_values(
                (0..items).map(|i| format!("机构{}", i % 2_000)),
            )),
            Arc::new(Int64Array::from_iter_values(0..items)),
            Arc::new(StringArray::from(texts)),
        ],
    )?)
}

fn main() -> anyhow::Result<()> {
    let items: usize = std::env::var("BIANZHI_SEARCH_ITEMS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let batch = corpus_batch(items)?;
    let started = Instant::now();
    let corpus = SearchCorpus::from_batches(&[batch])?;
    println!(
        "func_search index: {} items, {} distinct terms, built in {:.1} s on {} threads",
        corpus.len(),
        corpus.index().distinct_terms(),
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{:<24} {:>6} {:>12}", "query (top 10)", "rows", "median ms");
    let mut medians = Vec::new();
    for query in QUERIES {
        let mut seconds = Vec::with_capacity(RUNS);
        let mut rows = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            rows = corpus.search(query, 10)?.num_rows();
            seconds.push(started.elapsed().as_secs_f64());
        }
        seconds.sort_by(f64::total_cmp);
        let median = seconds[RUNS / 2];
        medians.push(median);
        println!("{query:<24} {rows:>6} {:>12.2}", median * 1e3);
    }
    medians.sort_by(f64::total_cmp);
    println!(
        "over {} queries: median {:.2} ms, slowest {:.2} ms",
        medians.len(),
        medians[medians.len() / 2] * 1e3,
        medians[medians.len() - 1] * 1e3
    );
    Ok(())
}
