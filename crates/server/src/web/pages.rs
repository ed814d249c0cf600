//! The pages, as maud templates: layout, login, risk list, customer,
//! interventions board, KPI and models. No inline scripts or styles.

use std::collections::HashMap;

use maud::{html, Markup, DOCTYPE};

use super::charts;
use super::Session;
use churnguard_core::interventions::{OutcomeReport, PlaybookPower, SaveRate};
use churnguard_core::models::Reason;
use churnguard_store::CustomerScoreRecord;

/// The page frame: skip link, navigation, the signed-in user, content.
pub fn layout(title: &str, session: Option<&Session>, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · churnguard" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "churnguard" }
                    @if let Some(s) = session {
                        nav aria-label="Main" {
                            ul {
                                @for (href, label) in [("/", "Risk list"), ("/interventions", "Interventions"), ("/kpi", "KPI"), ("/retention", "Retention"), ("/models", "Models"), ("/monitoring", "Monitoring")] {
                                    li { a href=(href) aria-current=[(active == label).then_some("page")] { (label) } }
                                }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span.who { (s.name) " (" (s.role.name()) ")" }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The sign-in form.
pub fn login(error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        "",
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.login method="post" action="/login" {
                label for="api_key" { "API key" }
                input #api_key type="password" name="api_key" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            p.hint { "Use the API key you were given; its role decides what you can change." }
        },
    )
}

/// A band as a badge with its name (never colour alone).
pub fn band(b: &str) -> Markup {
    html! { span class=(format!("band band-{b}")) { (b) } }
}

/// An arrow and the change, for a trend.
pub fn trend(change: Option<f64>, direction: &str) -> Markup {
    let (arrow, label) = match direction {
        "up" => ("▲", "rising"),
        "down" => ("▼", "falling"),
        "flat" => ("▶", "steady"),
        _ => ("•", "new"),
    };
    html! {
        span class=(format!("trend trend-{direction}")) title=(label) {
            span aria-hidden="true" { (arrow) }
            span.sr { (label) }
            @if let Some(c) = change { " " (format!("{c:+.1}")) }
        }
    }
}

/// A reason in plain words: the feature's meaning and the customer's value.
pub fn plain_reason(r: &Reason) -> String {
    churnguard_core::scoring::reason_text(r)
}

fn money(v: f64) -> String {
    let v = v.round() as i64;
    let s = v.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The risk-list filters and page state.
pub struct RiskView<'a> {
    /// Rows of this page.
    pub rows: &'a [CustomerScoreRecord],
    /// Matching rows in total.
    pub total: usize,
    /// The run shown.
    pub run_id: &'a str,
    /// Its snapshot.
    pub snapshot: &'a str,
    /// Query-string values: band, owner, segment, q, sort, order.
    pub band: &'a str,
    /// Owner filter.
    pub owner: &'a str,
    /// Segment filter.
    pub segment: &'a str,
    /// Search text.
    pub q: &'a str,
    /// Sort column.
    pub sort: &'a str,
    /// `asc` or `desc`.
    pub order: &'a str,
    /// Link to the next page, if any.
    pub next: Option<String>,
    /// The query string of the current filters (for export and sorting links).
    pub query: String,
    /// The signed-in user's own accounts filter, if the key names an owner.
    pub my_owner: Option<&'a str>,
}

fn sort_link(view: &RiskView<'_>, column: &str, label: &str) -> Markup {
    let active = view.sort == column;
    let next_order = if active && view.order == "desc" {
        "asc"
    } else {
        "desc"
    };
    let aria = match (active, view.order) {
        (true, "asc") => Some("ascending"),
        (true, _) => Some("descending"),
        _ => None,
    };
    let href = format!(
        "/?band={}&owner={}&segment={}&q={}&sort={column}&order={next_order}",
        enc(view.band),
        enc(view.owner),
        enc(view.segment),
        enc(view.q)
    );
    html! {
        th scope="col" aria-sort=[aria] {
            a href=(href) { (label) @if active { span aria-hidden="true" { @if view.order == "asc" { " ↑" } @else { " ↓" } } } }
        }
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The morning view: the risk list.
pub fn risk_list(session: &Session, v: &RiskView<'_>) -> Markup {
    layout(
        "Risk list",
        Some(session),
        "Risk list",
        html! {
            h1 { "Risk list" }
            p.meta { "Run " code { (v.run_id) } ", snapshot " (v.snapshot) ". " (v.total) " customers match; sorted by " (v.sort.replace('_', " ")) "." }
            form.filters method="get" action="/" role="search" {
                div {
                    label for="band" { "Band" }
                    select #band name="band" {
                        option value="" selected[v.band.is_empty()] { "all" }
                        @for b in ["red", "yellow", "green"] {
                            option value=(b) selected[v.band == b] { (b) }
                        }
                    }
                }
                div {
                    label for="owner" { "Owner" }
                    input #owner name="owner" value=(v.owner) placeholder="account manager id" size="10";
                }
                div {
                    label for="segment" { "Segment" }
                    input #segment name="segment" value=(v.segment) placeholder="plan" size="10";
                }
                div {
                    label for="q" { "Customer" }
                    input #q name="q" type="search" value=(v.q) placeholder="id or name";
                }
                input type="hidden" name="sort" value=(v.sort);
                input type="hidden" name="order" value=(v.order);
                button type="submit" { "Filter" }
                @if let Some(me) = v.my_owner {
                    a.button href=(format!("/?owner={}", enc(me))) { "My accounts" }
                }
                a.button href=(format!("/risk-list.csv?{}", v.query)) download { "Export CSV" }
            }
            div.scroll {
                table.risk {
                    caption.sr { "Customers by expected loss" }
                    thead { tr {
                        (sort_link(v, "name", "Customer"))
                        (sort_link(v, "owner", "Owner"))
                        (sort_link(v, "band", "Band"))
                        (sort_link(v, "health", "Health"))
                        (sort_link(v, "churn_probability", "Churn p"))
                        (sort_link(v, "clv", "CLV"))
                        (sort_link(v, "expected_loss", "Expected loss"))
                        th scope="col" { "Top reason" }
                        th scope="col" { "Intervention" }
                    } }
                    tbody {
                        @for r in v.rows {
                            tr {
                                td { a href=(format!("/customers/{}", enc(&r.customer_id))) { (r.name.as_deref().unwrap_or(&r.customer_id)) } }
                                td { @match (r.owner_name.as_deref(), r.owner.as_deref()) {
                                    (Some(name), Some(id)) => { (name) " " span.meta { "#" (id) } },
                                    (None, Some(id)) => (id),
                                    _ => "–",
                                } }
                                td { (band(&r.band)) }
                                td.num { (format!("{:.1}", r.health)) " " (trend(r.health_change, &r.trend)) }
                                td.num { (format!("{:.1}%", 100.0 * r.churn_probability)) }
                                td.num { (money(r.clv)) }
                                td.num { (money(r.expected_loss)) }
                                td { @if let Some(x) = r.reasons.first() { (plain_reason(x)) } @else { "–" } }
                                td { (r.intervention.as_deref().unwrap_or("–")) }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                a href=(format!("/?{}", v.query)) { "First page" }
                @if let Some(n) = &v.next { " " a rel="next" href=(n) { "Next page" } }
            }
        },
    )
}

/// An intervention row of the customer page or the board.
pub struct InterventionRow {
    /// Id.
    pub id: i64,
    /// Customer id.
    pub customer_id: String,
    /// Playbook.
    pub playbook: String,
    /// Owner.
    pub owner: String,
    /// Status.
    pub status: String,
    /// Arm.
    pub arm: String,
    /// Created (date).
    pub created: String,
    /// Due (date and time).
    pub due: String,
    /// Past due and still open.
    pub overdue: bool,
    /// Staff outcome.
    pub outcome: Option<String>,
    /// The expected-value gate as decided: churn probability × CLV ×
    /// effect − cost = expected value saved.
    pub gate: String,
    /// Priority.
    pub priority: u32,
    /// SLA due (Unix seconds), for sorting.
    pub due_at: i64,
    /// Open and due within a day.
    pub due_today: bool,
    /// The customer's name, when known.
    pub customer_name: Option<String>,
    /// Latest health index.
    pub health: Option<f64>,
    /// Latest band.
    pub band: Option<String>,
    /// Churn probability when planned.
    pub churn_probability: f64,
    /// Churn probability × CLV when planned.
    pub expected_loss: f64,
    /// The strongest reason, in words with its direction.
    pub reason: Option<String>,
    /// Where its webhook deliveries stand (`crm: delivered`), if any.
    pub delivery: Vec<String>,
}

/// The board's view settings.
pub struct BoardOptions<'a> {
    /// Only the signed-in owner's items.
    pub mine: bool,
    /// Ordered by expected loss instead of urgency.
    pub by_value: bool,
    /// Dead webhook deliveries (admins only; empty otherwise).
    pub dead: &'a [churnguard_store::Delivery],
}

fn outcome_forms(session: &Session, i: &InterventionRow, back: &str) -> Markup {
    html! {
        @if crate::auth::may_act_on(session.role, session.owner.as_deref(), Some(&i.owner)) && i.arm == "treated" {
            form.inline method="post" action=(format!("/interventions/{}/outcome", i.id)) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="back" value=(back);
                label for=(format!("outcome-{}", i.id)) { "Outcome" }
                select id=(format!("outcome-{}", i.id)) name="outcome" {
                    @for o in ["retained", "churned", "unreachable", "declined"] { option value=(o) { (o) } }
                }
                label.sr for=(format!("note-{}", i.id)) { "Note" }
                input id=(format!("note-{}", i.id)) name="note" placeholder="note" size="12";
                button type="submit" data-confirm="Record this outcome?" { "Record outcome" }
            }
            @if i.status == "open" {
                form.inline method="post" action=(format!("/interventions/{}/done", i.id)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="back" value=(back);
                    button type="submit" data-confirm="Mark as done?" { "Mark done" }
                }
            }
        }
    }
}

/// What the customer page shows.
pub struct CustomerView<'a> {
    /// The newest score.
    pub latest: &'a CustomerScoreRecord,
    /// Every score, oldest first.
    pub history: Vec<(String, f64)>,
    /// Interventions on record.
    pub interventions: Vec<InterventionRow>,
    /// A message after an action.
    pub flash: Option<&'a str>,
    /// From the serving model's lifetime curve at the latest probability:
    /// the model version, survival month by month, expected months.
    pub lifetime: Option<(String, Vec<f64>, f64)>,
    /// The customer's overrides, newest first.
    pub overrides: Vec<churnguard_store::Override>,
    /// Whether this session may set and end overrides on the customer.
    pub may_override: bool,
    /// Unix seconds now (whether an override is in force).
    pub now: i64,
}

fn overrides_section(session: &Session, v: &CustomerView<'_>) -> Markup {
    let r = v.latest;
    let active = v.overrides.iter().find(|o| o.is_active(v.now));
    let when = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    html! {
        section.card aria-labelledby="h-override" {
            h2 #h-override { "Override" }
            @match active {
                Some(o) => {
                    p role="status" {
                        @if let Some(b) = &o.band { "Band set to " (band(b)) " " }
                        @if o.suppress { "New interventions stopped " }
                        "by " strong { (o.actor) } " until the end of " (when(o.expires_at - 1)) ": "
                        q { (o.reason) }
                    }
                    p.meta {
                        "Computed band at the latest run: " (band(r.computed_band.as_deref().unwrap_or(&r.band)))
                        ". Scoring runs keep the override until it lapses, then the computed band shows again."
                    }
                    @if v.may_override {
                        form.inline method="post" action=(format!("/overrides/{}/revoke", o.id)) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            input type="hidden" name="back" value=(format!("/customers/{}", enc(&r.customer_id)));
                            button type="submit" { "End override now" }
                        }
                    }
                }
                None => {
                    p { "The band is the one the health index computed." }
                }
            }
            @if v.may_override {
                details open[active.is_none()] {
                    summary { "Override the band or stop interventions" }
                    form.stack method="post" action=(format!("/customers/{}/override", enc(&r.customer_id))) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        div {
                            label for="ov-band" { "Band" }
                            select #ov-band name="band" {
                                option value="" { "Keep the computed band" }
                                @for b in ["green", "yellow", "red"] { option value=(b) { (b) } }
                            }
                        }
                        div {
                            input #ov-suppress type="checkbox" name="suppress" value="1";
                            label for="ov-suppress" { "Stop new interventions" }
                        }
                        div {
                            label for="ov-reason" { "Reason" }
                            input #ov-reason type="text" name="reason" required maxlength="1000" placeholder="e.g. renewal signed, paperwork follows";
                        }
                        div {
                            label for="ov-until" { "Until (last day)" }
                            input #ov-until type="date" name="expires_on" required;
                        }
                        button type="submit" { "Save override" }
                    }
                }
            }
            @let past: Vec<_> = v.overrides.iter().filter(|o| active.is_none_or(|a| a.id != o.id)).collect();
            @if !past.is_empty() {
                details {
                    summary { "Earlier overrides (" (past.len()) ")" }
                    ul { @for o in past {
                        li {
                            (when(o.created_at)) ": "
                            @if let Some(b) = &o.band { "band " (b) " " }
                            @if o.suppress { "interventions stopped " }
                            "by " (o.actor) ", " q { (o.reason) }
                            @match (&o.revoked_by, o.revoked_at) {
                                (Some(who), Some(at)) => { " — ended by " (who) " on " (when(at)) }
                                _ => { " — lapsed " (when(o.expires_at - 1)) }
                            }
                        }
                    } }
                }
            }
        }
    }
}

/// One customer: gauge, components, history, reasons, value, interventions.
pub fn customer(session: &Session, v: &CustomerView<'_>) -> Markup {
    let r = v.latest;
    let title = r.name.clone().unwrap_or_else(|| r.customer_id.clone());
    let back = format!("/customers/{}", enc(&r.customer_id));
    layout(
        &title,
        Some(session),
        "",
        html! {
            p { a href="/" { "← Risk list" } }
            h1 { (title) " " span.id { "#" (r.customer_id) } }
            @if let Some(f) = v.flash { p.flash role="status" { (f) } }
            div.cards {
                section.card aria-labelledby="h-health" {
                    h2 #h-health { "Health" }
                    (charts::gauge(r.health, &format!("{} band", r.band)))
                    p { (band(&r.band)) " " (trend(r.health_change, &r.trend)) " · profile " (r.profile) }
                    @if let Some(computed) = &r.computed_band {
                        p.meta { "Band set by staff; the index computed " (band(computed)) " at this run." }
                    }
                    h3 { "Why the score is what it is" }
                    (charts::component_bars(&r.components))
                }
                section.card aria-labelledby="h-risk" {
                    h2 #h-risk { "Churn risk" }
                    p.big { (format!("{:.1}%", 100.0 * r.churn_probability)) }
                    p { "Most likely type: " (r.churn_type.as_deref().unwrap_or("unknown")) }
                    h3 { "Top reasons" }
                    @if r.reasons.is_empty() { p { "No input pushes this customer's risk up." } }
                    ol { @for x in &r.reasons { li { (plain_reason(x)) } } }
                }
                section.card aria-labelledby="h-value" {
                    h2 #h-value { "Value" }
                    dl {
                        dt { "CLV" } dd { (money(r.clv)) }
                        dt { "CLV / CAC" } dd { @if let Some(x) = r.clv_cac { (format!("{x:.1}")) @if x < 3.0 { " " span.warn { "below 3" } } } @else { "–" } }
                        dt { "Expected loss" } dd { (money(r.expected_loss)) }
                        dt { "Owner" } dd { @match (r.owner_name.as_deref(), r.owner.as_deref()) {
                            (Some(name), Some(id)) => { (name) " (#" (id) ")" },
                            (None, Some(id)) => (id),
                            _ => "–",
                        } }
                        dt { "Segment" } dd { (r.segment.as_deref().unwrap_or("–")) }
                    }
                }
            }
            (overrides_section(session, v))
            section aria-labelledby="h-history" {
                h2 #h-history { "Health history" }
                (charts::history_line(&v.history))
            }
            @if let Some((version, curve, months)) = &v.lifetime {
                section aria-labelledby="h-stay" {
                    h2 #h-stay { "How long they may stay" }
                    p { (format!("Expected to stay about {months:.0} more months.")) " "
                        "CLV adds up, month by month, the chance of still being a customer (below) × margin × MRR, "
                        "with the plan's usual growth, discounted; expected loss is the churn probability × CLV." }
                    (charts::survival_line(curve))
                    p.muted { (format!("From model {version}'s lifetime curve, learned from how customers with this risk fared later.")) }
                }
            }
            section aria-labelledby="h-iv" {
                h2 #h-iv { "Interventions" }
                @if v.interventions.is_empty() { p { "None on record." } }
                @else {
                    div.scroll { table {
                        thead { tr { th scope="col" { "Playbook" } th scope="col" { "Owner" } th scope="col" { "Status" } th scope="col" { "Created" } th scope="col" { "Due" } th scope="col" { "Delivered to" } th scope="col" { "Outcome" } th scope="col" { "Actions" } } }
                        tbody { @for i in &v.interventions {
                            tr.overdue[i.overdue] {
                                td { (i.playbook) @if i.arm == "control" { " " span.tag { "control" } } }
                                td { (i.owner) }
                                td { (i.status) @if i.overdue { " " span.warn { "overdue" } } }
                                td { (i.created) }
                                td { (i.due) }
                                td.delivery { @if i.delivery.is_empty() { "–" } @else { (i.delivery.join("; ")) } }
                                td { (i.outcome.as_deref().unwrap_or("–")) }
                                td { (outcome_forms(session, i, &back)) }
                            }
                        } }
                    } }
                }
            }
        },
    )
}

/// The interventions board: open work by owner, overdue first, and the save rate.
pub fn board(
    session: &Session,
    as_of: &str,
    by_owner: &[(String, Vec<InterventionRow>)],
    report: &OutcomeReport,
    power: &[PlaybookPower],
    names: &HashMap<String, String>,
    options: BoardOptions<'_>,
) -> Markup {
    let save = report.overall.as_ref();
    let rate_cell = |s: Option<&SaveRate>| -> Markup {
        match s {
            Some(s) => html! {
                td.num { (s.treated.customers) }
                td.num { (format!("{:.1}%", 100.0 * s.treated.churn_rate())) }
                td.num { (s.control.customers) }
                td.num { (format!("{:.1}%", 100.0 * s.control.churn_rate())) }
                td.num { (format!("{:.1}%", 100.0 * s.treated_retention)) }
                td { (format!("{:+.1} ({:+.1} to {:+.1})", 100.0 * s.absolute, 100.0 * s.absolute_ci.0, 100.0 * s.absolute_ci.1)) }
            },
            None => html! { td colspan="6" { "not enough settled outcomes in both arms yet" } },
        }
    };
    let rate_head = html! {
        th scope="col" { "Treated" } th scope="col" { "Treated churn" }
        th scope="col" { "Control" } th scope="col" { "Control churn" }
        th scope="col" { "Warned customers retained" }
        th scope="col" { "Save rate, points (95% interval)" }
    };
    layout(
        "Interventions",
        Some(session),
        "Interventions",
        html! {
            h1 { "Interventions" }
            form.filters method="get" action="/interventions" aria-label="Filter interventions" {
                div {
                    label for="mine" { "Show" }
                    select #mine name="mine" {
                        option value="0" selected[!options.mine] { "Everyone's" }
                        option value="1" selected[options.mine] { "Mine" }
                    }
                }
                div {
                    label for="sort" { "Order" }
                    select #sort name="sort" {
                        option value="urgency" selected[!options.by_value] { "Most urgent first" }
                        option value="value" selected[options.by_value] { "Most value at risk first" }
                    }
                }
                div { button type="submit" { "Apply" } }
            }
            p.meta {
                "Open interventions as of " (as_of) ", "
                @if options.by_value { "largest expected loss first" } @else { "most urgent first (overdue, then priority, then due time)" }
                ". Expected loss = churn probability × lifetime value."
            }
            @if options.mine && session.owner.is_none() {
                p.warn { "Your key names no account manager, so no interventions are yours: ask an admin to set " code { "owner" } " on it." }
            }
            @if by_owner.is_empty() { p { "No open interventions." } }
            @for (owner, rows) in by_owner {
                section.owner aria-label=(format!("Owner {}", owner_label(owner, names))) {
                    h2 { (owner_label(owner, names)) " " span.count { "(" (rows.len()) ")" } }
                    div.scroll { table {
                        thead { tr {
                            th scope="col" { "Customer" } th scope="col" { "Health" }
                            th scope="col" { "Churn risk" } th scope="col" { "Expected loss" }
                            th scope="col" { "Why" } th scope="col" { "Playbook" }
                            th scope="col" { "Due" } th scope="col" { "Actions" }
                        } }
                        tbody { @for i in rows {
                            tr.overdue[i.overdue] {
                                td {
                                    a href=(format!("/customers/{}", enc(&i.customer_id))) {
                                        @match &i.customer_name { Some(n) => { (n) " " span.meta { "#" (i.customer_id) } }, None => (i.customer_id) }
                                    }
                                }
                                td { @match (i.health, &i.band) {
                                    (Some(h), Some(b)) => { (format!("{h:.0}")) " " (band(b)) },
                                    _ => "–",
                                } }
                                td.num { (format!("{:.0}%", 100.0 * i.churn_probability)) }
                                td.num title=(format!("Decision: {}", i.gate)) { (format!("{:.0}", i.expected_loss)) }
                                td { @match &i.reason { Some(r) => (r), None => "–" } }
                                td { (i.playbook) " " span.meta { "priority " (i.priority) } }
                                td {
                                    (i.due) " "
                                    @if i.overdue { span.warn { "overdue" } }
                                    @else if i.due_today { span.meta { "due today" } }
                                    @else { span.meta { "on time" } }
                                }
                                td { (outcome_forms(session, i, "/interventions")) }
                            }
                        } }
                    } }
                }
            }
            section.card aria-labelledby="h-save" {
                h2 #h-save { "Treated against control" }
                @if let Some(s) = save {
                    p {
                        "Churn within the outcome window: treated " strong { (format!("{:.1}%", 100.0 * s.treated.churn_rate())) }
                        " (" (s.treated.customers) " customers), control " strong { (format!("{:.1}%", 100.0 * s.control.churn_rate())) }
                        " (" (s.control.customers) ")."
                    }
                    p {
                        "Save rate " strong { (format!("{:+.1} points", 100.0 * s.absolute)) }
                        " (95% interval " (format!("{:+.1} to {:+.1}", 100.0 * s.absolute_ci.0, 100.0 * s.absolute_ci.1)) ")"
                        @if let (Some(r), Some((a, b))) = (s.relative, s.relative_ci) {
                            "; " (format!("{:.0}%", 100.0 * r)) " of would-be churners saved (" (format!("{:.0}% to {:.0}%", 100.0 * a, 100.0 * b)) ")"
                        }
                        "."
                    }
                } @else {
                    p { "No settled outcomes in both arms yet: run " code { "churnguard outcomes" } " once churn data after the interventions is in." }
                }
                p.meta { "The control group is drawn from the customers the policy would have treated (after eligibility, cooldowns, the value gate and capacity), so both groups are alike and the difference is the effect." }
            }
            section.card aria-labelledby="h-playbooks" {
                h2 #h-playbooks { "By playbook" }
                div.scroll { table {
                    thead { tr { th scope="col" { "Playbook" } (rate_head) } }
                    tbody { @for p in &report.playbooks {
                        tr { td { (p.playbook) } (rate_cell(p.save_rate.as_ref())) }
                    } }
                } }
            }
            section.card aria-labelledby="h-owners" {
                h2 #h-owners { "By owner" }
                div.scroll { table {
                    thead { tr { th scope="col" { "Owner" } (rate_head) } }
                    tbody { @for o in &report.owners {
                        tr { td { (owner_label(&o.owner, names)) } (rate_cell(o.save_rate.as_ref())) }
                    } }
                } }
            }
            section.card aria-labelledby="h-power" {
                h2 #h-power { "How many customers each experiment needs" }
                p.meta { "To detect the playbook's assumed effect with 80% power at the 5% level, at the control group's churn rate." }
                div.scroll { table {
                    thead { tr {
                        th scope="col" { "Playbook" } th scope="col" { "Assumed effect" }
                        th scope="col" { "Control churn rate" } th scope="col" { "Customers needed" }
                        th scope="col" { "Settled so far" }
                    } }
                    tbody { @for p in power {
                        tr {
                            td { (p.playbook) }
                            td.num { (format!("{:.0}%", 100.0 * p.plan.relative_effect)) }
                            td.num { (format!("{:.1}%", 100.0 * p.plan.control_rate)) @if !p.measured_control_rate { " (assumed)" } }
                            td.num { @match p.plan.selected { Some(n) => (n), None => "–" } }
                            td.num { (p.settled) @if let Some(f) = p.progress { " (" (format!("{:.0}%", 100.0 * f)) ")" } }
                        }
                    } }
                } }
            }
            @if !options.dead.is_empty() {
                section.card aria-labelledby="h-dead" {
                    h2 #h-dead { "Deliveries that failed (" (options.dead.len()) ")" }
                    p.meta { "These interventions never reached a webhook after every retry. Fix the receiver, then retry with " code { "churnguard deliver --retry ID --webhook NAME" } " or " code { "POST /v1/deliveries/{id}/retry" } "." }
                    div.scroll { table {
                        thead { tr { th scope="col" { "Intervention" } th scope="col" { "Webhook" } th scope="col" { "Attempts" } th scope="col" { "Last error" } } }
                        tbody { @for d in options.dead {
                            tr { td.num { (d.intervention_id) } td { (d.webhook) } td.num { (d.attempts) } td { (d.last_error.as_deref().unwrap_or("–")) } }
                        } }
                    } }
                }
            }
        },
    )
}

