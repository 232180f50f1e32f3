-- bianzhi schema: the one source of every table (机构编制数据库表结构).
--
-- The catalog crate parses this file at build time of a session; nothing in Rust
-- repeats it. Types are PostgreSQL's and map to Arrow / Delta Lake as follows:
--   BIGINT → Int64 (long)        INTEGER → Int32 (integer)    SMALLINT → Int16 (short)
--   TEXT → Utf8 (string)         BOOLEAN → Boolean            DATE → Date32 (date)
--   TIMESTAMPTZ → Timestamp(µs, UTC) (timestamp)             DOUBLE PRECISION → Float64
--   NUMERIC(p, s) → Decimal128(p, s) (decimal)
-- NOT NULL is kept as Arrow/Delta non-nullability. PRIMARY KEY is recorded as
-- metadata (shown to clients) and checked by the generator's tests, not enforced
-- on every write. Code columns hold the Chinese codes listed in dict_code; the
-- code set is named in the column's comment as [代码集 name].
-- Intervals are valid_from / valid_to, valid_to NULL meaning still valid, and
-- valid_to itself is the first day no longer valid (half-open interval).

CREATE TABLE region (
    region_code     TEXT NOT NULL,
    region_name     TEXT NOT NULL,
    region_level    TEXT NOT NULL,
    parent_code     TEXT,
    gb2260_code     TEXT,
    is_function_area BOOLEAN NOT NULL,
    sort_order      INTEGER NOT NULL,
    PRIMARY KEY (region_code)
);
COMMENT ON TABLE region IS '行政区划';
COMMENT ON COLUMN region.region_code IS '区划代码(12位统计用区划代码)';
COMMENT ON COLUMN region.region_name IS '区划名称';
COMMENT ON COLUMN region.region_level IS '区划层级[代码集 region_level]';
COMMENT ON COLUMN region.parent_code IS '上级区划代码';
COMMENT ON COLUMN region.gb2260_code IS 'GB/T 2260县级代码(6位)';
COMMENT ON COLUMN region.is_function_area IS '是否功能区(新区、合作区)';
COMMENT ON COLUMN region.sort_order IS '排序号';

CREATE TABLE region_stat_year (
    region_code     TEXT NOT NULL,
    stat_year       SMALLINT NOT NULL,
    resident_population BIGINT NOT NULL,
    registered_population BIGINT NOT NULL,
    land_area_km2   DOUBLE PRECISION NOT NULL,
    students        BIGINT NOT NULL,
    hospital_beds   BIGINT NOT NULL,
    market_entities BIGINT NOT NULL,
    PRIMARY KEY (region_code, stat_year)
);
COMMENT ON TABLE region_stat_year IS '人口与基础数据';
COMMENT ON COLUMN region_stat_year.region_code IS '区划代码';
COMMENT ON COLUMN region_stat_year.stat_year IS '统计年度';
COMMENT ON COLUMN region_stat_year.resident_population IS '常住人口(年末)';
COMMENT ON COLUMN region_stat_year.registered_population IS '户籍人口(年末)';
COMMENT ON COLUMN region_stat_year.land_area_km2 IS '土地面积(平方公里)';
COMMENT ON COLUMN region_stat_year.students IS '在校学生数';
COMMENT ON COLUMN region_stat_year.hospital_beds IS '医疗机构床位数';
COMMENT ON COLUMN region_stat_year.market_entities IS '商事主体数';

