//! The reforms inside the frame, with the lineage they leave in
//! reform / reform_org_change, the ledger (划出/划入) and staff events (划转):
//!
//! - 2022-01: in 盐田区 and 坪山区 the 统计局 is merged into the 发展和改革局
//!   (合并, 撤销; quota and people moved).
//! - 2024-03: 中共深圳市委社会工作部 is set up (新设) with functions and quota
//!   taken from 民政局, 组织部 and 政法委 (职责划转).

use chrono::NaiveDate;

use super::calendar::{month_start, ymd};
use super::orgs::{Org, Role};
use super::shenzhen::DISTRICTS;
use super::staffing::{Reform, ReformChange, ReformContext};

/// Month index of the district mergers (2022-01) and of the 2024 city reform (2024-03).
const MERGER_MONTH: usize = 24;
const SOCIAL_WORK_MONTH: usize = 50;

/// Apply the reforms that take effect in month `m`.
pub fn apply_reforms(ctx: &mut ReformContext<'_, '_>, m: usize) {
    if m == MERGER_MONTH {
        for district in ["盐田区", "坪山区"] {
            merge_statistics_bureau(ctx, district, month_start(m));
        }
    }
    if m == SOCIAL_WORK_MONTH {
        set_up_social_work_department(ctx, month_start(m));
    }
}

fn find(ctx: &ReformContext<'_, '_>, name: &str) -> Option<usize> {
    ctx.orgs()
        .iter()
        .position(|o| o.name == name && o.valid_to.is_none())
}

fn merge_statistics_bureau(ctx: &mut ReformContext<'_, '_>, district: &str, date: NaiveDate) {
    let Some(short) = DISTRICTS
        .iter()
        .find(|d| d.name == district)
        .map(|d| d.short_name())
    else {
        return;
    };
    let source_name = format!("深圳市{district}统计局");
    let target_name = format!("深圳市{district}发展和改革局");
    let (Some(source), Some(target)) = (find(ctx, &source_name), find(ctx, &target_name)) else {
        return;
    };
    let title = format!("{district}机构改革方案(统计局并入发展和改革局)");
    let doc = ctx
        .documents()
        .reform_plan(short, &title, ymd(2021, 12, 10));
    let mut changes = Vec::new();
    for quota_type in ["行政", "工勤"] {
        let (Some(from_pool), Some(to_pool)) =
            (ctx.pool(source, quota_type), ctx.pool(target, quota_type))
        else {
            continue;
        };
        let (approved, headcount) = ctx.pool_state(from_pool);
        ctx.transfer(from_pool, to_pool, approved, headcount, date, &doc);
        changes.push(ReformChange {
            change_type: "合并",
            source: Some(source),
            target: Some(target),
            quota_type: Some(quota_type),
            quota_moved: Some(approved),
            note: format!("{source_name}并入{target_name},编制和人员整体划转"),
        });
    }
    ctx.close_org(source, date);
    changes.push(ReformChange {
        change_type: "撤销",
        source: Some(source),
        target: None,
        quota_type: None,
        quota_moved: None,
        note: format!("撤销{source_name}"),
    });
    ctx.add_reform(Reform {
        name: title,
        date,
        doc_id: doc.0,
        description: format!(
            "将{source_name}的职责、编制和人员整体并入{target_name},不再保留{source_name}。"
        ),
        changes,
    });
}

fn set_up_social_work_department(ctx: &mut ReformContext<'_, '_>, date: NaiveDate) {
    let title = "深圳市党政机构改革方案(2024年)";
    let doc = ctx.documents().reform_plan("深", title, ymd(2024, 2, 5));
    let mut org = Org {
        id: 0,
        name: "中共深圳市委社会工作部".to_string(),
        short_name: Some("市社会工作部".to_string()),
        uscc: None,
        kind: "党委工作机关",
        system: "党委",
        nature: "党政机关",
        rank: "正厅级",
        tier: "市",
        region_code: "440300000000".to_string(),
        sector: "基层治理",
        funding: "全额拨款",
        welfare_class: None,
        affiliation: "40",
        parent: None,
        vertical: false,
        valid_from: date,
        valid_to: None,
        role: Role::Department,
        district: None,
        function_key: Some("social_work"),
        quotas: vec![("行政", 0.0)],
        civil_service_like: false,
        leader_posts: vec![
            ("厅局级正职", 1),
            ("厅局级副职", 3),
            ("县处级正职", 4),
            ("县处级副职", 5),
        ],
    };
    org.uscc = Some(super::id_number::uscc('1', 440300, 19_000_000));
    let target = ctx.add_org(org);
    for division in ["综合处", "社会工作处", "基层治理处", "志愿服务处"] {
        let mut div = ctx.orgs()[target].clone();
        div.name = format!("中共深圳市委社会工作部{division}");
        div.short_name = None;
        div.uscc = None;
        div.kind = "内设机构";
        div.rank = "正处级";
        div.role = Role::Division;
        div.parent = Some(ctx.orgs()[target].id);
        div.function_key = None;
        div.quotas = Vec::new();
        div.leader_posts = Vec::new();
        ctx.add_org(div);
    }
    let to_pool = ctx.add_pool(target, "行政", date, doc.clone());
    let mut changes = vec![ReformChange {
        change_type: "设立",
        source: None,
        target: Some(target),
        quota_type: None,
        quota_moved: None,
        note: "组建中共深圳市委社会工作部,作为市委职能部门".to_string(),
    }];
    for (source_name, share, what) in [
        ("深圳市民政局", 0.14, "基层政权建设和社区治理、志愿服务"),
        (
            "中共深圳市委组织部",
            0.08,
            "统筹推进党建引领基层治理、两新组织党建",
        ),
        ("中共深圳市委政法委员会", 0.10, "社会治理"),
    ] {
        let Some(source) = find(ctx, source_name) else {
            continue;
        };
        let Some(from_pool) = ctx.pool(source, "行政") else {
            continue;
        };
        let (approved, headcount) = ctx.pool_state(from_pool);
        let quota = ((f64::from(approved) * share).round() as i32).max(1);
        let vacancy = (approved - headcount).max(0);
        // Enough people move that neither side ends up over quota nor mostly empty.
        let people = (quota - vacancy)
            .max((f64::from(quota) * 0.8).ceil() as i32)
            .min(headcount);
        ctx.transfer(from_pool, to_pool, quota, people, date, &doc);
        changes.push(ReformChange {
            change_type: "职责划转",
            source: Some(source),
            target: Some(target),
            quota_type: Some("行政"),
            quota_moved: Some(quota),
            note: format!("将{source_name}{what}职责划入市委社会工作部"),
        });
    }
    ctx.add_reform(Reform {
        name: title.to_string(),
        date,
        doc_id: doc.0,
        description: "组建市委社会工作部,划入市民政局、市委组织部、市委政法委的有关职责和编制。"
            .to_string(),
        changes,
    });
}
