//! `POST /v1/score`: typed parsing of score records straight into the
//! model's input layout (no intermediate `serde_json::Value`), scoring, and
//! the response. Parsing errors carry a machine-readable code and the
//! field's path.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::state::{ContextField, LoadedModel, RecordSchema, Slot};
use churnguard_core::interventions::InterventionPolicy;
use churnguard_core::models::Batch;
use churnguard_core::scoring::{CustomerContext, ScoredCustomer};

/// Parsed records, in the model's layout.
#[derive(Debug, Default)]
pub struct Records {
    /// Customer ids.
    pub ids: Vec<String>,
    /// Numeric inputs, row-major (NaN where null).
    pub numeric: Vec<f64>,
    /// Categorical inputs, one vector per input.
    pub categorical: Vec<Vec<Option<String>>>,
    /// Context per record.
    pub contexts: Vec<CustomerContext>,
    /// Per record, the fields that are neither inputs nor context (skipped).
    pub ignored: Vec<Vec<String>>,
    /// Whether the body was a single record (the response is then one result).
    pub single: bool,
}

impl Records {
    /// The model batch.
    pub fn into_batch(
        self,
        schema: &RecordSchema,
    ) -> (Batch, Vec<CustomerContext>, Vec<Vec<String>>) {
        let n = self.ids.len();
        let p = schema.numeric.len();
        let numeric = ndarray::Array2::from_shape_vec((n, p), self.numeric)
            .expect("one value per row and numeric input");
        (
            Batch {
                ids: self.ids,
                numeric_names: schema.numeric.clone(),
                numeric,
                categorical_names: schema.categorical.clone(),
                categorical: self.categorical,
            },
            self.contexts,
            self.ignored,
        )
    }
}

struct Parse<'a> {
    schema: &'a RecordSchema,
    out: RefCell<Records>,
    error: RefCell<Option<ApiError>>,
    limit: usize,
}

impl Parse<'_> {
    fn fail<E: de::Error>(&self, e: ApiError) -> E {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
        E::custom("invalid record")
    }

    fn field_path(&self, row: Option<usize>, field: &str) -> String {
        match row {
            Some(i) => format!("customers[{i}].{field}"),
            None => field.to_string(),
        }
    }
}

/// Parses a score request body: `{"customers": [record, …]}` or one record.
/// Fields that are neither inputs nor context are skipped and listed per
/// record (every input is required, so a misspelt input name still fails as
/// a missing feature).
pub fn parse(body: &[u8], schema: &RecordSchema, limit: usize) -> Result<Records, ApiError> {
    let p = Parse {
        schema,
        out: RefCell::new(Records {
            categorical: vec![Vec::new(); schema.categorical.len()],
            ..Default::default()
        }),
        error: RefCell::new(None),
        limit,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let res = Top(&p).deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = p.error.into_inner() {
        // An oversized batch is refused for its size, whatever its first
        // records hold: records are validated as they stream past, so the
        // size is counted (without keeping anything) only on this path.
        if !matches!(e, ApiError::BatchTooLarge { .. }) {
            if let Some(got) = batch_len(body).filter(|&n| n > limit) {
                return Err(ApiError::BatchTooLarge { got, limit });
            }
        }
        return Err(e);
    }
    res.map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let out = p.out.into_inner();
    if out.ids.is_empty() {
        return Err(ApiError::BadField {
            code: "empty_batch",
            field: "customers".into(),
            message: "no customers to score".into(),
        });
    }
    Ok(out)
}

/// The number of records in a body's `customers` array (`None` when the
/// body is not such a batch), keeping none of them.
fn batch_len(body: &[u8]) -> Option<usize> {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while seq.next_element::<de::IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    impl<'de> DeserializeSeed<'de> for Count {
        type Value = usize;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
            d.deserialize_seq(self)
        }
    }
    struct Customers;
    impl<'de> Visitor<'de> for Customers {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<usize>, A::Error> {
            let mut found = None;
            while let Some(k) = map.next_key::<String>()? {
                if k == "customers" {
                    found = Some(map.next_value_seed(Count)?);
                } else {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    de::Deserializer::deserialize_map(&mut de, Customers)
        .ok()
        .flatten()
}

/// A field name, borrowed from the body when it has no escapes (most do):
/// a record's keys are looked up, not kept, so they need no allocation.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl std::ops::Deref for Key<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v))
    }
}

struct Top<'a, 'b>(&'a Parse<'b>);

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an object: {"customers": [records]} or one record"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let first: Option<String> = map.next_key()?;
        let Some(first) = first else {
            return Ok(());
        };
        if first == "customers" {
            map.next_value_seed(Batch_(self.0))?;
            if let Some(k) = map.next_key::<String>()? {
                return Err(self.0.fail(ApiError::BadField {
                    code: "unknown_field",
                    field: k.clone(),
                    message: format!("unexpected field {k:?} beside \"customers\""),
                }));
            }
            return Ok(());
        }
        self.0.out.borrow_mut().single = true;
        RecordVisitor {
            p: self.0,
            row: None,
        }
        .fields(Some(first), map)
    }
}