CREATE TABLE org (
    org_id          BIGINT NOT NULL,
    org_name        TEXT NOT NULL,
    short_name      TEXT,
    uscc            TEXT,
    org_kind        TEXT NOT NULL,
    system_type     TEXT NOT NULL,
    org_nature      TEXT NOT NULL,
    org_rank        TEXT NOT NULL,
    tier            TEXT NOT NULL,
    region_code     TEXT NOT NULL,
    sector          TEXT NOT NULL,
    funding_type    TEXT NOT NULL,
    public_welfare_class TEXT,
    affiliation     TEXT NOT NULL,
    parent_org_id   BIGINT,
    is_vertical     BOOLEAN NOT NULL,
    valid_from      DATE NOT NULL,
    valid_to        DATE,
    PRIMARY KEY (org_id)
);
COMMENT ON TABLE org IS '机构';
COMMENT ON COLUMN org.org_id IS '机构标识';
COMMENT ON COLUMN org.org_name IS '机构名称';
COMMENT ON COLUMN org.short_name IS '机构简称';
COMMENT ON COLUMN org.uscc IS '统一社会信用代码';
COMMENT ON COLUMN org.org_kind IS '机构类别[代码集 org_kind]';
COMMENT ON COLUMN org.system_type IS '系统类别[代码集 system_type]';
COMMENT ON COLUMN org.org_nature IS '机构性质[代码集 org_nature]';
COMMENT ON COLUMN org.org_rank IS '机构级别[代码集 org_rank]';
COMMENT ON COLUMN org.tier IS '层级[代码集 tier]';
COMMENT ON COLUMN org.region_code IS '所在区划代码';
COMMENT ON COLUMN org.sector IS '职能领域[代码集 sector]';
COMMENT ON COLUMN org.funding_type IS '经费形式[代码集 funding_type]';
COMMENT ON COLUMN org.public_welfare_class IS '事业单位类别[代码集 public_welfare_class]';
COMMENT ON COLUMN org.affiliation IS '隶属关系(GB/T 12404)[代码集 affiliation]';
COMMENT ON COLUMN org.parent_org_id IS '上级机构标识(内设机构、下属单位)';
COMMENT ON COLUMN org.is_vertical IS '是否垂直管理';
COMMENT ON COLUMN org.valid_from IS '设立日期';
COMMENT ON COLUMN org.valid_to IS '撤销日期';

CREATE TABLE establishment_quota (
    quota_id        BIGINT NOT NULL,
    org_id          BIGINT NOT NULL,
    quota_type      TEXT NOT NULL,
    approved_count  INTEGER NOT NULL,
    valid_from      DATE NOT NULL,
    valid_to        DATE,
    doc_id          BIGINT,
    PRIMARY KEY (quota_id)
);
COMMENT ON TABLE establishment_quota IS '核定编制';
COMMENT ON COLUMN establishment_quota.quota_id IS '编制记录标识';
COMMENT ON COLUMN establishment_quota.org_id IS '机构标识';
COMMENT ON COLUMN establishment_quota.quota_type IS '编制类型[代码集 quota_type]';
COMMENT ON COLUMN establishment_quota.approved_count IS '核定数';
COMMENT ON COLUMN establishment_quota.valid_from IS '生效日期';
COMMENT ON COLUMN establishment_quota.valid_to IS '失效日期';
COMMENT ON COLUMN establishment_quota.doc_id IS '核定文件标识';

CREATE TABLE leadership_quota (
    leadership_quota_id BIGINT NOT NULL,
    org_id          BIGINT NOT NULL,
    leader_level    TEXT NOT NULL,
    approved_posts  INTEGER NOT NULL,
    valid_from      DATE NOT NULL,
    valid_to        DATE,
    doc_id          BIGINT,
    PRIMARY KEY (leadership_quota_id)
);
COMMENT ON TABLE leadership_quota IS '领导职数';
COMMENT ON COLUMN leadership_quota.leadership_quota_id IS '职数记录标识';
COMMENT ON COLUMN leadership_quota.org_id IS '机构标识';
COMMENT ON COLUMN leadership_quota.leader_level IS '领导职务层次[代码集 leader_level]';
COMMENT ON COLUMN leadership_quota.approved_posts IS '核定职数';
COMMENT ON COLUMN leadership_quota.valid_from IS '生效日期';
COMMENT ON COLUMN leadership_quota.valid_to IS '失效日期';
COMMENT ON COLUMN leadership_quota.doc_id IS '核定文件标识';

