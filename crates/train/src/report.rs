//! The training report: one self-contained HTML page with inline SVG charts
//! (the validation and test leaderboards, the backtest or cross-validation
//! per origin or fold, the search's leaderboard, the champion against the
//! current champion, ROC and PR curves, calibration, lift, feature
//! importance and the boosted family's contribution summary, the tree's
//! rules, and, given the event tables, cohort retention observed against
//! its projection). No scripts, no CDN: it opens offline.

use std::fmt::Write;

use crate::{ShapSummary, TrainReport};
use churnguard_core::eval;
use churnguard_core::models::ChurnModel;
use churnguard_core::value::cohorts::{CohortRetention, MIN_CUSTOMERS};

const W: f64 = 360.0;
const H: f64 = 300.0;
const PAD: f64 = 44.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart on [0,1]×[0,ymax] with one polyline per series.
fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    ymax: f64,
    series: &[(String, Vec<(f64, f64)>)],
    diagonal: bool,
) -> String {
    let sx = |x: f64| PAD + x.clamp(0.0, 1.0) * (W - PAD - 10.0);
    let sy = |y: f64| H - PAD - (y / ymax).clamp(0.0, 1.0) * (H - PAD - 24.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<figure><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title>"##,
        t = esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{PAD}" y="24" width="{}" height="{}" fill="#fafafa" stroke="#999"/>"##,
        W - PAD - 10.0,
        H - 2.0 * PAD + 20.0
    );
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="middle">{v:.2}</text>"##,
            sx(v),
            H - PAD + 14.0
        );
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="end">{:.2}</text>"##,
            PAD - 4.0,
            sy(v * ymax) + 3.0,
            v * ymax
        );
    }
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
        (W + PAD) / 2.0,
        H - 8.0,
        esc(x_label)
    );
    let _ = write!(
        s,
        r##"<text x="12" y="{}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {})">{}</text>"##,
        H / 2.0,
        H / 2.0,
        esc(y_label)
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="16" font-size="13" text-anchor="middle" font-weight="bold">{}</text>"##,
        W / 2.0,
        esc(title)
    );
    if diagonal {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#bbb" stroke-dasharray="4 3"/>"##,
            sx(0.0),
            sy(0.0),
            sx(1.0),
            sy(ymax.min(1.0))
        );
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        );
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" font-size="11" fill="{color}">{}</text>"##,
            PAD + 8.0,
            40.0 + 14.0 * i as f64,
            esc(name)
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn bar_chart(title: &str, bars: &[(String, f64)]) -> String {
    let h = 30.0 + 18.0 * bars.len() as f64;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-12);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<figure><svg viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>"##,
        t = esc(title)
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="16" font-size="13" text-anchor="middle" font-weight="bold">{}</text>"##,
        W / 2.0,
        esc(title)
    );
    for (i, (name, v)) in bars.iter().enumerate() {
        let y = 26.0 + 18.0 * i as f64;
        let w = (v / max) * (W - 200.0);
        let _ = write!(
            s,
            r##"<text x="150" y="{}" font-size="10" text-anchor="end">{}</text>"##,
            y + 11.0,
            esc(name)
        );
        let _ = write!(
            s,
            r##"<rect x="155" y="{y}" width="{w:.1}" height="13" fill="#1f77b4"/>"##
        );
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" font-size="9">{v:.3}</text>"##,
            158.0 + w,
            y + 10.0
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.4}"))
}

/// The new champion against the current one, on the same validation rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChampionComparison {
    /// The current champion's id, if there is one it could be compared with.
    pub current: Option<String>,
    /// Its validation ROC-AUC on this run's validation rows.
    pub current_auc: Option<f64>,
    /// This run's champion's validation ROC-AUC on the same rows.
    pub challenger_auc: Option<f64>,
    /// Rows compared on.
    pub rows: usize,
    /// Whether the run's champion was promoted.
    pub promoted: bool,
    /// Why (or why not), in words.
    pub reason: String,
}

