//! `POST /v1/score` (online scoring) and `POST /v1/scoring-runs` (a batch run).

use super::*;
use churnguard_core::error::HasKind;

/// `POST /v1/score`'s query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScoreQuery {
    /// `compact` (the default): probability, churn type, health with band
    /// and trend, top reasons, recommended intervention; `full` adds the
    /// health components, every reason, CLV, expected loss, P(involuntary)
    /// and the model version per result.
    pub detail: Option<score::Detail>,
}

/// Score one customer or a batch.
///
/// The body is `{"customers": [record, ...]}` or a single record. A record
/// holds the model's id field, every model input (null when unknown), and
/// optionally `name`, `account_manager_id`, `acquisition_rep_id`, `segment`,
/// `mrr` and `cac`; other fields are skipped and listed in `ignored_fields`.
#[utoipa::path(
    post,
    path = "/v1/score",
    tag = "scoring",
    params(ScoreQuery),
    request_body(content = serde_json::Value, description = "`{\"customers\": [record, …]}` or one record; a record maps the model's id field and every input to a value"),
    responses(
        (status = 200, description = "Scores in request order", body = ScoreResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not score", body = ErrorBody),
        (status = 413, description = "Batch or body over the limit", body = ErrorBody),
        (status = 422, description = "A field is missing, of the wrong type or not finite", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "No model loaded", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn score(
    State(state): State<Arc<AppState>>,
    _: Auth<Scorer>,
    ApiQuery(query): ApiQuery<ScoreQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let detail = query.detail.unwrap_or_default();
    let bytes = body_bytes(body)?;
    // Small requests are cheaper inline; large ones go to the blocking pool.
    let inline = bytes.len() <= 16 * 1024;
    let model = state::model(&state)?;
    let limit = state.serve.max_batch;
    let work = {
        let state = state.clone();
        let model = model.clone();
        move || -> Result<Vec<u8>, ApiError> {
            let records = score::parse(&bytes, &model.schema, limit)?;
            let (batch, contexts, ignored) = records.into_batch(&model.schema);
            let baseline = state.baseline.load();
            let c = &state.config;
            // Full detail explains every input that raises the risk.
            let all_reasons;
            let scoring = if detail == score::Detail::Full {
                all_reasons = churnguard_core::scoring::ScoringConfig {
                    top_reasons: model.schema.numeric.len() + model.schema.categorical.len(),
                    ..c.scoring.clone()
                };
                &all_reasons
            } else {
                &c.scoring
            };
            let scored = churnguard_core::scoring::score_customers(
                &model.model,
                model.horizon_days,
                &batch,
                &contexts,
                &baseline.previous,
                Settings {
                    scoring,
                    health: &c.health,
                    value: &c.value,
                    policy: &c.interventions,
                    clv_thresholds: baseline.clv_thresholds,
                    lifetime: model.manifest.lifetime.as_ref(),
                    input: Some(&model.manifest.input),
                },
            )
            .map_err(|e| ApiError::of_kind(e.kind(), e.to_string()))?;
            let probabilities: Vec<f64> = scored.iter().map(|s| s.churn_probability).collect();
            state.metrics.scored(probabilities.iter().copied());
            state
                .online
                .push(&model.manifest.id, &batch, &probabilities);
            // The shadow scores these customers at the next flush, off the
            // request's path.
            if let Some(shadow) = state.shadow.load_full() {
                let scored_at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                state
                    .shadow_recorder
                    .record(&batch, &model, &probabilities, &shadow, scored_at);
            }
            let results: Vec<score::ScoreResult> = scored
                .into_iter()
                .zip(ignored)
                .map(|(s, ignored)| score::result_of(s, ignored, &c.interventions, &model, detail))
                .collect();
            // About 700 bytes a compact result: one allocation, no regrowth.
            let mut json = Vec::with_capacity(1024 * results.len() + 128);
            serde_json::to_writer(
                &mut json,
                &ScoreResponse {
                    model_version: model.manifest.id.clone(),
                    results,
                },
            )
            .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(json)
        }
    };
    let json = if inline {
        work()?
    } else {
        // The permit travels with the work, so a request that times out
        // keeps its place in the bound until the blocking work is done.
        let permit = state
            .heavy
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??
    };
    let mut response = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response();
    // The version that scored, even if a reload swapped it meanwhile.
    response
        .headers_mut()
        .insert(state::MODEL_VERSION_HEADER, model.version_header.clone());
    Ok(response)
}

/// A scoring run to start.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoringRunRequest {
    /// `YYYY-MM-DD` or `latest` (default).
    #[schema(pattern = "^(latest|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))$")]
    pub snapshot: Option<String>,
    /// Model id (default `champion`).
    pub model: Option<String>,
}

/// What a scoring run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoringRunResponse {
    /// Run id.
    pub run_id: String,
    /// Snapshot.
    pub snapshot_date: String,
    /// Model used.
    pub model_id: String,
    /// Customers scored.
    pub customers: usize,
    /// Customers per band.
    pub bands: HashMap<String, usize>,
    /// Policy choices per action.
    pub actions: HashMap<String, usize>,
}

/// Score every active customer of the configured data, plan interventions, save the run.
#[utoipa::path(
    post,
    path = "/v1/scoring-runs",
    tag = "scoring",
    request_body = ScoringRunRequest,
    responses(
        (status = 201, body = ScoringRunResponse),
        (status = 400, description = "No body, or malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "No data directory configured", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn scoring_run(
    State(state): State<Arc<AppState>>,
    Auth(who, _): Auth<Admin>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ScoringRunResponse>), ApiError> {
    let bytes = body_bytes(body)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson(
            "a JSON body is required: send {} to score the latest snapshot with the champion"
                .into(),
        ));
    }
    let req: ScoringRunRequest = json_body(&bytes)?;
    if let Some(s) = &req.snapshot {
        let date_like = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if s != "latest" && !date_like {
            return Err(ApiError::BadField {
                code: "wrong_type",
                field: "snapshot".into(),
                message: format!("snapshot: expected YYYY-MM-DD or latest, got {s:?}"),
            });
        }
    }
    let Some(data) = state.serve.data.clone() else {
        return Err(ApiError::Conflict(
            "no data directory configured: set serve.data in churnguard.toml".into(),
        ));
    };
    let request = churnguard_app::service::ScoreRunRequest {
        registry: state.registry.root().to_path_buf(),
        model: nonempty(req.model).unwrap_or_else(|| "champion".into()),
        data: data.into(),
        schema: None,
        snapshot: req.snapshot,
        out: None,
        run_id: None,
        actor: who.name.clone(),
        as_of: None,
        transaction_amount: None,
    };
    // One run at a time. The guard is owned by the run's task, not by this
    // handler: when the request times out and this future is dropped, the
    // run goes on holding the lock, so a second run waits for it instead of
    // overlapping it.
    let guard = state.run_lock.clone().lock_owned().await;
    let s = state.clone();
    let run = tokio::spawn(async move {
        let _guard = guard;
        let result = async {
            let summary = churnguard_app::service::score_run(&request, &s.config, &s.store).await?;
            state::refresh_baseline(&s).await?;
            Ok::<_, ApiError>(summary)
        }
        .await;
        // The request may be gone (timed out): the outcome is logged here
        // either way, so a failed run is never silent.
        match &result {
            Ok(summary) => {
                tracing::info!(run = %summary.run.run_id, customers = summary.run.customers, "scoring run saved")
            }
            Err(e) => tracing::error!(error = %e, "scoring run failed"),
        }
        result
    });
    let summary = run
        .await
        .map_err(|e| ApiError::Internal(format!("the scoring run's task failed: {e}")))??;
    Ok((
        StatusCode::CREATED,
        Json(ScoringRunResponse {
            run_id: summary.run.run_id,
            snapshot_date: summary.run.snapshot_date,
            model_id: summary.run.model_id,
            customers: summary.run.customers,
            bands: summary.run.summary.bands.into_iter().collect(),
            actions: summary.run.summary.actions.into_iter().collect(),
        }),
    ))
}