/// The KPI page.
pub fn kpi(
    session: &Session,
    role: &str,
    stage: &str,
    run: Option<&str>,
    cards: &[serde_json::Value],
    weights: &[serde_json::Value],
) -> Markup {
    let metrics: Vec<String> = cards
        .first()
        .and_then(|c| c["metrics"].as_array())
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["metric"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    layout(
        "KPI",
        Some(session),
        "KPI",
        html! {
            h1 { "KPI scorecards" }
            form.filters method="get" action="/kpi" {
                div {
                    label for="role" { "Role" }
                    select #role name="role" {
                        @for (v, l) in [("account_manager", "Account managers"), ("acquisition", "Acquisition reps")] {
                            option value=(v) selected[role == v] { (l) }
                        }
                    }
                }
                div {
                    label for="stage" { "Business stage" }
                    select #stage name="stage" {
                        @for s in ["balanced", "growth", "mature"] { option value=(s) selected[stage == s] { (s) } }
                    }
                }
                button type="submit" { "Show" }
            }
            @match run {
                None => p { "No scoring run yet." },
                Some(run) => {
                    p.meta { "Run " code { (run) } ". Metrics are normalised within peer groups (the region; the whole role where a region has fewer than 3 people; 50 = the group's mean); each cell shows the measured value and the points it adds to the score. ★ marks the top 10%. The risk-adjusted score compares each metric with what books of the same starting churn risk achieved (50 = as expected); it needs a run from 90 days before." }
                    div.scroll { table.kpi {
                        thead { tr {
                            th scope="col" { "Rank" } th scope="col" { "Name" } th scope="col" { "Peers" } th scope="col" { "Customers" } th scope="col" { "Score" }
                            th scope="col" { "Risk-adjusted score" } th scope="col" { "Book risk at start" }
                            @for m in &metrics { th scope="col" title=(m) { (metric_label(m)) } }
                        } }
                        tbody { @for c in cards {
                            tr {
                                td.num { (c["rank"]) @if c["top"].as_bool() == Some(true) { " " span title="top 10%" { "★" } span.sr { "top 10%" } } }
                                td { (c["name"].as_str().unwrap_or("")) }
                                td { @let g = c["peer_group"].as_str().unwrap_or(""); span title=(g) { (region_name(g)) } }
                                td.num { (c["customers"]) @if c["too_few"].as_bool() == Some(true) { " " span.warn title="too few customers to judge by" { "too few" } } }
                                td.num { strong { (format!("{:.1}", c["composite"].as_f64().unwrap_or(0.0))) } }
                                td.num { @match c["adjusted_composite"].as_f64() {
                                    Some(a) => { (format!("{a:.1}")) " " span.muted { "(#" (c["adjusted_rank"]) ")" } },
                                    None => span.muted { "–" },
                                } }
                                td.num { @match c["book_risk"].as_f64() { Some(r) => (format!("{:.1}%", 100.0 * r)), None => span.muted { "–" } } }
                                @for m in c["metrics"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                                    @let name = m["metric"].as_str().unwrap_or("");
                                    td.num {
                                        // The measured value first, in its unit; then what
                                        // it adds to the score, or that it is shown only.
                                        @match m["value"].as_f64() {
                                            Some(x) => (metric_value(name, x)),
                                            None => span.muted title="no customers with data for it" { "no data" },
                                        }
                                        br;
                                        @if m["weight"].as_f64().unwrap_or(0.0) > 0.0 {
                                            span.muted { (format!("+{:.1} pts", m["contribution"].as_f64().unwrap_or(0.0))) }
                                        } @else { span.muted title="weight 0 at this stage: shown, not counted in the score" { "not scored" } }
                                    }
                                }
                            }
                        } }
                    } }
                    h2 { "Configured and data-driven weights" }
                    p.meta { "Suggested weights follow each metric's rank correlation with the retention of the employees' customers; they describe association, not cause." }
                    table {
                        thead { tr { th scope="col" { "Metric" } th scope="col" { "Configured" } th scope="col" { "Correlation" } th scope="col" { "Suggested" } } }
                        tbody { @for w in weights {
                            tr {
                                td { (metric_label(w["metric"].as_str().unwrap_or(""))) }
                                td.num { (format!("{:.0}%", 100.0 * w["configured"].as_f64().unwrap_or(0.0))) }
                                td.num { @match w["correlation"].as_f64() { Some(x) => (format!("{x:+.2}")), None => "–" } }
                                td.num { (format!("{:.0}%", 100.0 * w["suggested"].as_f64().unwrap_or(0.0))) }
                            }
                        } }
                    }
                }
            }
        },
    )
}