/// A strip chart of contributions per input: one row per input, a dot per
/// customer at its contribution, shaded by the input's value (blue low,
/// red high, grey missing or categorical).
fn shap_strips(title: &str, s: &ShapSummary) -> String {
    let h = 40.0 + 22.0 * s.inputs.len() as f64;
    let w = 560.0;
    let max = s
        .points
        .iter()
        .flatten()
        .map(|p| p.0.abs())
        .fold(0.0, f64::max)
        .max(1e-9);
    let x = |v: f64| 210.0 + (v / max) * 160.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>"##,
        t = esc(title)
    );
    let _ = write!(
        out,
        r##"<text x="{}" y="16" font-size="13" text-anchor="middle" font-weight="bold">{}</text><line x1="{}" y1="24" x2="{}" y2="{}" stroke="#999"/>"##,
        w / 2.0,
        esc(title),
        x(0.0),
        x(0.0),
        h - 12.0
    );
    for (k, (name, points)) in s.inputs.iter().zip(&s.points).enumerate() {
        let y = 34.0 + 22.0 * k as f64;
        let _ = write!(
            out,
            r##"<text x="40" y="{}" font-size="10" text-anchor="start">{}</text>"##,
            y + 4.0,
            esc(name)
        );
        for (i, (c, q)) in points.iter().enumerate() {
            let color = match q {
                Some(q) => format!(
                    "rgb({:.0},{:.0},{:.0})",
                    30.0 + 200.0 * q,
                    80.0,
                    230.0 - 200.0 * q
                ),
                None => "#999".to_string(),
            };
            // A small deterministic jitter keeps dots apart.
            let jitter = ((i * 7919) % 11) as f64 - 5.0;
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="1.8" fill="{color}" fill-opacity="0.6"/>"##,
                x(*c),
                y + jitter * 0.8
            );
        }
    }
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" font-size="10" text-anchor="middle">lowers risk ← contribution to log-odds → raises risk (blue low value, red high)</text></svg></figure>"##,
        x(0.0),
        h - 2.0
    );
    out
}

