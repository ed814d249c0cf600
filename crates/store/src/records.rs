//! Rows of the store and the queries that read and write them.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::{q, Result, StoreError};
use churnguard_core::health::{Component, ComponentScore};
use churnguard_core::interventions::{Arm, Intervention, Status};
use churnguard_core::models::Reason;

/// A scoring run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// When it ran (seconds since 1970-01-01 UTC).
    pub created_at: i64,
    /// Snapshot scored (YYYY-MM-DD).
    pub snapshot_date: String,
    /// Model version used.
    pub model_id: String,
    /// Its family.
    pub model_family: String,
    /// What was scored (a data directory or file).
    pub source: String,
    /// Customers scored.
    pub customers: usize,
    /// Totals: bands, interventions, CLV cut-offs, revenue churn.
    pub summary: churnguard_core::scoring::RunSummary,
}

/// One customer's score in one run, as stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerScoreRecord {
    /// Run id.
    pub run_id: String,
    /// Customer id.
    pub customer_id: String,
    /// Snapshot (YYYY-MM-DD).
    pub snapshot_date: String,
    /// Company name.
    pub name: Option<String>,
    /// Account manager.
    pub owner: Option<String>,
    /// Segment.
    pub segment: Option<String>,
    /// Calibrated churn probability.
    pub churn_probability: f64,
    /// P(involuntary | churn).
    pub p_involuntary: Option<f64>,
    /// Most likely churn type.
    pub churn_type: Option<String>,
    /// CLV.
    pub clv: f64,
    /// CLV / CAC.
    pub clv_cac: Option<f64>,
    /// Probability × CLV.
    pub expected_loss: f64,
    /// Health index.
    pub health: f64,
    /// Band shown: the computed one, or the band staff set (an override in
    /// force at the run).
    pub band: String,
    /// The band the index gave, when an override replaced it in `band`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_band: Option<String>,
    /// The owner's name, when the run knew it (event data's employees).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Change since the previous run.
    pub health_change: Option<f64>,
    /// `up`, `down`, `flat` or `new`.
    pub trend: String,
    /// Weight profile used.
    pub profile: String,
    /// Component contributions.
    pub components: Vec<ComponentScore>,
    /// Top reasons.
    pub reasons: Vec<Reason>,
    /// What the policy chose: `playbook (action)`.
    pub intervention: Option<String>,
}

/// Filters of the risk list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RiskListFilter {
    /// Only this band.
    pub band: Option<String>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only this segment.
    pub segment: Option<String>,
    /// Customer id, or part of the name (case-insensitive).
    pub search: Option<String>,
    /// Column to sort by (a whitelist; default `expected_loss`).
    pub sort: Option<String>,
    /// Ascending instead of descending.
    pub ascending: bool,
    /// Rows per page.
    pub limit: usize,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// One page of the risk list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskListPage {
    /// The run it comes from.
    pub run_id: String,
    /// Rows, in order.
    pub rows: Vec<CustomerScoreRecord>,
    /// Rows matching the filter in total.
    pub total: usize,
    /// Cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

/// Columns the risk list may be sorted by.
pub const SORTABLE: &[&str] = &[
    "expected_loss",
    "churn_probability",
    "health",
    "health_change",
    "clv",
    "customer_id",
    "name",
    "owner",
    "band",
    "segment",
];

/// Filters of the intervention list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterventionFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only this customer.
    pub customer_id: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// An intervention with what was recorded about it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredIntervention {
    /// The intervention.
    pub intervention: Intervention,
    /// What staff reported (`retained`, `churned`, `unreachable`, `declined`).
    pub outcome: Option<String>,
    /// What churn data showed after it: `churned` or `retained` (once settled).
    pub observed: Option<String>,
}

/// What staff report about an intervention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffOutcome {
    /// The customer stays.
    Retained,
    /// The customer leaves anyway.
    Churned,
    /// Could not reach the customer.
    Unreachable,
    /// The customer declined the offer.
    Declined,
}

