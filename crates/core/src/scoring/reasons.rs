//! Reasons as staff read them: each input of the feature table has a
//! plain-language template with its comparison ("usage down 45% over the
//! last 4 weeks", "4 failed payments in 90 days", "NPS 3, detractor"), and
//! inputs are either **levers** (something a CSM can change: usage,
//! adoption, support, payments, satisfaction, the renewal) or **context**
//! (who the customer is: size, plan, contract, region, tenure). Reasons
//! shown to staff lead with levers: among the [`LEVER_WINDOW`] strongest
//! reasons, levers come first, each group in order of strength; the full
//! attribution (`?detail=full`, the model report) keeps every input.

use crate::data::flat::FlatSchema;
use crate::models::Reason;

/// How many of the strongest reasons are reordered levers-first: a lever
/// this close to the top leads; one weaker than that does not jump over
/// stronger context.
pub const LEVER_WINDOW: usize = 7;

/// Inputs of the feature table that describe the customer rather than
/// something staff can act on.
const CONTEXT: &[&str] = &[
    "seats",
    "mrr",
    "tenure_days",
    "monetary_90d",
    "upgrades",
    "downgrades",
    "plan",
    "contract",
    "region",
    "acquisition_channel",
    "cac",
];

/// Whether `feature` is a lever. A flat table's columns are levers unless
/// its schema gives them a business role (MRR, CAC, segment, tenure), which
/// makes them context.
pub fn is_lever(feature: &str, input: Option<&FlatSchema>) -> bool {
    if CONTEXT.contains(&feature) {
        return false;
    }
    !input.is_some_and(|s| s.roles.has_column(feature))
}

/// Reorders the first [`LEVER_WINDOW`] reasons (strongest first) so levers
/// lead, keeping each group's order, then keeps `keep` of them.
pub fn levers_first(reasons: &mut Vec<Reason>, keep: usize, input: Option<&FlatSchema>) {
    let window = reasons.len().min(LEVER_WINDOW);
    // A stable partition of a few elements, in place and without
    // allocation (this runs for every scored customer), asking once per
    // reason whether it is a lever rather than at every comparison.
    let mut lever = [false; LEVER_WINDOW];
    for (flag, r) in lever.iter_mut().zip(&reasons[..window]) {
        *flag = is_lever(&r.feature, input);
    }
    for i in 1..window {
        let mut j = i;
        while j > 0 && lever[j] && !lever[j - 1] {
            reasons.swap(j - 1, j);
            lever.swap(j - 1, j);
            j -= 1;
        }
    }
    reasons.truncate(keep);
}

fn plural(n: f64, one: &str, many: &str) -> String {
    let n = n.round();
    format!("{n:.0} {}", if n == 1.0 { one } else { many })
}

/// The reason's phrase without its direction, from the feature's template;
/// `None` for an input without one (or a missing value).
fn phrase(feature: &str, value: &str) -> Option<String> {
    let text = || Some(value.to_string());
    // Parsed only by the templates that read a number (a flat table's
    // inputs have none).
    let v = || value.parse::<f64>().ok().filter(|v| v.is_finite());
    Some(match feature {
        "usage_trend" => {
            let change = 100.0 * (v()?.exp() - 1.0);
            if change.abs() < 0.5 {
                "usage flat over the last 4 weeks".into()
            } else {
                format!(
                    "usage {} {:.0}% over the last 4 weeks",
                    if change < 0.0 { "down" } else { "up" },
                    change.abs()
                )
            }
        }
        "payment_failures_90d" => format!(
            "{} in 90 days",
            plural(v()?, "failed payment", "failed payments")
        ),
        "late_payments_90d" => {
            format!(
                "{} in 90 days",
                plural(v()?, "late payment", "late payments")
            )
        }
        "last_nps" => {
            let n = v()?;
            let kind = if n <= 6.0 {
                "detractor"
            } else if n <= 8.0 {
                "passive"
            } else {
                "promoter"
            };
            format!("NPS {n:.0}, {kind}")
        }
        "last_csat" => format!("CSAT {:.0} of 5", v()?),
        "survey_response_rate" => format!("answers {:.0}% of surveys", 100.0 * v()?),
        "tickets_90d" => format!(
            "{} in 90 days",
            plural(v()?, "support ticket", "support tickets")
        ),
        "severe_tickets_90d" => format!(
            "{} in 90 days",
            plural(v()?, "severe ticket", "severe tickets")
        ),
        "open_tickets" => format!("{} still open", plural(v()?, "ticket", "tickets")),
        "resolution_hours_90d" => format!("tickets took {:.0} hours to resolve on average", v()?),
        "recency_days" => format!("no session for {}", plural(v()?, "day", "days")),
        "sessions_30d" => format!(
            "{} in the last 4 weeks",
            plural(v()?, "session", "sessions")
        ),
        "sessions_prev_30d" => format!(
            "{} in the 4 weeks before",
            plural(v()?, "session", "sessions")
        ),
        "sessions_90d" => format!(
            "{} in the last 13 weeks",
            plural(v()?, "session", "sessions")
        ),
        "sessions_per_seat_30d" => format!("{:.1} sessions per seat in the last 4 weeks", v()?),
        "active_weeks_90d" => format!("active in {:.0} of the last 13 weeks", v()?),
        "active_users_30d" => format!("{:.1} weekly active users", v()?),
        "minutes_90d" => format!("{:.0} minutes of use in the last 13 weeks", v()?),
        "features_adopted" => format!("uses {:.0} of 12 product features", v()?),
        "mrr_change_90d" => {
            let d = v()?;
            if d == 0.0 {
                "MRR unchanged in 90 days".into()
            } else {
                format!(
                    "MRR {} {:.0} in 90 days",
                    if d < 0.0 { "down" } else { "up" },
                    d.abs()
                )
            }
        }
        "downgrades_90d" => format!("{} in 90 days", plural(v()?, "downgrade", "downgrades")),
        "days_to_renewal" => format!("renewal in {}", plural(v()?, "day", "days")),
        "renewal_within_90d" => {
            if v()? >= 0.5 {
                "renewal within 90 days".into()
            } else {
                "no renewal within 90 days".into()
            }
        }
        "seats" => plural(v()?, "licensed seat", "licensed seats"),
        "mrr" => format!("MRR {:.0}", v()?),
        "tenure_days" => format!("customer for {}", plural(v()?, "day", "days")),
        "monetary_90d" => format!("{:.0} paid in 90 days", v()?),
        "upgrades" => format!("{} since signup", plural(v()?, "upgrade", "upgrades")),
        "downgrades" => format!("{} since signup", plural(v()?, "downgrade", "downgrades")),
        "plan" => format!("{} plan", text()?),
        "contract" => format!("{} contract", text()?),
        "region" => format!("region {}", text()?),
        "acquisition_channel" => format!("acquired through {}", text()?),
        _ => return None,
    })
}