#[allow(non_camel_case_types)]
struct Batch_<'a, 'b>(&'a Parse<'b>);

impl<'de> DeserializeSeed<'de> for Batch_<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Batch_<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of customer records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut row = 0;
        loop {
            if row >= self.0.limit {
                // Count the rest without keeping it, to report the size.
                let mut got = row;
                while seq.next_element::<de::IgnoredAny>()?.is_some() {
                    got += 1;
                }
                if got > self.0.limit {
                    return Err(self.0.fail(ApiError::BatchTooLarge {
                        got,
                        limit: self.0.limit,
                    }));
                }
                return Ok(());
            }
            let v = RecordVisitor {
                p: self.0,
                row: Some(row),
            };
            if seq.next_element_seed(v)?.is_none() {
                return Ok(());
            }
            row += 1;
        }
    }
}

struct RecordVisitor<'a, 'b> {
    p: &'a Parse<'b>,
    row: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for RecordVisitor<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer record (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.fields(None, map)
    }
}

/// A scalar as the parser sees it.
enum Scalar {
    Null,
    Number(f64),
    Integer(i128),
    Text(String),
    Bool,
    Other(&'static str),
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a string or null")
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Integer(i128::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Integer(i128::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Scalar::Other("an object"))
    }
}

impl Scalar {
    fn describe(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Number(_) | Scalar::Integer(_) => "a number",
            Scalar::Text(_) => "a string",
            Scalar::Bool => "a boolean",
            Scalar::Other(what) => what,
        }
    }
}