impl StaffOutcome {
    /// The outcome's name.
    pub fn name(self) -> &'static str {
        match self {
            StaffOutcome::Retained => "retained",
            StaffOutcome::Churned => "churned",
            StaffOutcome::Unreachable => "unreachable",
            StaffOutcome::Declined => "declined",
        }
    }
}

/// An outcome to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeInput {
    /// What happened.
    pub outcome: StaffOutcome,
    /// A free-text note.
    pub note: Option<String>,
}

pub(super) const INTERVENTION_COLUMNS: &str = "id, customer_id, playbook, rule, channel, owner_role, owner, priority, arm, status, created_run, created_at, due_at, last_seen_at, closed_at, churn_probability, clv, expected_value, effect, cost";

fn corrupt(table: &'static str) -> impl Fn(String) -> StoreError {
    move |message| StoreError::Corrupt { table, message }
}

pub(super) fn intervention_from_row(r: &AnyRow) -> Result<Intervention> {
    let get = q("reading an intervention");
    let arm: String = r.try_get("arm").map_err(get)?;
    let status: String = r.try_get("status").map_err(q("reading an intervention"))?;
    let g = |name: &str| -> Result<i64> { r.try_get(name).map_err(q("reading an intervention")) };
    let s =
        |name: &str| -> Result<String> { r.try_get(name).map_err(q("reading an intervention")) };
    let f = |name: &str| -> Result<f64> { r.try_get(name).map_err(q("reading an intervention")) };
    Ok(Intervention {
        id: g("id")?,
        customer_id: s("customer_id")?,
        playbook: s("playbook")?,
        rule: s("rule")?,
        channel: s("channel")?,
        owner_role: s("owner_role")?,
        owner: s("owner")?,
        priority: u32::try_from(g("priority")?).unwrap_or(u32::MAX),
        arm: match arm.as_str() {
            "treated" => Arm::Treated,
            "control" => Arm::Control,
            other => return Err(corrupt("interventions")(format!("unknown arm {other:?}"))),
        },
        status: status.parse().map_err(corrupt("interventions"))?,
        created_run: s("created_run")?,
        created_at: g("created_at")?,
        due_at: g("due_at")?,
        last_seen_at: g("last_seen_at")?,
        closed_at: r
            .try_get("closed_at")
            .map_err(q("reading an intervention"))?,
        churn_probability: f("churn_probability")?,
        clv: f("clv")?,
        expected_value: f("expected_value")?,
        effect: f("effect")?,
        cost: f("cost")?,
    })
}

pub(super) fn stored_from_row(r: &AnyRow) -> Result<StoredIntervention> {
    Ok(StoredIntervention {
        intervention: intervention_from_row(r)?,
        outcome: r.try_get("outcome").map_err(q("reading an intervention"))?,
        observed: r
            .try_get("observed")
            .map_err(q("reading an intervention"))?,
    })
}

pub(super) fn run_from_row(r: &AnyRow) -> Result<RunRecord> {
    let e = || q("reading a run");
    let summary: String = r.try_get("summary").map_err(e())?;
    Ok(RunRecord {
        run_id: r.try_get("run_id").map_err(e())?,
        created_at: r.try_get("created_at").map_err(e())?,
        snapshot_date: r.try_get("snapshot_date").map_err(e())?,
        model_id: r.try_get("model_id").map_err(e())?,
        model_family: r.try_get("model_family").map_err(e())?,
        source: r.try_get("source").map_err(e())?,
        customers: usize::try_from(r.try_get::<i64, _>("customers").map_err(e())?).unwrap_or(0),
        summary: serde_json::from_str(&summary)
            .map_err(|err| corrupt("scoring_runs")(err.to_string()))?,
    })
}

pub(crate) const SCORE_COLUMNS: &str = "run_id, customer_id, snapshot_date, name, owner, segment, churn_probability, p_involuntary, churn_type, clv, clv_cac, expected_loss, health, band, health_change, trend, profile, components, reasons, intervention, computed_band, owner_name";