CREATE TABLE person (
    person_id       BIGINT NOT NULL,
    id_hash         TEXT NOT NULL,
    id_masked       TEXT NOT NULL,
    person_name     TEXT NOT NULL,
    gender          TEXT NOT NULL,
    birth_date      DATE NOT NULL,
    education       TEXT,
    death_date      DATE,
    PRIMARY KEY (person_id)
);
COMMENT ON TABLE person IS '人员';
COMMENT ON COLUMN person.person_id IS '人员标识';
COMMENT ON COLUMN person.id_hash IS '公民身份号码摘要(HMAC-SHA256,十六进制)';
COMMENT ON COLUMN person.id_masked IS '公民身份号码(脱敏)';
COMMENT ON COLUMN person.person_name IS '姓名';
COMMENT ON COLUMN person.gender IS '性别[代码集 gender]';
COMMENT ON COLUMN person.birth_date IS '出生日期';
COMMENT ON COLUMN person.education IS '学历[代码集 education]';
COMMENT ON COLUMN person.death_date IS '死亡日期';

CREATE TABLE staff_assignment (
    assignment_id   BIGINT NOT NULL,
    person_id       BIGINT NOT NULL,
    org_id          BIGINT NOT NULL,
    quota_type      TEXT NOT NULL,
    staff_category  TEXT NOT NULL,
    post_name       TEXT,
    leader_level    TEXT,
    civil_rank      TEXT,
    entry_date      DATE NOT NULL,
    exit_date       DATE,
    entry_doc_number TEXT,
    exit_reason     TEXT,
    PRIMARY KEY (assignment_id)
);
COMMENT ON TABLE staff_assignment IS '实名制';
COMMENT ON COLUMN staff_assignment.assignment_id IS '在编记录标识';
COMMENT ON COLUMN staff_assignment.person_id IS '人员标识';
COMMENT ON COLUMN staff_assignment.org_id IS '在编单位标识';
COMMENT ON COLUMN staff_assignment.quota_type IS '占用编制类型[代码集 quota_type]';
COMMENT ON COLUMN staff_assignment.staff_category IS '人员类别[代码集 staff_category]';
COMMENT ON COLUMN staff_assignment.post_name IS '职务名称';
COMMENT ON COLUMN staff_assignment.leader_level IS '领导职务层次(非领导为空)[代码集 leader_level]';
COMMENT ON COLUMN staff_assignment.civil_rank IS '职级[代码集 civil_rank]';
COMMENT ON COLUMN staff_assignment.entry_date IS '入编日期';
COMMENT ON COLUMN staff_assignment.exit_date IS '出编日期';
COMMENT ON COLUMN staff_assignment.entry_doc_number IS '用编通知文号';
COMMENT ON COLUMN staff_assignment.exit_reason IS '出编原因[代码集 exit_reason]';

CREATE TABLE staff_event (
    event_id        BIGINT NOT NULL,
    person_id       BIGINT NOT NULL,
    org_id          BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    event_reason    TEXT,
    event_date      DATE NOT NULL,
    doc_number      TEXT,
    recorded_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id)
);
COMMENT ON TABLE staff_event IS '人员变动';
COMMENT ON COLUMN staff_event.event_id IS '变动记录标识';
COMMENT ON COLUMN staff_event.person_id IS '人员标识';
COMMENT ON COLUMN staff_event.org_id IS '单位标识';
COMMENT ON COLUMN staff_event.event_type IS '变动类型[代码集 person_event]';
COMMENT ON COLUMN staff_event.event_reason IS '变动原因[代码集 exit_reason]';
COMMENT ON COLUMN staff_event.event_date IS '变动日期';
COMMENT ON COLUMN staff_event.doc_number IS '依据文号';
COMMENT ON COLUMN staff_event.recorded_at IS '登记时间';

CREATE TABLE quota_ledger (
    ledger_id       BIGINT NOT NULL,
    org_id          BIGINT NOT NULL,
    quota_type      TEXT NOT NULL,
    movement_type   TEXT NOT NULL,
    delta           INTEGER NOT NULL,
    effective_date  DATE NOT NULL,
    counterpart_org_id BIGINT,
    doc_id          BIGINT,
    doc_number      TEXT,
    recorded_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ledger_id)
);
COMMENT ON TABLE quota_ledger IS '编制台账';
COMMENT ON COLUMN quota_ledger.ledger_id IS '台账记录标识';
COMMENT ON COLUMN quota_ledger.org_id IS '机构标识';
COMMENT ON COLUMN quota_ledger.quota_type IS '编制类型[代码集 quota_type]';
COMMENT ON COLUMN quota_ledger.movement_type IS '变动类型[代码集 ledger_movement]';
COMMENT ON COLUMN quota_ledger.delta IS '变动数(核增为正、核减为负)';
COMMENT ON COLUMN quota_ledger.effective_date IS '生效日期';
COMMENT ON COLUMN quota_ledger.counterpart_org_id IS '对方机构标识(划转、调剂)';
COMMENT ON COLUMN quota_ledger.doc_id IS '依据文件标识';
COMMENT ON COLUMN quota_ledger.doc_number IS '依据文号';
COMMENT ON COLUMN quota_ledger.recorded_at IS '登记时间';