impl RecordVisitor<'_, '_> {
    fn fields<'de, A: MapAccess<'de>>(
        self,
        first: Option<String>,
        mut map: A,
    ) -> Result<(), A::Error> {
        let p = self.p;
        let schema = p.schema;
        let n_num = schema.numeric.len();
        let n_cat = schema.categorical.len();
        let mut numeric = vec![f64::NAN; n_num];
        let mut categorical: Vec<Option<String>> = vec![None; n_cat];
        let mut seen_num = vec![false; n_num];
        let mut seen_cat = vec![false; n_cat];
        let mut id: Option<String> = None;
        let mut ctx = CustomerContext::default();
        let mut ignored: Vec<String> = Vec::new();
        let mut key = first.map(Key::Owned);
        loop {
            let k = match key.take() {
                Some(k) => k,
                None => match map.next_key_seed(KeySeed)? {
                    Some(k) => k,
                    None => break,
                },
            };
            let k: &str = &k;
            let path = || p.field_path(self.row, k);
            let Some(slot) = schema.index.get(k).copied() else {
                map.next_value::<de::IgnoredAny>()?;
                ignored.push(k.to_string());
                continue;
            };
            let v = map.next_value_seed(ScalarSeed)?;
            let wrong = |want: &str, v: &Scalar| ApiError::BadField {
                code: "wrong_type",
                field: path(),
                message: format!("{}: expected {want}, found {}", path(), v.describe()),
            };
            let number = |v: &Scalar| -> Result<Option<f64>, ApiError> {
                match v {
                    Scalar::Null => Ok(None),
                    Scalar::Number(x) if x.is_finite() => Ok(Some(*x)),
                    Scalar::Number(_) => Err(ApiError::BadField {
                        code: "not_finite",
                        field: path(),
                        message: format!("{}: must be a finite number", path()),
                    }),
                    Scalar::Integer(i) => Ok(Some(*i as f64)),
                    other => Err(wrong("a number or null", other)),
                }
            };
            let text = |v: Scalar| -> Result<Option<String>, ApiError> {
                match v {
                    Scalar::Null => Ok(None),
                    Scalar::Text(s) => Ok(Some(s)),
                    other => Err(wrong("a string or null", &other)),
                }
            };
            // Ids may be numbers: customer ids often are (beyond 64 bits
            // they arrive as whole floats).
            let id_text = |v: Scalar| -> Result<Option<String>, ApiError> {
                match v {
                    Scalar::Integer(i) => Ok(Some(i.to_string())),
                    Scalar::Number(x) if x.is_finite() && x.fract() == 0.0 => {
                        Ok(Some(format!("{x:.0}")))
                    }
                    other => text(other),
                }
            };
            match slot {
                Slot::Id => {
                    let t = id_text(v).map_err(|e| p.fail(e))?;
                    id = Some(t.ok_or_else(|| {
                        p.fail(ApiError::BadField {
                            code: "missing_id",
                            field: path(),
                            message: format!("{}: the id must not be null", path()),
                        })
                    })?);
                }
                Slot::Numeric(j) => {
                    let x = number(&v).map_err(|e| p.fail(e))?;
                    numeric[j] = x.unwrap_or(f64::NAN);
                    seen_num[j] = true;
                    if schema.mrr_input == Some(j) {
                        ctx.mrr = x;
                    }
                }
                Slot::Categorical(j) => {
                    let t = text(v).map_err(|e| p.fail(e))?;
                    if schema.segment_input == Some(j) {
                        ctx.segment.clone_from(&t);
                    }
                    categorical[j] = t;
                    seen_cat[j] = true;
                }
                Slot::Context(f) => match f {
                    ContextField::Name => ctx.name = text(v).map_err(|e| p.fail(e))?,
                    ContextField::AccountManager => {
                        ctx.account_manager = id_text(v).map_err(|e| p.fail(e))?
                    }
                    ContextField::AcquisitionRep => {
                        ctx.acquisition_rep = id_text(v).map_err(|e| p.fail(e))?
                    }
                    ContextField::Segment => ctx.segment = text(v).map_err(|e| p.fail(e))?,
                    ContextField::Mrr => ctx.mrr = number(&v).map_err(|e| p.fail(e))?,
                    ContextField::Cac => ctx.cac = number(&v).map_err(|e| p.fail(e))?,
                },
            }
        }
        let Some(id) = id else {
            return Err(p.fail(ApiError::BadField {
                code: "missing_id",
                field: p.field_path(self.row, &schema.id),
                message: format!("{} is required", p.field_path(self.row, &schema.id)),
            }));
        };
        if let Some(j) = seen_num.iter().position(|s| !s) {
            let f = p.field_path(self.row, &schema.numeric[j]);
            return Err(p.fail(ApiError::BadField {
                code: "missing_feature",
                message: format!("{f} is required (send null when unknown)"),
                field: f,
            }));
        }
        if let Some(j) = seen_cat.iter().position(|s| !s) {
            let f = p.field_path(self.row, &schema.categorical[j]);
            return Err(p.fail(ApiError::BadField {
                code: "missing_feature",
                message: format!("{f} is required (send null when unknown)"),
                field: f,
            }));
        }
        let mut out = p.out.borrow_mut();
        out.ids.push(id);
        out.numeric.extend_from_slice(&numeric);
        for (col, v) in out.categorical.iter_mut().zip(categorical) {
            col.push(v);
        }
        out.contexts.push(ctx);
        out.ignored.push(ignored);
        Ok(())
    }
}

/// The playbook the policy recommends.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecommendedIntervention {
    /// Playbook.
    pub playbook: String,
    /// The rule that chose it.
    pub rule: String,
    /// Channel.
    pub channel: String,
    /// Owner role.
    pub owner_role: String,
    /// The customer's account manager when the role is personal.
    pub owner: Option<String>,
    /// SLA in hours.
    pub sla_hours: f64,
    /// Priority (1 most urgent).
    pub priority: u32,
}