/// Renders the report of a training run. `ids` are the saved version ids, in
/// the order of `report.results`; `comparison` is the champion/challenger
/// check the run made, when it made one.
pub fn render(
    report: &TrainReport,
    dataset: &str,
    ids: &[String],
    comparison: Option<&ChampionComparison>,
    cohorts: Option<(&str, &[CohortRetention])>,
) -> String {
    let mut roc = Vec::new();
    let mut pr = Vec::new();
    let mut rel = Vec::new();
    let mut lift = Vec::new();
    let mut lift_max: f64 = 1.0;
    for r in &report.results {
        let (y, p) = (&r.test_labels, &r.test_probabilities);
        let name = r.model.family().to_string();
        roc.push((
            name.clone(),
            eval::roc_curve(y, p)
                .into_iter()
                .map(|pt| (pt.fpr, pt.tpr))
                .collect(),
        ));
        pr.push((
            name.clone(),
            eval::pr_curve(y, p)
                .into_iter()
                .map(|pt| (pt.recall, pt.precision))
                .collect(),
        ));
        rel.push((
            name.clone(),
            eval::reliability(y, p, 10)
                .into_iter()
                .filter(|b| b.count > 0)
                .map(|b| (b.mean_predicted, b.observed_rate))
                .collect(),
        ));
        let curve: Vec<(f64, f64)> = eval::lift_curve(y, p, 20)
            .into_iter()
            .map(|l| (l.fraction, l.lift))
            .collect();
        lift_max = curve.iter().map(|c| c.1).fold(lift_max, f64::max);
        lift.push((name, curve));
    }
    let mut html = String::new();
    let _ = write!(
        html,
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>churnguard training report: {d}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}}table{{border-collapse:collapse;margin:.5rem 0}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}}th{{background:#eee}}td:first-child,th:first-child{{text-align:left}}figure{{display:inline-block;margin:.5rem}}.rules li{{font-family:monospace;margin:.2rem 0}}</style></head><body>
<h1>Training report: {d}</h1><p>Split: {split}. Rows: train {a}, validation {b}, test {c}; churners in train {bal:.2}%.</p>"##,
        d = esc(dataset),
        split = esc(&report.split),
        a = report.rows.0,
        b = report.rows.1,
        c = report.rows.2,
        bal = 100.0 * report.class_balance
    );
    html.push_str("<h2>Validation (chooses the champion)</h2><table><tr><th>model</th><th>validation ROC-AUC</th><th>mean ± sd over folds or origins</th><th>PR-AUC</th><th>log loss</th><th>ECE</th><th>churn type ROC-AUC (test churners)</th></tr>");
    for (i, r) in report.results.iter().enumerate() {
        let champ = if i == report.champion {
            " (champion)"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr><td>{}{champ}</td><td>{}</td><td>{:.4} ± {:.4}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            r.model.family(),
            opt(r.validation.roc_auc),
            r.validation_auc.0,
            r.validation_auc.1,
            opt(r.validation.pr_auc),
            r.validation.log_loss,
            r.validation.ece,
            r.churn_type.as_ref().map_or_else(
                || "–".to_string(),
                |c| format!("{} ({} churners, {} involuntary)", opt(c.roc_auc), c.churners, c.involuntary)
            )
        );
    }
    html.push_str("</table>");
    if let Some(c) = comparison {
        let _ = write!(
            html,
            "<h2>Champion and challenger</h2><p>On the same {} validation rows: current champion {} ROC-AUC {}, this run's champion {}. {}</p>",
            c.rows,
            esc(c.current.as_deref().unwrap_or("(none)")),
            opt(c.current_auc),
            opt(c.challenger_auc),
            esc(&c.reason)
        );
    }
    html.push_str("<h2>Per fold or backtest origin</h2><table><tr><th>model</th><th>fold / origin</th><th>role</th><th>rows trained on</th><th>rows tested</th><th>ROC-AUC</th><th>PR-AUC</th><th>log loss</th><th>Brier</th></tr>");
    for r in &report.results {
        for o in &r.origins {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td></tr>",
                r.model.family(),
                esc(&o.origin),
                if o.validation { "validation" } else { "test" },
                o.train_rows,
                o.test_rows,
                opt(o.metrics.roc_auc),
                opt(o.metrics.pr_auc),
                o.metrics.log_loss,
                o.metrics.brier
            );
        }
    }
    html.push_str("</table>");
    if report.results.iter().any(|r| !r.trials.is_empty()) {
        html.push_str("<h2>Hyperparameter search</h2><p>Random search on training rows only (mean ROC-AUC over grouped folds); the configured settings are the first trial. Best ten per family:</p><table><tr><th>model</th><th>rank</th><th>ROC-AUC</th><th>sd</th><th>seconds</th><th>settings</th></tr>");
        for r in &report.results {
            for (k, t) in r.trials.iter().take(10).enumerate() {
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.1}</td><td style=\"text-align:left;font-family:monospace;font-size:11px\">{}</td></tr>",
                    r.model.family(),
                    k + 1,
                    if t.configured { " (configured)" } else { "" },
                    t.roc_auc,
                    t.roc_auc_sd,
                    t.seconds,
                    esc(&t.settings.to_json().to_string())
                );
            }
        }
        html.push_str("</table>");
    }
    html.push_str("<h2>Leaderboard (held-out test rows)</h2><table><tr><th>model</th><th>id</th><th>ROC-AUC</th><th>PR-AUC</th><th>log loss</th><th>Brier</th><th>ECE</th><th>lift@10%</th><th>capture@10%</th><th>threshold</th><th>test profit</th><th>fit (s)</th><th>ms / 1k rows</th></tr>");
    for (i, r) in report.results.iter().enumerate() {
        let m = &r.test;
        let champ = if i == report.champion {
            " (champion)"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr><td>{}{champ}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.2}</td><td>{:.1}%</td><td>{:.3}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            r.model.family(),
            esc(ids.get(i).map_or("", String::as_str)),
            opt(m.roc_auc),
            opt(m.pr_auc),
            m.log_loss,
            m.brier,
            m.ece,
            m.lift_10,
            100.0 * m.capture_10,
            r.threshold.threshold,
            r.test_profit,
            r.fit_seconds,
            r.predict_ms_per_1k
        );
    }
    html.push_str("</table><p>The champion has the highest validation ROC-AUC (ties: lower validation log loss); test rows never choose.</p>");
    for (family, why) in &report.skipped {
        let _ = write!(html, "<p>Skipped {family}: {}</p>", esc(why));
    }
    html.push_str("<h2>Curves</h2>");
    html.push_str(&line_chart(
        "ROC curve",
        "false positive rate",
        "true positive rate",
        1.0,
        &roc,
        true,
    ));
    html.push_str(&line_chart(
        "Precision-recall curve",
        "recall",
        "precision",
        1.0,
        &pr,
        false,
    ));
    html.push_str(&line_chart(
        "Calibration on test rows (reliability)",
        "mean predicted probability",
        "observed churn rate",
        1.0,
        &rel,
        true,
    ));
    html.push_str(&line_chart(
        "Lift chart",
        "share of customers targeted (riskiest first)",
        "lift",
        lift_max.ceil(),
        &lift,
        false,
    ));
    html.push_str("<h2>Feature importance</h2>");
    for r in &report.results {
        let bars: Vec<(String, f64)> = r.model.importance().into_iter().take(15).collect();
        html.push_str(&bar_chart(&format!("{}", r.model.family()), &bars));
    }
    for r in &report.results {
        if let Some(summary) = &r.shap_summary {
            let _ = write!(
                html,
                "<h2>{}: per-customer contributions on {} test rows</h2><p>Exact TreeSHAP in log-odds; they add up to each customer's score.</p>",
                r.model.family(),
                summary.rows
            );
            let bars: Vec<(String, f64)> = summary
                .inputs
                .iter()
                .cloned()
                .zip(summary.mean_abs.iter().copied())
                .collect();
            html.push_str(&bar_chart("mean |contribution| (log-odds)", &bars));
            html.push_str(&shap_strips("contributions per customer", summary));
        }
    }
    for r in &report.results {
        if let ChurnModel::Tree(tree) = &r.model.model {
            let _ = write!(html, "<h2>Churn-path rules of the tree ({} leaves, riskiest first)</h2><ol class=\"rules\">", tree.n_leaves());
            for rule in tree.rules(&r.model.preprocessor) {
                let _ = write!(html, "<li>{}</li>", esc(&rule.to_string()));
            }
            html.push_str("</ol>");
        }
        if let ChurnModel::Logistic(m) = &r.model.model {
            html.push_str("<h2>Logistic regression: odds ratios</h2><p>Per standard deviation of a numeric input, or for being in a category level.</p><table><tr><th>input</th><th>coefficient</th><th>odds ratio</th></tr>");
            let mut pairs: Vec<(String, f64)> = r
                .model
                .preprocessor
                .encoded_names()
                .into_iter()
                .zip(m.coefficients.iter().copied())
                .collect();
            pairs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            for (name, c) in pairs {
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{c:.4}</td><td>{:.3}</td></tr>",
                    esc(&name),
                    c.exp()
                );
            }
            html.push_str("</table>");
        }
    }
    if let Some((as_of, cohorts)) = cohorts {
        html.push_str(&cohort_section(as_of, cohorts));
    }
    html.push_str("</body></html>\n");
    html
}