/// How a score row keeps its health components and reasons: compact JSON
/// arrays, positional, instead of the objects the API answers with.
/// Components are `[score, weight, contribution]` in [`Component::ALL`]
/// order, reasons `[feature, value, weight]`. Numbers are kept to
/// [`STORED_DIGITS`] significant digits (the run's Parquet keeps them
/// whole). Why: these two columns were 60% of a row (about 720 of 1,200
/// bytes), and a 1M-customer run's time in the store grows with the bytes
/// it writes (each goes to the WAL and again into the database); printed
/// whole, a weight of 0.15 came out as `0.15000000000000002`, and half of
/// the columns' bytes were digits no reader shows. Rows written in the
/// object form or at full precision before read back too.
pub(crate) fn components_text(components: &[ComponentScore]) -> String {
    let positional = components.len() == Component::ALL.len()
        && components
            .iter()
            .zip(Component::ALL)
            .all(|(c, want)| c.component == want);
    if positional {
        let rows: Vec<(Option<f64>, f64, f64)> = components
            .iter()
            .map(|c| {
                (
                    c.score.map(stored_number),
                    stored_number(c.weight),
                    stored_number(c.contribution),
                )
            })
            .collect();
        serde_json::to_string(&rows).expect("components serialise")
    } else {
        serde_json::to_string(components).expect("components serialise")
    }
}

/// See [`components_text`].
pub(crate) fn reasons_text(reasons: &[Reason]) -> String {
    let rows: Vec<(&str, &str, f64)> = reasons
        .iter()
        .map(|r| {
            (
                r.feature.as_str(),
                r.value.as_str(),
                stored_number(r.weight),
            )
        })
        .collect();
    serde_json::to_string(&rows).expect("reasons serialise")
}

/// Significant digits a stored component or reason weight keeps: the web
/// app and the API show at most four, and a health score of 100 built
/// from five rounded contributions is off by less than 1e-3.
pub(crate) const STORED_DIGITS: i32 = 6;

/// `x` rounded to [`STORED_DIGITS`] significant digits, as the nearest
/// double to that decimal, so its shortest form prints those digits only.
/// Scaling by an exact power of ten and rounding once is correctly rounded
/// for every power up to 1e22; values outside that (and non-finite ones)
/// are kept as they are. About 10 ns, against ~150 ns through a string.
pub(crate) fn stored_number(x: f64) -> f64 {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    // Digits to keep after the decimal point: 6 for 1.x, 4 for 81.x.
    let after = STORED_DIGITS - 1 - x.abs().log10().floor() as i32;
    match after {
        0 => x.round(),
        1..=22 => {
            let p = POW10[after as usize];
            let scaled = (x * p).round();
            // Large scaled values are already exact in f64; dividing them
            // back gives the nearest double to the decimal.
            scaled / p
        }
        -22..=-1 => {
            let p = POW10[(-after) as usize];
            (x / p).round() * p
        }
        _ => x,
    }
}

/// Either stored form of a row's components.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredComponents {
    Positional(Vec<(Option<f64>, f64, f64)>),
    Objects(Vec<ComponentScore>),
}

/// Either stored form of a row's reasons.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredReasons {
    Positional(Vec<(String, String, f64)>),
    Objects(Vec<Reason>),
}

pub(crate) fn parse_components(text: &str) -> std::result::Result<Vec<ComponentScore>, String> {
    match serde_json::from_str(text).map_err(|e| format!("components: {e}"))? {
        StoredComponents::Objects(c) => Ok(c),
        StoredComponents::Positional(rows) if rows.is_empty() => Ok(Vec::new()),
        StoredComponents::Positional(rows) if rows.len() == Component::ALL.len() => Ok(rows
            .into_iter()
            .zip(Component::ALL)
            .map(
                |((score, weight, contribution), component)| ComponentScore {
                    component,
                    score,
                    weight,
                    contribution,
                },
            )
            .collect()),
        StoredComponents::Positional(rows) => Err(format!(
            "components: {} entries, expected {}",
            rows.len(),
            Component::ALL.len()
        )),
    }
}