/// One component of the health index.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ComponentDto {
    /// `churn_risk`, `engagement`, `satisfaction`, `payment` or `support`.
    pub component: &'static str,
    /// 0–100, or null when its data is missing.
    pub score: Option<f64>,
    /// Normalised weight in this customer's index.
    pub weight: f64,
    /// Points it adds to the index.
    pub contribution: f64,
}

/// The health index of one customer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HealthDto {
    /// 0–100.
    pub score: f64,
    /// `green`, `yellow` or `red`.
    pub band: &'static str,
    /// Weight profile used.
    pub profile: String,
    /// Change since the latest scoring run (null for customers it did not score).
    pub change: Option<f64>,
    /// `up`, `down`, `flat` or `new`.
    pub direction: &'static str,
    /// Components; contributions sum to the score (`?detail=full` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<ComponentDto>>,
}

/// A reason a customer is at risk.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReasonDto {
    /// Input name.
    pub feature: String,
    /// Its value (`missing` when absent).
    pub value: String,
    /// How much it moves the score, in log-odds (positive raises risk); the
    /// contributions of every input and the model's base add up to the
    /// customer's log-odds before calibration.
    pub weight: f64,
    /// The reason in plain words, with its direction.
    pub text: String,
    /// Whether staff can act on it (usage, support, payments, the renewal);
    /// `false` for context (size, plan, tenure). Levers are listed first.
    pub lever: bool,
}

/// One customer's score.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScoreResult {
    /// Customer id.
    pub customer_id: String,
    /// Calibrated churn probability within the model's horizon.
    pub churn_probability: f64,
    /// `voluntary` or `involuntary` (null when the model has no churn-type part).
    pub churn_type: Option<&'static str>,
    /// P(involuntary | churn) (`?detail=full` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_involuntary: Option<f64>,
    /// Health index.
    pub health: HealthDto,
    /// Reasons, strongest first: the top few by default, every input that
    /// raises the risk with `?detail=full`.
    pub reasons: Vec<ReasonDto>,
    /// Customer lifetime value, 0 without MRR (`?detail=full` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clv: Option<f64>,
    /// Churn probability × CLV (`?detail=full` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_loss: Option<f64>,
    /// Months the customer is expected to stay, from the model's lifetime
    /// curve (`?detail=full` only, for models trained on event data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_remaining_months: Option<f64>,
    /// What the intervention policy recommends, if anything.
    pub recommended_intervention: Option<RecommendedIntervention>,
    /// Categorical inputs whose value was not seen in training (scored in
    /// the unknown bucket); present when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub unknown_categories: Vec<String>,
    /// Fields of the record that are neither inputs nor context (not used);
    /// present when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub ignored_fields: Vec<String>,
    /// The model version that scored it (`?detail=full` only; the response's
    /// `model_version` names it for every result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
}

/// How much of each result `POST /v1/score` returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    /// Probability, churn type, health with band and trend, top reasons,
    /// the recommended intervention (the default).
    #[default]
    Compact,
    /// Also the health components, every reason, CLV, expected loss,
    /// P(involuntary) and the model version per result.
    Full,
}

/// The response of `POST /v1/score` for a batch.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScoreResponse {
    /// The model version.
    pub model_version: String,
    /// One result per customer, in request order.
    pub results: Vec<ScoreResult>,
}