/// Cohorts drawn: the latest six with a fit and more than six observed months.
const COHORTS_DRAWN: usize = 6;

/// Cohort retention: each signup month's observed survival against its sBG
/// projection, drawn for the latest cohorts and tabled for all.
fn cohort_section(as_of: &str, cohorts: &[CohortRetention]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<h2>Cohort retention by signup month (as of {})</h2><p>The share of each signup month's customers still with us at each monthly anniversary: observed (solid), and projected by the shifted-beta-geometric model fitted to that cohort (dashed; Fader &amp; Hardie 2007). A month counts only once every member has had the chance to reach it. Cohorts under {} customers or with fewer than 2 months observed are listed, not fitted.</p>",
        esc(as_of),
        MIN_CUSTOMERS
    );
    let drawn: Vec<&CohortRetention> = cohorts
        .iter()
        .filter(|c| c.alpha_beta.is_some() && c.survivors.len() > COHORTS_DRAWN)
        .rev()
        .take(COHORTS_DRAWN)
        .collect();
    if drawn.is_empty() {
        s.push_str("<p>No cohort has both a fit and more than six observed months yet.</p>");
    } else {
        s.push_str(&cohort_chart(&drawn));
    }
    s.push_str("<table><tr><th>cohort</th><th>customers</th><th>months observed</th><th>observed share at the last month</th><th>projected there</th><th>projected at 12 months</th><th>at 24 months</th><th>&alpha;</th><th>&beta;</th><th>note</th></tr>");
    for c in cohorts.iter().rev() {
        let observed = c.survivors.len().saturating_sub(1);
        let share = c.survivors.last().copied().unwrap_or(0) as f64 / c.customers.max(1) as f64;
        let at = |t: usize| {
            c.projected
                .get(t)
                .map_or_else(|| "–".to_string(), |v| format!("{:.1}%", 100.0 * v))
        };
        let (a, b) = match c.alpha_beta {
            Some((a, b)) if a + b > 1e6 => ("∞".to_string(), "∞".to_string()),
            Some((a, b)) => (format!("{a:.3}"), format!("{b:.3}")),
            None => ("–".to_string(), "–".to_string()),
        };
        let note = match c.alpha_beta {
            // The fit ran to its boundary: no heterogeneity between members.
            Some((a, b)) if a + b > 1e6 => {
                format!("a constant {:.1}% a month", 100.0 * a / (a + b))
            }
            _ => c.note.clone().unwrap_or_default(),
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{observed}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{a}</td><td>{b}</td><td>{}</td></tr>",
            esc(&c.cohort),
            c.customers,
            100.0 * share,
            at(observed),
            at(12),
            at(24),
            esc(&note)
        );
    }
    s.push_str("</table>");
    s
}