/// One registry row.
pub struct ModelRow {
    /// Id.
    pub id: String,
    /// Family.
    pub family: String,
    /// Created.
    pub created: String,
    /// Test metrics.
    pub roc_auc: Option<f64>,
    /// Test PR-AUC.
    pub pr_auc: Option<f64>,
    /// Test log loss.
    pub log_loss: f64,
    /// Test Brier.
    pub brier: f64,
    /// Champion.
    pub champion: bool,
    /// Serving.
    pub serving: bool,
    /// Has a report.
    pub report: bool,
}

/// The models page: registry, champion, leaderboard, reports.
/// An owner for people: an account manager's name with the id a machine
/// needs (`Kavya Almeida (#2)`); a team queue (billing, automation) as is.
fn owner_label(owner: &str, names: &HashMap<String, String>) -> String {
    match names.get(owner) {
        Some(name) => format!("{name} (#{owner})"),
        None => owner.to_string(),
    }
}

/// A sales region's name (the data holds codes; `na` read as "not available").
fn region_name(code: &str) -> &str {
    match code {
        "na" => "North America",
        "emea" => "Europe, Middle East, Africa",
        "apac" => "Asia-Pacific",
        "latam" => "Latin America",
        "all" => "whole role",
        other => other,
    }
}

/// A KPI metric's name for staff.
fn metric_label(name: &str) -> &str {
    match name {
        "health_level" => "Average health",
        "health_change" => "Health change",
        "satisfaction" => "NPS",
        "expansion" => "Expansion (90 days)",
        "activation" => "Activation",
        "renewal" => "Renewals",
        "cac" => "Acquisition cost",
        "conversion" => "Lead conversion",
        "clv" => "CLV brought in",
        "retention" => "Customers kept (90 days)",
        "save_rate" => "Save rate",
        other => other,
    }
}