CREATE TABLE document (
    doc_id          BIGINT NOT NULL,
    doc_number      TEXT NOT NULL,
    title           TEXT NOT NULL,
    issuer          TEXT NOT NULL,
    doc_type        TEXT NOT NULL,
    issue_date      DATE NOT NULL,
    full_text       TEXT,
    PRIMARY KEY (doc_id)
);
COMMENT ON TABLE document IS '文件';
COMMENT ON COLUMN document.doc_id IS '文件标识';
COMMENT ON COLUMN document.doc_number IS '文号';
COMMENT ON COLUMN document.title IS '标题';
COMMENT ON COLUMN document.issuer IS '发文机关';
COMMENT ON COLUMN document.doc_type IS '文件类型[代码集 doc_type]';
COMMENT ON COLUMN document.issue_date IS '发文日期';
COMMENT ON COLUMN document.full_text IS '正文';

CREATE TABLE org_duty (
    duty_id         BIGINT NOT NULL,
    org_id          BIGINT NOT NULL,
    version_year    SMALLINT NOT NULL,
    seq             INTEGER NOT NULL,
    duty_text       TEXT NOT NULL,
    doc_id          BIGINT,
    valid_from      DATE NOT NULL,
    valid_to        DATE,
    PRIMARY KEY (duty_id)
);
COMMENT ON TABLE org_duty IS '三定职责';
COMMENT ON COLUMN org_duty.duty_id IS '职责条目标识';
COMMENT ON COLUMN org_duty.org_id IS '机构标识';
COMMENT ON COLUMN org_duty.version_year IS '三定版本年度';
COMMENT ON COLUMN org_duty.seq IS '条目序号';
COMMENT ON COLUMN org_duty.duty_text IS '职责内容';
COMMENT ON COLUMN org_duty.doc_id IS '三定规定文件标识';
COMMENT ON COLUMN org_duty.valid_from IS '生效日期';
COMMENT ON COLUMN org_duty.valid_to IS '失效日期';

CREATE TABLE power_item (
    item_id         BIGINT NOT NULL,
    org_id          BIGINT NOT NULL,
    item_code       TEXT NOT NULL,
    item_type       TEXT NOT NULL,
    item_name       TEXT NOT NULL,
    legal_basis     TEXT,
    responsibility  TEXT,
    exercise_level  TEXT NOT NULL,
    status          TEXT NOT NULL,
    valid_from      DATE NOT NULL,
    valid_to        DATE,
    PRIMARY KEY (item_id)
);
COMMENT ON TABLE power_item IS '权责清单';
COMMENT ON COLUMN power_item.item_id IS '事项标识';
COMMENT ON COLUMN power_item.org_id IS '实施机构标识';
COMMENT ON COLUMN power_item.item_code IS '事项编码';
COMMENT ON COLUMN power_item.item_type IS '事项类型[代码集 power_type]';
COMMENT ON COLUMN power_item.item_name IS '事项名称';
COMMENT ON COLUMN power_item.legal_basis IS '设定依据';
COMMENT ON COLUMN power_item.responsibility IS '责任事项';
COMMENT ON COLUMN power_item.exercise_level IS '行使层级[代码集 tier]';
COMMENT ON COLUMN power_item.status IS '事项状态[代码集 power_status]';
COMMENT ON COLUMN power_item.valid_from IS '生效日期';
COMMENT ON COLUMN power_item.valid_to IS '失效日期';