/// The response row of a scored customer, as much of it as `detail` asks.
pub fn result_of(
    c: ScoredCustomer,
    ignored_fields: Vec<String>,
    policy: &InterventionPolicy,
    model: &LoadedModel,
    detail: Detail,
) -> ScoreResult {
    let full = detail == Detail::Full;
    let input = c.policy_input();
    let recommended = policy.first_match(&input).and_then(|rule| {
        let pb = policy.playbook(&rule.playbook)?;
        let personal = policy.owners.get(&pb.owner).is_some_and(|o| o.personal);
        Some(RecommendedIntervention {
            playbook: pb.name.clone(),
            rule: rule.name.clone(),
            channel: pb.channel.clone(),
            owner_role: pb.owner.clone(),
            owner: if personal {
                c.context.account_manager.clone()
            } else {
                Some(pb.owner.clone())
            },
            sla_hours: pb.sla_hours,
            priority: pb.priority,
        })
    });
    ScoreResult {
        customer_id: c.customer_id,
        churn_probability: c.churn_probability,
        churn_type: c.churn_type.map(|t| t.name()),
        p_involuntary: if full { c.p_involuntary } else { None },
        health: HealthDto {
            score: c.health.score,
            band: c.health.band.name(),
            profile: c.health.profile,
            change: c.trend.change,
            direction: c.trend.direction.name(),
            components: full.then(|| {
                c.health
                    .components
                    .into_iter()
                    .map(|k| ComponentDto {
                        component: k.component.name(),
                        score: k.score,
                        weight: k.weight,
                        contribution: k.contribution,
                    })
                    .collect()
            }),
        },
        reasons: c
            .reasons
            .into_iter()
            .map(|r| ReasonDto {
                text: churnguard_core::scoring::reason_text(&r),
                lever: churnguard_core::scoring::is_lever(&r.feature, Some(&model.manifest.input)),
                feature: r.feature,
                value: r.value,
                weight: r.weight,
            })
            .collect(),
        clv: full.then_some(c.clv),
        expected_loss: full.then_some(c.expected_loss),
        expected_remaining_months: model
            .manifest
            .lifetime
            .as_ref()
            .filter(|_| full)
            .map(|curve| curve.expected_months(c.churn_probability)),
        recommended_intervention: recommended,
        unknown_categories: c.unknown_categories,
        ignored_fields,
        model_version: full.then(|| model.manifest.id.clone()),
    }
}