/// A KPI metric's value in its unit.
fn metric_value(name: &str, x: f64) -> String {
    match name {
        "retention" | "activation" | "renewal" | "conversion" | "expansion" => {
            format!("{:.1}%", 100.0 * x)
        }
        "save_rate" => format!("{:+.1} pts", 100.0 * x),
        "cac" | "clv" => money(x),
        _ => format!("{x:.1}"),
    }
}

/// Cohort retention of the latest run: observed survivors against the
/// shifted-beta-geometric projection, per signup month.
pub fn retention(
    session: &Session,
    run: Option<(&str, &[churnguard_core::value::cohorts::CohortRetention])>,
) -> Markup {
    let pct = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |x| format!("{:.0}%", 100.0 * x));
    layout(
        "Retention",
        Some(session),
        "Retention",
        html! {
            h1 { "Retention by signup month" }
            @match run {
                None => p { "No scoring run on event data yet: run `churnguard score` on the event tables." },
                Some((run_id, cohorts)) => {
                    p.meta {
                        "Customers who signed up in the same month, counted at each monthly anniversary the data has seen "
                        "(solid), and the shifted-beta-geometric projection fitted to them (dashed; Fader & Hardie 2007). "
                        "Run " code { (run_id) } "."
                    }
                    // The six latest cohorts seen for at least six months, with a fit.
                    @let drawn: Vec<_> = cohorts.iter().filter(|c| c.alpha_beta.is_some() && c.survivors.len() > 6).rev().take(6).collect();
                    (charts::cohort_lines(&drawn))
                    div.scroll { table {
                        thead { tr {
                            th scope="col" { "Signup month" } th scope="col" { "Customers" }
                            th scope="col" { "Months seen" } th scope="col" { "Still customers" }
                            th scope="col" { "Projected at 12 months" } th scope="col" { "Projected at 24 months" }
                            th scope="col" { "α, β" }
                        } }
                        tbody { @for c in cohorts.iter().rev() {
                            tr {
                                td { (c.cohort) }
                                td { (c.customers) }
                                td { (c.survivors.len().saturating_sub(1)) }
                                td { (pct(c.survivors.last().map(|n| *n as f64 / c.customers.max(1) as f64))) }
                                td { (pct(c.projected.get(12).copied())) }
                                td { (pct(c.projected.get(24).copied())) }
                                td { @match (c.alpha_beta, &c.note) {
                                    // A fit at the search's edge (no churn seen, or a
                                    // constant rate): the parameters mean nothing alone.
                                    (Some((a, b)), _) if !(1e-3..1e4).contains(&a) || !(1e-3..1e4).contains(&b) => span.muted { "boundary fit (no interior optimum)" },
                                    (Some((a, b)), _) => (format!("{a:.2}, {b:.2}")),
                                    (None, Some(n)) => span.muted { (n) },
                                    (None, None) => "–",
                                } }
                            }
                        } }
                    } }
                }
            }
        },
    )
}