CREATE TABLE reform (
    reform_id       BIGINT NOT NULL,
    reform_name     TEXT NOT NULL,
    reform_date     DATE NOT NULL,
    doc_id          BIGINT,
    description     TEXT,
    PRIMARY KEY (reform_id)
);
COMMENT ON TABLE reform IS '机构改革';
COMMENT ON COLUMN reform.reform_id IS '改革标识';
COMMENT ON COLUMN reform.reform_name IS '改革名称';
COMMENT ON COLUMN reform.reform_date IS '实施日期';
COMMENT ON COLUMN reform.doc_id IS '改革方案文件标识';
COMMENT ON COLUMN reform.description IS '改革内容';

CREATE TABLE reform_org_change (
    change_id       BIGINT NOT NULL,
    reform_id       BIGINT NOT NULL,
    change_type     TEXT NOT NULL,
    source_org_id   BIGINT,
    target_org_id   BIGINT,
    quota_type      TEXT,
    quota_moved     INTEGER,
    note            TEXT,
    PRIMARY KEY (change_id)
);
COMMENT ON TABLE reform_org_change IS '机构沿革';
COMMENT ON COLUMN reform_org_change.change_id IS '沿革记录标识';
COMMENT ON COLUMN reform_org_change.reform_id IS '改革标识';
COMMENT ON COLUMN reform_org_change.change_type IS '沿革类型[代码集 org_change]';
COMMENT ON COLUMN reform_org_change.source_org_id IS '原机构标识';
COMMENT ON COLUMN reform_org_change.target_org_id IS '新机构标识';
COMMENT ON COLUMN reform_org_change.quota_type IS '划转编制类型[代码集 quota_type]';
COMMENT ON COLUMN reform_org_change.quota_moved IS '划转编制数';
COMMENT ON COLUMN reform_org_change.note IS '说明';

CREATE TABLE external_roster (
    source          TEXT NOT NULL,
    period          DATE NOT NULL,
    id_hash         TEXT NOT NULL,
    person_name     TEXT,
    org_id          BIGINT,
    item            TEXT NOT NULL,
    amount          NUMERIC(12, 2),
    event_date      DATE
);
COMMENT ON TABLE external_roster IS '外部比对数据';
COMMENT ON COLUMN external_roster.source IS '数据来源[代码集 roster_source]';
COMMENT ON COLUMN external_roster.period IS '所属期(月初日期)';
COMMENT ON COLUMN external_roster.id_hash IS '公民身份号码摘要';
COMMENT ON COLUMN external_roster.person_name IS '姓名';
COMMENT ON COLUMN external_roster.org_id IS '发薪或缴费单位标识';
COMMENT ON COLUMN external_roster.item IS '项目[代码集 roster_item]';
COMMENT ON COLUMN external_roster.amount IS '金额(元)';
COMMENT ON COLUMN external_roster.event_date IS '事件日期(死亡、退休)';

CREATE TABLE supervision_case (
    case_id         BIGINT NOT NULL,
    org_id          BIGINT NOT NULL,
    person_id       BIGINT,
    case_source     TEXT NOT NULL,
    issue_type      TEXT NOT NULL,
    found_date      DATE NOT NULL,
    description     TEXT,
    amount          NUMERIC(14, 2),
    case_status     TEXT NOT NULL,
    PRIMARY KEY (case_id)
);
COMMENT ON TABLE supervision_case IS '监督检查';
COMMENT ON COLUMN supervision_case.case_id IS '案件标识';
COMMENT ON COLUMN supervision_case.org_id IS '被检查单位标识';
COMMENT ON COLUMN supervision_case.person_id IS '涉及人员标识';
COMMENT ON COLUMN supervision_case.case_source IS '检查来源[代码集 case_source]';
COMMENT ON COLUMN supervision_case.issue_type IS '问题类型[代码集 issue_type]';
COMMENT ON COLUMN supervision_case.found_date IS '发现日期';
COMMENT ON COLUMN supervision_case.description IS '问题描述';
COMMENT ON COLUMN supervision_case.amount IS '涉及金额(元)';
COMMENT ON COLUMN supervision_case.case_status IS '整改状态[代码集 case_status]';