/// Observed (solid) and projected (dashed) survival per cohort, months on
/// the x axis.
fn cohort_chart(cohorts: &[&CohortRetention]) -> String {
    let (w, h) = (2.0 * W, H);
    let months = cohorts
        .iter()
        .map(|c| c.projected.len().max(c.survivors.len()))
        .max()
        .unwrap_or(2)
        .max(2)
        - 1;
    let sx = |t: usize| PAD + (w - PAD - 70.0) * t as f64 / months as f64;
    let sy = |v: f64| h - PAD - v.clamp(0.0, 1.0) * (h - PAD - 24.0);
    let points = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(t, y)| format!("{:.1},{:.1}", sx(t), sy(*y)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Retention by signup cohort: observed and projected"><title>Retention by signup cohort: observed (solid) and projected (dashed)</title>"##
    );
    for k in 0..=4 {
        let v = f64::from(k) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{PAD}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{}" font-size="10" text-anchor="end">{:.0}%</text>"##,
            w - 70.0,
            PAD - 4.0,
            sy(v) + 3.0,
            100.0 * v,
            y = sy(v)
        );
    }
    for t in (0..=months).step_by(6) {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{t}m</text>"##,
            sx(t),
            h - PAD + 14.0
        );
    }
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="middle">months since signup</text>"##,
        (w + PAD) / 2.0,
        h - 8.0
    );
    for (i, c) in cohorts.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let observed: Vec<f64> = c
            .survivors
            .iter()
            .map(|n| *n as f64 / c.customers.max(1) as f64)
            .collect();
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="{color}" stroke-width="1.5" stroke-dasharray="5 4" points="{}"><title>{}: projected</title></polyline><polyline fill="none" stroke="{color}" stroke-width="2.5" points="{}"><title>{}: observed ({} customers)</title></polyline><text x="{:.1}" y="{:.1}" font-size="10" fill="{color}">{}</text>"##,
            points(&c.projected),
            esc(&c.cohort),
            points(&observed),
            esc(&c.cohort),
            c.customers,
            w - 66.0,
            sy(*c.projected.last().unwrap_or(&0.0)) + 3.0,
            esc(&c.cohort)
        );
    }
    s.push_str("</svg></figure>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use churnguard_core::value::sbg;

    /// A cohort of Fader & Hardie's (2007) "regular" customers: the paper's
    /// survivors and the parameters it publishes (α 0.704, β 1.182).
    fn paper_cohort(cohort: &str) -> CohortRetention {
        let survivors = vec![1000, 631, 468, 382, 326, 289, 262, 241];
        let fit = sbg::fit(&survivors).unwrap();
        CohortRetention {
            cohort: cohort.into(),
            plan: "all".into(),
            customers: 1000,
            survivors,
            alpha_beta: Some((fit.params.alpha, fit.params.beta)),
            projected: fit.params.survival_curve(24),
            note: None,
        }
    }

    #[test]
    fn the_cohort_section_draws_fitted_cohorts_and_tables_every_one() {
        let young = CohortRetention {
            cohort: "2024-06".into(),
            plan: "all".into(),
            customers: 12,
            survivors: vec![12, 11],
            alpha_beta: None,
            projected: Vec::new(),
            note: Some("12 customers: too few to fit (at least 20)".into()),
        };
        let cohorts = [paper_cohort("2024-01"), paper_cohort("2024-02"), young];
        let html = cohort_section("2024-07-01", &cohorts);
        assert!(html.contains("(as of 2024-07-01)"), "{html}");
        // Two fitted cohorts drawn, observed and projected each.
        assert_eq!(html.matches("<polyline").count(), 4, "{html}");
        assert!(html.contains("2024-02: observed (1000 customers)"));
        // The table: the paper's estimates, the observed share at month 7
        // (241 of 1000) and the young cohort with its reason.
        assert!(html.contains("<td>0.704</td><td>1.182</td>"), "{html}");
        assert!(html.contains("<td>7</td><td>24.1%</td>"), "{html}");
        assert!(html.contains("too few to fit"));
        assert_eq!(html.matches("<tr><td>").count(), 3);
        // Newest first.
        assert!(html.find("2024-06").unwrap() < html.find("<td>2024-01").unwrap());
    }

    #[test]
    fn without_a_fitted_cohort_the_section_says_so() {
        let html = cohort_section("2024-07-01", &[]);
        assert!(html.contains("No cohort has both a fit"), "{html}");
        assert!(!html.contains("<svg"));
    }
}