pub fn models(session: &Session, rows: &[ModelRow]) -> Markup {
    let opt = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |x| format!("{x:.3}"));
    layout(
        "Models",
        Some(session),
        "Models",
        html! {
            h1 { "Models" }
            p.meta { "Newest first. Test metrics are on held-out rows the model never saw." }
            div.scroll { table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "Family" } th scope="col" { "Trained" } th scope="col" { "ROC-AUC" } th scope="col" { "PR-AUC" } th scope="col" { "Log loss" } th scope="col" { "Brier" } th scope="col" { "Status" } th scope="col" { "Report" } } }
                tbody { @for m in rows {
                    tr {
                        td { code { (m.id) } }
                        td { (m.family) }
                        td { (m.created) }
                        td.num { (opt(m.roc_auc)) }
                        td.num { (opt(m.pr_auc)) }
                        td.num { (format!("{:.4}", m.log_loss)) }
                        td.num { (format!("{:.4}", m.brier)) }
                        td { @if m.champion { span.tag { "champion" } } " " @if m.serving { span.tag { "serving" } } }
                        td { @if m.report { a href=(format!("/models/{}/report", enc(&m.id))) { "Training report" } } @else { "–" } }
                    }
                } }
            } }
        },
    )
}

/// A plain message page (errors, forbidden).
pub fn message(session: Option<&Session>, title: &str, text: &str) -> Markup {
    layout(
        title,
        session,
        "",
        html! { h1 { (title) } p { (text) } p { a href="/" { "Back to the risk list" } } },
    )
}