/// A reason in plain words, with its direction: `usage down 45% over the
/// last 4 weeks (raises risk)`. Inputs without a template (a flat table's
/// columns) read `name: value (raises risk)`; a missing value says so.
pub fn reason_text(r: &Reason) -> String {
    let direction = if r.weight >= 0.0 {
        "raises risk"
    } else {
        "lowers risk"
    };
    // Built by appending rather than `format!`: online scoring writes this
    // for every reason of every answer.
    let mut text = match phrase(&r.feature, &r.value) {
        Some(p) => p,
        None => {
            let mut text = String::with_capacity(r.feature.len() + r.value.len() + 16);
            match crate::features::FEATURES
                .iter()
                .find(|f| f.name == r.feature)
            {
                Some(f) => text.push_str(f.meaning),
                None if r.feature.contains('_') => text.push_str(&r.feature.replace('_', " ")),
                None => text.push_str(&r.feature),
            }
            text.push_str(": ");
            text.push_str(&r.value);
            text
        }
    };
    text.push_str(" (");
    text.push_str(direction);
    text.push(')');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(feature: &str, value: &str, weight: f64) -> Reason {
        Reason {
            feature: feature.into(),
            value: value.into(),
            weight,
        }
    }

    #[test]
    fn templates_read_as_staff_speak() {
        let t = |f: &str, v: &str| reason_text(&reason(f, v, 0.3));
        assert_eq!(
            t("usage_trend", &(-0.6f64).to_string()),
            "usage down 45% over the last 4 weeks (raises risk)"
        );
        assert_eq!(
            t("payment_failures_90d", "4"),
            "4 failed payments in 90 days (raises risk)"
        );
        assert_eq!(
            t("payment_failures_90d", "1"),
            "1 failed payment in 90 days (raises risk)"
        );
        assert_eq!(t("last_nps", "3"), "NPS 3, detractor (raises risk)");
        assert_eq!(t("last_nps", "9"), "NPS 9, promoter (raises risk)");
        assert_eq!(t("seats", "151"), "151 licensed seats (raises risk)");
        assert_eq!(
            t("mrr_change_90d", "-200"),
            "MRR down 200 in 90 days (raises risk)"
        );
        assert_eq!(
            reason_text(&reason("recency_days", "41", -0.1)),
            "no session for 41 days (lowers risk)"
        );
        // A missing value, or an input without a template, says what it is.
        assert_eq!(
            t("last_nps", "missing"),
            "latest NPS answer, 0-10 (empty if never answered): missing (raises risk)"
        );
        assert_eq!(
            t("MonthlyCharges", "70.5"),
            "MonthlyCharges: 70.5 (raises risk)"
        );
    }

    #[test]
    fn levers_lead_within_the_window_and_context_keeps_its_order() {
        let mut r = vec![
            reason("seats", "151", 0.9),
            reason("plan", "starter", 0.8),
            reason("usage_trend", "-0.5", 0.5),
            reason("tenure_days", "40", 0.4),
            reason("tickets_90d", "6", 0.3),
        ];
        levers_first(&mut r, 3, None);
        let names: Vec<&str> = r.iter().map(|r| r.feature.as_str()).collect();
        assert_eq!(names, ["usage_trend", "tickets_90d", "seats"]);
        // Beyond the window, a weak lever does not jump ahead.
        let mut r: Vec<Reason> = (0..LEVER_WINDOW)
            .map(|i| reason("seats", &i.to_string(), 1.0 - i as f64 / 100.0))
            .chain([reason("tickets_90d", "1", 0.01)])
            .collect();
        levers_first(&mut r, 3, None);
        assert!(r.iter().all(|r| r.feature == "seats"));
        // A flat table's role columns are context.
        let schema = FlatSchema::parse(
            "id = \"id\"\n[target]\ncolumn = \"y\"\npositive = \"1\"\n[columns]\nnumeric = [\"fee\", \"calls\"]\n[roles]\nmrr = \"fee\"\n",
            std::path::Path::new("s.toml"),
        )
        .unwrap();
        assert!(!is_lever("fee", Some(&schema)) && is_lever("calls", Some(&schema)));
    }
}