CREATE TABLE alert (
    alert_key       TEXT NOT NULL,
    rule_code       TEXT NOT NULL,
    rule_name       TEXT NOT NULL,
    org_id          BIGINT,
    person_id       BIGINT,
    period          DATE NOT NULL,
    score           DOUBLE PRECISION,
    alert_level     TEXT NOT NULL,
    detail          TEXT,
    status          TEXT NOT NULL,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    last_seen_at    TIMESTAMPTZ NOT NULL,
    resolved_at     TIMESTAMPTZ,
    PRIMARY KEY (alert_key)
);
COMMENT ON TABLE alert IS '预警';
COMMENT ON COLUMN alert.alert_key IS '预警键(规则、单位、人员、所属期)';
COMMENT ON COLUMN alert.rule_code IS '规则编码';
COMMENT ON COLUMN alert.rule_name IS '规则名称';
COMMENT ON COLUMN alert.org_id IS '单位标识';
COMMENT ON COLUMN alert.person_id IS '人员标识';
COMMENT ON COLUMN alert.period IS '所属期';
COMMENT ON COLUMN alert.score IS '异常分值';
COMMENT ON COLUMN alert.alert_level IS '预警级别[代码集 alert_level]';
COMMENT ON COLUMN alert.detail IS '明细(JSON)';
COMMENT ON COLUMN alert.status IS '处理状态[代码集 alert_status]';
COMMENT ON COLUMN alert.first_seen_at IS '首次发现时间';
COMMENT ON COLUMN alert.last_seen_at IS '最近发现时间';
COMMENT ON COLUMN alert.resolved_at IS '解除时间';

CREATE TABLE dict_code (
    code_set        TEXT NOT NULL,
    code_set_name   TEXT NOT NULL,
    code            TEXT NOT NULL,
    sort_order      INTEGER NOT NULL,
    parent_code     TEXT,
    standard        TEXT,
    description     TEXT,
    PRIMARY KEY (code_set, code)
);
COMMENT ON TABLE dict_code IS '代码表';
COMMENT ON COLUMN dict_code.code_set IS '代码集';
COMMENT ON COLUMN dict_code.code_set_name IS '代码集名称';
COMMENT ON COLUMN dict_code.code IS '代码';
COMMENT ON COLUMN dict_code.sort_order IS '排序号';
COMMENT ON COLUMN dict_code.parent_code IS '上级代码';
COMMENT ON COLUMN dict_code.standard IS '依据标准';
COMMENT ON COLUMN dict_code.description IS '说明';

-- The generator's ground truth: what it planted, kept apart from the public
-- tables so that monitoring rules can be measured against it.
CREATE SCHEMA generator;

CREATE TABLE generator.planted (
    planted_id      BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    rule_code       TEXT,
    org_id          BIGINT,
    person_id       BIGINT,
    id_hash         TEXT,
    period_from     DATE,
    period_to       DATE,
    detail          TEXT,
    PRIMARY KEY (planted_id)
);
COMMENT ON TABLE generator.planted IS '生成器植入的异常(真值)';
COMMENT ON COLUMN generator.planted.planted_id IS '植入标识';
COMMENT ON COLUMN generator.planted.kind IS '异常类型';
COMMENT ON COLUMN generator.planted.rule_code IS '应命中的监测规则编码';
COMMENT ON COLUMN generator.planted.org_id IS '单位标识';
COMMENT ON COLUMN generator.planted.person_id IS '人员标识';
COMMENT ON COLUMN generator.planted.id_hash IS '公民身份号码摘要';
COMMENT ON COLUMN generator.planted.period_from IS '起始所属期';
COMMENT ON COLUMN generator.planted.period_to IS '截止所属期';
COMMENT ON COLUMN generator.planted.detail IS '明细(JSON)';

CREATE TABLE generator.run_info (
    seed            BIGINT NOT NULL,
    scale           DOUBLE PRECISION NOT NULL,
    generator_version TEXT NOT NULL,
    first_period    DATE NOT NULL,
    last_period     DATE NOT NULL
);
COMMENT ON TABLE generator.run_info IS '生成参数';
COMMENT ON COLUMN generator.run_info.seed IS '随机种子';
COMMENT ON COLUMN generator.run_info.scale IS '规模系数';
COMMENT ON COLUMN generator.run_info.generator_version IS '生成器版本';
COMMENT ON COLUMN generator.run_info.first_period IS '首个所属期';
COMMENT ON COLUMN generator.run_info.last_period IS '末个所属期';