/// A drift report as a table: the score first, then the `inputs` worst
/// inputs.
fn drift_table(d: &churnguard_core::monitor::DriftReport, inputs: usize) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th scope="col" { "Input" } th scope="col" { "PSI" } th scope="col" { "Jensen–Shannon" } th scope="col" { "Level" } } }
            tbody {
                tr { td { strong { "churn probability (the score)" } } td.num { (format!("{:.3}", d.score.psi)) } td.num { (format!("{:.3}", d.score.js)) } td { (d.score.level.name()) } }
                @for i in d.inputs.iter().take(inputs) {
                    tr { td { (i.name) @if i.calendar { " " span.meta { "moves with the calendar: shown, not counted" } } } td.num { (format!("{:.3}", i.psi)) } td.num { (format!("{:.3}", i.js)) } td { (i.level.name()) } }
                }
            }
        } }
    }
}

/// What the monitoring page shows.
pub struct MonitoringView<'a> {
    /// The latest run and its model.
    pub run: Option<(&'a str, &'a str)>,
    /// Its drift.
    pub drift: Option<&'a churnguard_core::monitor::DriftReport>,
    /// The triggers' verdict.
    pub verdict: &'a str,
    /// What fired.
    pub findings: &'a [churnguard_core::monitor::Finding],
    /// Mean churn probability per run snapshot.
    pub mean_score: &'a [(String, f64)],
    /// The shadow challenger's comparison.
    pub shadow: Option<&'a crate::routes::ShadowStatus>,
    /// Drift of this replica's recent online requests.
    pub online: Option<&'a churnguard_core::monitor::DriftReport>,
}