pub(crate) fn parse_reasons(text: &str) -> std::result::Result<Vec<Reason>, String> {
    Ok(
        match serde_json::from_str(text).map_err(|e| format!("reasons: {e}"))? {
            StoredReasons::Objects(r) => r,
            StoredReasons::Positional(rows) => rows
                .into_iter()
                .map(|(feature, value, weight)| Reason {
                    feature,
                    value,
                    weight,
                })
                .collect(),
        },
    )
}

fn score_from_row(r: &AnyRow) -> Result<CustomerScoreRecord> {
    let e = || q("reading a score");
    let components: String = r.try_get("components").map_err(e())?;
    let reasons: String = r.try_get("reasons").map_err(e())?;
    Ok(CustomerScoreRecord {
        run_id: r.try_get("run_id").map_err(e())?,
        customer_id: r.try_get("customer_id").map_err(e())?,
        snapshot_date: r.try_get("snapshot_date").map_err(e())?,
        name: r.try_get("name").map_err(e())?,
        owner: r.try_get("owner").map_err(e())?,
        segment: r.try_get("segment").map_err(e())?,
        churn_probability: r.try_get("churn_probability").map_err(e())?,
        p_involuntary: r.try_get("p_involuntary").map_err(e())?,
        churn_type: r.try_get("churn_type").map_err(e())?,
        clv: r.try_get("clv").map_err(e())?,
        clv_cac: r.try_get("clv_cac").map_err(e())?,
        expected_loss: r.try_get("expected_loss").map_err(e())?,
        health: r.try_get("health").map_err(e())?,
        band: r.try_get("band").map_err(e())?,
        health_change: r.try_get("health_change").map_err(e())?,
        trend: r.try_get("trend").map_err(e())?,
        profile: r.try_get("profile").map_err(e())?,
        components: parse_components(&components).map_err(corrupt("customer_scores"))?,
        reasons: parse_reasons(&reasons).map_err(corrupt("customer_scores"))?,
        intervention: r.try_get("intervention").map_err(e())?,
        computed_band: r.try_get("computed_band").map_err(e())?,
        owner_name: r.try_get("owner_name").map_err(e())?,
    })
}

pub(super) async fn list_interventions(
    pool: &AnyPool,
    f: &InterventionFilter,
) -> Result<Vec<StoredIntervention>> {
    let mut sql =
        format!("SELECT {INTERVENTION_COLUMNS}, outcome, observed FROM interventions WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.status.is_some() {
        sql += &format!(" AND status = {}", next());
    }
    if f.owner.is_some() {
        sql += &format!(" AND owner = {}", next());
    }
    if f.customer_id.is_some() {
        sql += &format!(" AND customer_id = {}", next());
    }
    sql += &format!(
        " ORDER BY priority ASC, due_at ASC, id ASC LIMIT {}",
        f.limit.clamp(1, 100_000)
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some(s) = f.status {
        query = query.bind(s.name());
    }
    if let Some(o) = &f.owner {
        query = query.bind(o.clone());
    }
    if let Some(c) = &f.customer_id {
        query = query.bind(c.clone());
    }
    let rows = query
        .fetch_all(pool)
        .await
        .map_err(q("listing interventions"))?;
    rows.iter().map(stored_from_row).collect()
}

pub(super) async fn customer_history(
    pool: &AnyPool,
    customer_id: &str,
) -> Result<Vec<CustomerScoreRecord>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        // One primary-key probe per run: `CROSS JOIN` makes SQLite loop
        // over the runs (there is no index by customer, migration 9);
        // PostgreSQL plans the same nested loop on its own.
        "SELECT s.{} FROM scoring_runs r CROSS JOIN customer_scores s
         WHERE s.run_id = r.run_id AND s.customer_id = $1
         ORDER BY s.snapshot_date DESC, r.created_at DESC",
        SCORE_COLUMNS.replace(", ", ", s.")
    )))
    .bind(customer_id)
    .fetch_all(pool)
    .await
    .map_err(q("reading a customer's history"))?;
    rows.iter().map(score_from_row).collect()
}