/// The JSON Schema of a score request for a model's inputs: a batch
/// (`{"customers": [record, …]}`) or one record. Inputs are required
/// (`null` when unknown); context fields are optional; other fields are
/// skipped (and listed in `ignored_fields`).
pub fn request_schema(schema: &RecordSchema, max_batch: usize) -> serde_json::Value {
    use serde_json::json;
    let mut properties = serde_json::Map::new();
    properties.insert(
        schema.id.clone(),
        json!({"type": ["string", "integer"], "description": "customer id"}),
    );
    for n in schema.numeric.iter() {
        properties.insert(n.clone(), json!({"type": ["number", "null"]}));
    }
    for n in schema.categorical.iter() {
        properties.insert(n.clone(), json!({"type": ["string", "null"]}));
    }
    let context = [
        ("name", json!({"type": ["string", "null"]})),
        (
            "account_manager_id",
            json!({"type": ["string", "integer", "null"]}),
        ),
        (
            "acquisition_rep_id",
            json!({"type": ["string", "integer", "null"]}),
        ),
        ("segment", json!({"type": ["string", "null"]})),
        ("mrr", json!({"type": ["number", "null"]})),
        ("cac", json!({"type": ["number", "null"]})),
    ];
    for (name, s) in context {
        properties.entry(name.to_string()).or_insert(s);
    }
    let mut required: Vec<&String> = vec![&schema.id];
    required.extend(schema.numeric.iter());
    required.extend(schema.categorical.iter());
    let record = json!({
        "type": "object",
        "properties": properties,
        "required": required,
    });
    json!({
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "customers": {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}
                },
                "required": ["customers"],
                "additionalProperties": false
            },
            record
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> RecordSchema {
        let mut index = crate::state::FieldIndex::default();
        index.insert("customer_id".to_string(), Slot::Id);
        index.insert("tenure".to_string(), Slot::Numeric(0));
        index.insert("mrr".to_string(), Slot::Numeric(1));
        index.insert("contract".to_string(), Slot::Categorical(0));
        for (name, f) in super::super::state::CONTEXT_FIELDS {
            index.entry(name.to_string()).or_insert(Slot::Context(*f));
        }
        RecordSchema {
            id: "customer_id".into(),
            numeric: vec!["tenure".into(), "mrr".into()].into(),
            categorical: vec!["contract".into()].into(),
            index,
            mrr_input: Some(1),
            segment_input: None,
        }
    }

    fn code(body: &str) -> (String, Option<String>) {
        match parse(body.as_bytes(), &schema(), 3) {
            Ok(_) => ("ok".into(), None),
            Err(e) => {
                let (_, b) = e.parts();
                (b.code, b.field)
            }
        }
    }

    #[test]
    fn an_oversized_batch_is_refused_for_its_size_before_its_records() {
        // Limit 3: four records whose first is invalid is still a 413.
        let bad = r#"{"customer_id":"a"}"#;
        let body = format!(r#"{{"customers":[{bad},{bad},{bad},{bad}]}}"#);
        assert_eq!(code(&body).0, "batch_too_large");
        // Within the limit, the record's own error is the answer.
        let body = format!(r#"{{"customers":[{bad},{bad}]}}"#);
        assert_eq!(code(&body).0, "missing_feature");
        assert_eq!(batch_len(br#"{"x":[1,2],"customers":[{},{},{}]}"#), Some(3));
        assert_eq!(batch_len(br#"{"customer_id":1}"#), None);
    }

    #[test]
    fn a_batch_and_a_single_record_parse() {
        let r = parse(
            br#"{"customers":[{"customer_id":"a","tenure":3,"mrr":9.5,"contract":"monthly","account_manager_id":17},
                              {"customer_id":2,"tenure":null,"mrr":1,"contract":null}]}"#,
            &schema(),
            10,
        )
        .unwrap();
        assert_eq!(r.ids, vec!["a", "2"]);
        assert_eq!(r.numeric[0], 3.0);
        assert!(r.numeric[2].is_nan());
        assert_eq!(r.categorical[0], vec![Some("monthly".into()), None]);
        assert_eq!(r.contexts[0].account_manager.as_deref(), Some("17"));
        assert_eq!(r.contexts[0].mrr, Some(9.5));
        assert!(!r.single);
        let one = parse(
            br#"{"tenure":1,"customer_id":"x","mrr":2,"contract":"annual","snapshot_date":"2024-01-01"}"#,
            &schema(),
            10,
        )
        .unwrap();
        assert!(one.single);
        assert_eq!(one.ids, vec!["x"]);
        assert_eq!(one.ignored, vec![vec!["snapshot_date".to_string()]]);
    }

    #[test]
    fn errors_have_codes_and_paths() {
        assert_eq!(code("{"), ("malformed_json".into(), None));
        assert_eq!(code("[1,2]").0, "malformed_json");
        assert_eq!(
            code(r#"{"customers":[{"customer_id":"a","mrr":1,"contract":"m"}]}"#),
            ("missing_feature".into(), Some("customers[0].tenure".into()))
        );
        assert_eq!(
            code(r#"{"customers":[{"customer_id":"a","tenure":"x","mrr":1,"contract":"m"}]}"#),
            ("wrong_type".into(), Some("customers[0].tenure".into()))
        );
        assert_eq!(
            code(r#"{"customer_id":"a","tenure":1,"mrr":1,"contract":"m","bogus":1}"#).0,
            "ok",
            "unknown fields are skipped"
        );
        assert_eq!(
            code(r#"{"customer_id":"a","tenur":1,"mrr":1,"contract":"m"}"#),
            ("missing_feature".into(), Some("tenure".into())),
            "a misspelt input still fails"
        );
        assert_eq!(
            code(r#"{"tenure":1,"mrr":1,"contract":"m"}"#),
            ("missing_id".into(), Some("customer_id".into()))
        );
        assert_eq!(
            code(r#"{"customer_id":"a","tenure":1e999,"mrr":1,"contract":"m"}"#).0,
            "malformed_json"
        );
        assert_eq!(
            code(r#"{"customer_id":"a","tenure":1,"mrr":1,"contract":[1]}"#),
            ("wrong_type".into(), Some("contract".into()))
        );
        let rec = r#"{"customer_id":"a","tenure":1,"mrr":1,"contract":"m"}"#;
        let four = format!(r#"{{"customers":[{rec},{rec},{rec},{rec}]}}"#);
        assert_eq!(
            code(&four),
            ("batch_too_large".into(), Some("customers".into()))
        );
        assert_eq!(code(r#"{"customers":[]}"#).0, "empty_batch");
    }
}