/// The monitoring page: is the model still fit for the customers it scores?
pub fn monitoring(session: &Session, view: &MonitoringView<'_>) -> Markup {
    let MonitoringView {
        run,
        drift,
        verdict,
        findings,
        mean_score,
        shadow,
        online,
    } = *view;
    layout(
        "Monitoring",
        Some(session),
        "Monitoring",
        html! {
            h1 { "Monitoring" }
            @match run {
                None => p { "No scoring run yet." },
                Some((run_id, model_id)) => {
                    section.card aria-labelledby="h-verdict" {
                        h2 #h-verdict { "Verdict: " (verdict) }
                        p.meta { "Latest run " code { (run_id) } ", model " code { (model_id) } ". " code { "churnguard monitor --events" } " adds the realised performance once later churn data is in (exit 0 healthy, 4 warning, 5 action)." }
                        @if findings.is_empty() { p { "Nothing fired." } }
                        ul { @for f in findings { li { strong { (f.verdict.name()) } ": " (f.message) } } }
                    }
                    @match drift {
                        None => p { "This model has no training baseline (it was saved before baselines were kept): retrain it to watch drift." },
                        Some(d) => {
                            section.card aria-labelledby="h-drift" {
                                h2 #h-drift { "Drift against the training baseline" }
                                p.meta { (d.rows) " customers in the run. PSI below 0.1: nothing to see; 0.1–0.25: watch; above: drifted. Worst first." }
                                (drift_table(d, d.inputs.len()))
                                h3 { "Baseline against now" }
                                div.charts {
                                    figure {
                                        (super::charts::drift_bars("churn probability", &d.score.expected, &d.score.actual, &d.score.bins))
                                        figcaption { "churn probability, the score (PSI " (format!("{:.3}", d.score.psi)) ")" }
                                    }
                                    @for i in d.inputs.iter().take(6) {
                                        figure {
                                            (super::charts::drift_bars(&i.name, &i.expected, &i.actual, &i.bins))
                                            figcaption { (i.name) " (PSI " (format!("{:.3}", i.psi)) ")" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(d) = online {
                        section.card aria-labelledby="h-online" {
                            h2 #h-online { "Drift of today's online requests" }
                            p.meta { "The last " (d.rows) " customers scored through the API on this server, against the serving model's training baseline. Below 500 there is no verdict." }
                            (drift_table(d, 8))
                        }
                    }
                    @if let Some(sh) = shadow {
                        section.card aria-labelledby="h-shadow" {
                            h2 #h-shadow { "Shadow challenger" }
                            p.meta {
                                "Model " code { (sh.shadow_model) }
                                @if sh.serving { " is scored beside the champion on every sampled request; customers only ever get the champion's score." } @else { " is no longer scored (removed or promoted); its recorded pairs are shown." }
                                " " (sh.pairs) " pairs of " (sh.customers) " customers recorded."
                            }
                            @match &sh.agreement {
                                None => p { "Too few pairs to compare yet (at least 100)." },
                                Some(a) => {
                                    div.scroll { table {
                                        thead { tr { th scope="col" { "Measure" } th scope="col" { "Value" } th scope="col" { "What it says" } } }
                                        tbody {
                                            tr { td { "Top-decile agreement" } td.num { (format!("{:.1}%", 100.0 * a.top_decile_agreement)) } td { "Of the champion's riskiest tenth, the share the challenger also puts there: who would get the first calls." } }
                                            tr { td { "Rank correlation" } td.num { (a.rank_correlation.map_or("–".into(), |v| format!("{v:.3}"))) } td { "1 means the same order of customers." } }
                                            tr { td { "Mean shift (challenger − champion)" } td.num { (format!("{:+.2} pts", 100.0 * a.mean_shift)) } td { "95% interval " (format!("{:+.2} to {:+.2}", 100.0 * a.mean_shift_interval.0, 100.0 * a.mean_shift_interval.1)) " points of probability, n = " (a.pairs) "." } }
                                            tr { td { "Mean absolute shift" } td.num { (format!("{:.2} pts", 100.0 * a.mean_absolute_shift)) } td { "How far a typical customer's score would move." } }
                                        }
                                    } }
                                }
                            }
                            p.meta { code { "churnguard monitor --events" } " adds both models' realised ROC-AUC once the horizon has passed; " code { "churnguard models promote-shadow" } " promotes the challenger (audit-logged, undone by " code { "models rollback" } ")." }
                            @if sh.recorder.dropped > 0 {
                                p { strong { (sh.recorder.dropped) " pairs were dropped" } " on this replica because the store fell behind; the comparison is of the rest." }
                            }
                        }
                    }
                    @if !mean_score.is_empty() {
                        section.card aria-labelledby="h-score" {
                            h2 #h-score { "Mean churn probability per run" }
                            div.scroll { table {
                                thead { tr { th scope="col" { "Snapshot" } th scope="col" { "Mean churn probability" } } }
                                tbody { @for (snapshot, mean) in mean_score {
                                    tr { td { (snapshot) } td.num { (format!("{mean:.1}%")) } }
                                } }
                            } }
                        }
                    }
                }
            }
        },
    )
}