/// The scores of `ids` in one run, by customer id (ids without a score
/// there are absent). Asked in chunks, so a long list stays one statement
/// each under every database's parameter limit.
pub(super) async fn scores_in_run(
    pool: &AnyPool,
    run_id: &str,
    ids: &[String],
) -> Result<std::collections::HashMap<String, CustomerScoreRecord>> {
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {SCORE_COLUMNS} FROM customer_scores WHERE run_id = $1 AND customer_id IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(run_id);
        for id in chunk {
            query = query.bind(id);
        }
        let rows = query
            .fetch_all(pool)
            .await
            .map_err(q("reading scores of a run"))?;
        for row in &rows {
            let record = score_from_row(row)?;
            out.insert(record.customer_id.clone(), record);
        }
    }
    Ok(out)
}

fn encode_cursor(key: &str, id: &str) -> String {
    hex::encode(format!("{key}\u{1f}{id}"))
}

fn decode_cursor(cursor: &str) -> Option<(String, String)> {
    let bytes = hex::decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (k, id) = text.split_once('\u{1f}')?;
    Some((k.to_string(), id.to_string()))
}

/// A cursor that does not parse.
pub fn bad_cursor(cursor: &str) -> bool {
    decode_cursor(cursor).is_none()
}

pub(super) async fn risk_list(
    pool: &AnyPool,
    run_id: &str,
    f: &RiskListFilter,
) -> Result<RiskListPage> {
    let sort = f.sort.as_deref().unwrap_or("expected_loss");
    let sort = SORTABLE
        .iter()
        .find(|s| **s == sort)
        .copied()
        .unwrap_or("expected_loss");
    let numeric = matches!(
        sort,
        "expected_loss" | "churn_probability" | "health" | "health_change" | "clv"
    );
    let (dir, cmp) = if f.ascending {
        ("ASC", ">")
    } else {
        ("DESC", "<")
    };
    let mut where_ = String::from("run_id = $1");
    let mut n = 1;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.band.is_some() {
        where_ += &format!(" AND band = {}", next());
    }
    if f.owner.is_some() {
        where_ += &format!(" AND owner = {}", next());
    }
    if f.segment.is_some() {
        where_ += &format!(" AND segment = {}", next());
    }
    if f.search.is_some() {
        let a = next();
        let b = next();
        where_ += &format!(" AND (customer_id = {a} OR LOWER(COALESCE(name, '')) LIKE {b})");
    }
    let count_sql = format!("SELECT COUNT(*) FROM customer_scores WHERE {where_}");
    // Keyset pagination on (sort key, customer id); NULL keys sort as the
    // lowest value through COALESCE, so every row has a place. Columns that
    // are never NULL are sorted bare: the default order (expected loss,
    // largest first) then walks the risk index instead of sorting the
    // whole run for every page (a full sort of a 1M-customer run per page
    // through the expression).
    let never_null = matches!(
        sort,
        "expected_loss" | "churn_probability" | "health" | "clv" | "customer_id" | "band"
    );
    let key = if never_null {
        sort.to_string()
    } else if numeric {
        format!("COALESCE({sort}, -1e300)")
    } else {
        format!("COALESCE({sort}, '')")
    };
    let cursor = f.cursor.as_deref().and_then(decode_cursor);
    let mut page_where = where_.clone();
    let (ka, kb) = (next(), next());
    if cursor.is_some() {
        page_where += &format!(" AND ({key} {cmp} {ka} OR ({key} = {ka} AND customer_id > {kb}))");
    }
    let limit = f.limit.clamp(1, 10_000);
    let page_sql = format!(
        "SELECT {SCORE_COLUMNS}, {key} AS sort_key FROM customer_scores WHERE {page_where}
         ORDER BY {key} {dir}, customer_id ASC LIMIT {}",
        limit + 1
    );
    macro_rules! bind_filters {
        ($query:expr) => {{
            let mut query = $query.bind(run_id.to_string());
            if let Some(b) = &f.band {
                query = query.bind(b.clone());
            }
            if let Some(o) = &f.owner {
                query = query.bind(o.clone());
            }
            if let Some(s) = &f.segment {
                query = query.bind(s.clone());
            }
            if let Some(s) = &f.search {
                query = query
                    .bind(s.clone())
                    .bind(format!("%{}%", s.to_lowercase()));
            }
            query
        }};
    }
    let total: i64 = bind_filters!(sqlx::query_scalar(AssertSqlSafe(count_sql)))
        .fetch_one(pool)
        .await
        .map_err(q("counting the risk list"))?;
    let mut query = bind_filters!(sqlx::query(AssertSqlSafe(page_sql)));
    if let Some((k, id)) = &cursor {
        if numeric {
            query = query.bind(k.parse::<f64>().unwrap_or(0.0)).bind(id.clone());
        } else {
            query = query.bind(k.clone()).bind(id.clone());
        }
    }
    let rows = query
        .fetch_all(pool)
        .await
        .map_err(q("reading the risk list"))?;
    let more = rows.len() > limit;
    let mut out = Vec::with_capacity(limit);
    let mut last_key = String::new();
    for r in rows.iter().take(limit) {
        let rec = score_from_row(r)?;
        last_key = if numeric {
            let v: f64 = r.try_get("sort_key").map_err(q("reading the risk list"))?;
            format!("{v:?}")
        } else {
            r.try_get("sort_key").map_err(q("reading the risk list"))?
        };
        out.push(rec);
    }
    let next_cursor = (more && !out.is_empty())
        .then(|| encode_cursor(&last_key, &out[out.len() - 1].customer_id));
    Ok(RiskListPage {
        run_id: run_id.to_string(),
        rows: out,
        total: usize::try_from(total).unwrap_or(0),
        next_cursor,
    })
}

pub(super) async fn scorecards(
    pool: &AnyPool,
    run_id: &str,
    role: &str,
    stage: &str,
) -> Result<Vec<serde_json::Value>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT card FROM kpi_snapshots WHERE run_id = $1 AND role = $2 AND stage = $3 ORDER BY rank",
    )
    .bind(run_id)
    .bind(role)
    .bind(stage)
    .fetch_all(pool)
    .await
    .map_err(q("reading scorecards"))?;
    rows.iter()
        .map(|c| serde_json::from_str(c).map_err(|e| corrupt("kpi_snapshots")(e.to_string())))
        .collect()
}

pub(super) async fn kpi_weights(
    pool: &AnyPool,
    run_id: &str,
    role: &str,
    stage: &str,
) -> Result<Vec<serde_json::Value>> {
    let row: Option<String> = sqlx::query_scalar(
        "SELECT weights FROM kpi_weights WHERE run_id = $1 AND role = $2 AND stage = $3",
    )
    .bind(run_id)
    .bind(role)
    .bind(stage)
    .fetch_optional(pool)
    .await
    .map_err(q("reading KPI weights"))?;
    match row {
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| corrupt("kpi_weights")(e.to_string()))
        }
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components() -> Vec<ComponentScore> {
        Component::ALL
            .iter()
            .enumerate()
            .map(|(i, &component)| ComponentScore {
                component,
                // One missing component, and numbers whose shortest form is long.
                score: (i != 2).then_some(100.0 / 3.0 + i as f64),
                weight: 0.1 + 0.2,
                contribution: (100.0 / 3.0 + i as f64) * 0.3,
            })
            .collect()
    }

    fn reasons() -> Vec<Reason> {
        vec![
            Reason {
                feature: "days_since_last_login".into(),
                value: "41".into(),
                weight: 0.812_345_678_901_234_5,
            },
            Reason {
                feature: "plan".into(),
                value: "say \"hi\"".into(),
                weight: 1e-300,
            },
        ]
    }

    #[test]
    fn stored_components_and_reasons_read_back_rounded_and_smaller() {
        let (c, r) = (components(), reasons());
        let (c_text, r_text) = (components_text(&c), reasons_text(&r));
        let rounded: Vec<ComponentScore> = c
            .iter()
            .map(|x| ComponentScore {
                score: x.score.map(stored_number),
                weight: stored_number(x.weight),
                contribution: stored_number(x.contribution),
                ..x.clone()
            })
            .collect();
        assert_eq!(parse_components(&c_text).unwrap(), rounded);
        let back = parse_reasons(&r_text).unwrap();
        assert_eq!(back[0].weight, 0.812_346);
        assert_eq!(back[1].weight, 1e-300, "beyond the table, kept whole");
        assert_eq!(
            (&back[1].feature, &back[1].value),
            (&r[1].feature, &r[1].value)
        );
        let objects = serde_json::to_string(&c).unwrap().len();
        assert!(
            c_text.len() * 10 < objects * 5,
            "{} bytes stored against {objects} as objects",
            c_text.len()
        );
        assert!(c_text.starts_with("[[33.3333,0.3,10.0]"), "{c_text}");
    }

    #[test]
    fn stored_numbers_keep_six_significant_digits_and_print_only_those() {
        for (x, printed) in [
            (0.150_000_000_000_000_02, "0.15"),
            (81.933_269_288_403_03, "81.9333"),
            (-0.215_639_514_341_752_9, "-0.21564"),
            (1_066_171.23, "1066170.0"),
            (123_456_789_012.0, "123457000000.0"),
            (0.000_123_456_789, "0.000123457"),
            (100.0, "100.0"),
            (0.0, "0.0"),
        ] {
            assert_eq!(
                serde_json::to_string(&stored_number(x)).unwrap(),
                printed,
                "{x}"
            );
        }
        assert!(stored_number(f64::NAN).is_nan());
        assert_eq!(stored_number(f64::INFINITY), f64::INFINITY);
        // Relative error within half a unit of the sixth digit, everywhere
        // in the range the table covers.
        let mut x = 1.234_567_890_123e-15;
        while x < 1e20 {
            for v in [x, -x, x * 9.876_543_21] {
                let err = (stored_number(v) - v).abs() / v.abs();
                assert!(err <= 5.000_001e-6, "{v}: {err}");
            }
            x *= 3.1;
        }
    }

    #[test]
    fn rows_written_in_the_object_form_still_read() {
        let (c, r) = (components(), reasons());
        let old_c = serde_json::to_string(&c).unwrap();
        let old_r = serde_json::to_string(&r).unwrap();
        assert_eq!(parse_components(&old_c).unwrap(), c);
        assert_eq!(parse_reasons(&old_r).unwrap(), r);
        assert_eq!(parse_components("[]").unwrap(), vec![]);
        assert_eq!(parse_reasons("[]").unwrap(), vec![]);
    }

    #[test]
    fn components_out_of_order_keep_the_object_form() {
        let mut c = components();
        c.swap(0, 1);
        let text = components_text(&c);
        assert!(text.starts_with("[{"), "{text}");
        assert_eq!(parse_components(&text).unwrap(), c);
    }

    #[test]
    fn a_truncated_positional_row_is_corrupt_not_a_panic() {
        let err = parse_components("[[1.0,0.5,0.5]]").unwrap_err();
        assert!(err.contains("1 entries, expected 5"), "{err}");
        assert!(parse_reasons("[[\"plan\", 3]]").is_err());
    }
}
