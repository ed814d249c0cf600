//! The seeded generator of a synthetic subscription company: the embedded
//! default data for demos, tests and benchmarks.
//!
//! Churn follows a documented latent model (see `data/README.md`, section
//! "The latent model"). Every customer carries hidden traits; every month
//! their engagement, satisfaction and support pain evolve, and a voluntary and
//! an involuntary churn hazard follow from them. The hazards are written to
//! `truth_hazard`, so [`oracle_probability`] can give the true probability of
//! churn in any window: the bar no model can beat.
//!
//! Generation is deterministic for a seed: each customer draws from its own
//! ChaCha stream, so the work parallelises without changing the result.

use chrono::{Datelike, Months, NaiveDate};
use polars::prelude::*;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};
use rayon::prelude::*;

use super::schema::{
    date_from_days, days_from_date, CHANNELS, CONTRACTS, PLANS, REGIONS, TICKET_CATEGORIES,
};
use super::{DataError, Result, Tables};

/// Names of the ground-truth tables written beside the event tables.
pub const TRUTH_TABLES: &[&str] = &["truth_hazard", "truth_customers", "truth_employees"];

/// Settings of the generator.
#[derive(Debug, Clone)]
pub struct GeneratorParams {
    /// Number of customers; defaults to `5000`.
    pub n_customers: usize,
    /// Months simulated; defaults to `24`.
    pub months: u32,
    /// Random seed; defaults to `42`.
    pub seed: u64,
    /// First day of the simulated period; defaults to 2023-01-01.
    pub start: NaiveDate,
}

impl Default for GeneratorParams {
    fn default() -> Self {
        GeneratorParams {
            n_customers: 5000,
            months: 24,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date"),
        }
    }
}

impl GeneratorParams {
    /// The first day after the simulated period.
    pub fn end(&self) -> NaiveDate {
        self.start + Months::new(self.months)
    }

    fn check(&self) -> Result<()> {
        let bad = |field, message: String| Err(DataError::BadParam { field, message });
        if self.n_customers == 0 || self.n_customers > 50_000_000 {
            return bad(
                "customers",
                format!("must be 1..=50000000, got {}", self.n_customers),
            );
        }
        if self.months < 2 || self.months > 240 {
            return bad("months", format!("must be 2..=240, got {}", self.months));
        }
        let today = chrono::Local::now().date_naive();
        if self.end() > today {
            return bad(
                "months",
                format!(
                    "the period {} + {} months ends after today ({today}); choose an earlier --start",
                    self.start, self.months
                ),
            );
        }
        Ok(())
    }
}

/// A generated company: its event tables and the ground truth behind them.
#[derive(Debug, Clone)]
pub struct Company {
    /// The observable event tables.
    pub tables: Tables,
    /// The hidden truth: hazards and latent traits.
    pub truth: Truth,
}

/// The generator's hidden truth.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Per customer and calendar month from signup to the end of the period:
    /// `customer_id`, `month_start`, `voluntary_hazard`, `involuntary_hazard`
    /// (probabilities for the month) and `alive` (false for months after the
    /// churn, whose hazards are those had the customer stayed).
    pub hazard: DataFrame,
    /// Per customer: latent traits.
    pub customers: DataFrame,
    /// Per employee: `employee_id`, `role`, `skill` (account managers'
    /// skill, acquisition reps' lead quality), standard normal.
    pub employees: DataFrame,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Coefficients of the latent churn model; `data/README.md` lists them.
mod model {
    pub const BASE: f64 = -4.3;
    pub const ENGAGEMENT: f64 = -0.8;
    pub const TREND: f64 = -1.0;
    pub const SATISFACTION: f64 = -0.5;
    pub const SUPPORT_PAIN: f64 = 0.4;
    pub const PRICE_SENSITIVITY: f64 = 0.35;
    pub const MANAGER_SKILL: f64 = -0.3;
    pub const RECENT_DOWNGRADE: f64 = 0.5;
    pub const MONTHLY: f64 = 0.7;
    pub const TERM_OFF_RENEWAL: f64 = -2.2;
    pub const TERM_RENEWAL: f64 = 1.0;
    pub const TENURE_UNDER_3: f64 = 0.7;
    pub const TENURE_UNDER_6: f64 = 0.35;
    pub const RETRY_SUCCESS: f64 = 0.55;
    pub const EXPIRED_RETRY_SUCCESS: f64 = 0.35;
    pub const CARD_EXPIRY: f64 = 0.03;
    pub const CANCEL_UNRECOVERED: f64 = 0.75;
}

const PRICE_PER_SEAT: [f64; 3] = [25.0, 45.0, 80.0];
const TERM_DISCOUNT: [f64; 3] = [1.0, 0.85, 0.75];

struct Employee {
    id: i64,
    name: String,
    role: &'static str,
    team: String,
    region: usize,
    skill: f64,
}

/// (opened, severity, category index, resolved day, resolution hours)
type TicketRow = (i32, i64, usize, Option<i32>, Option<f64>);

#[derive(Default)]
struct Sim {
    // customer row
    signup: i32,
    plan0: usize,
    contract: usize,
    region: usize,
    channel: usize,
    cac: f64,
    am: i64,
    rep: i64,
    name: String,
    traits: [f64; 4],
    never_active: bool,
    manual_payer: bool,
    // events
    subs: Vec<(i32, usize, i64, f64, &'static str)>,
    invoices: Vec<(i32, i32, f64)>,
    /// (invoice index within customer, date, attempt, amount, ok, days_late)
    payments: Vec<(usize, i32, i64, f64, bool, i64)>,
    usage: Vec<(i32, i64, i64, f64, i64)>,
    tickets: Vec<TicketRow>,
    surveys: Vec<(i32, &'static str, Option<i64>)>,
    churn: Option<(i32, &'static str, &'static str)>,
    /// (month start, voluntary, involuntary, alive at month start)
    hazard: Vec<(i32, f64, f64, bool)>,
}

/// Generates a whole company. Deterministic for `params`.
pub fn generate(params: &GeneratorParams) -> Result<Company> {
    params.check()?;
    let n = params.n_customers;
    let months = params.months as usize;
    let month_start: Vec<i32> = (0..=params.months)
        .map(|m| days_from_date(params.start + Months::new(m)))
        .collect();
    let end = month_start[months];

    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let normal = Normal::new(0.0, 1.0).expect("valid normal");
    let n_am = n.div_ceil(400).max(REGIONS.len());
    let n_rep = n.div_ceil(1500).max(2);
    let mut employees = Vec::with_capacity(n_am + n_rep);
    for i in 0..(n_am + n_rep) {
        let am = i < n_am;
        let region = i % REGIONS.len();
        employees.push(Employee {
            id: 1 + i as i64,
            name: person_name(&mut rng),
            role: if am { "account_manager" } else { "acquisition" },
            team: format!(
                "{}-{}",
                if am { "success" } else { "sales" },
                REGIONS[region]
            ),
            region,
            skill: normal.sample(&mut rng),
        });
    }
    let by_region = |am: bool, region: usize| -> Vec<usize> {
        employees
            .iter()
            .enumerate()
            .filter(|(_, e)| (e.role == "account_manager") == am && e.region == region)
            .map(|(i, _)| i)
            .collect()
    };
    let am_by_region: Vec<Vec<usize>> = (0..REGIONS.len()).map(|r| by_region(true, r)).collect();
    let rep_by_region: Vec<Vec<usize>> = (0..REGIONS.len())
        .map(|r| {
            let v = by_region(false, r);
            if v.is_empty() {
                (n_am..n_am + n_rep).collect()
            } else {
                v
            }
        })
        .collect();

    let sims: Vec<Sim> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
            rng.set_stream(1 + i as u64);
            simulate_customer(
                &mut rng,
                &month_start,
                &employees,
                &am_by_region,
                &rep_by_region,
            )
        })
        .collect();

    // Assemble the tables; global ids are assigned in customer order.
    let mut c = CustomerCols::default();
    let mut leads = LeadCols::default();
    let mut subs = SubCols::default();
    let mut inv = InvoiceCols::default();
    let mut pay = PaymentCols::default();
    let mut usage = UsageCols::default();
    let mut tick = TicketCols::default();
    let mut surv = SurveyCols::default();
    let mut churn = ChurnCols::default();
    let mut haz = HazardCols::default();
    let mut tc = TruthCustomerCols::default();
    let mut rep_customers = vec![0usize; employees.len()];
    for (i, s) in sims.iter().enumerate() {
        let id = 1 + i as i64;
        c.push(id, s);
        tc.push(id, s);
        rep_customers[(s.rep - 1) as usize] += 1;
        leads.id.push(leads.id.len() as i64 + 1);
        leads.rep.push(s.rep);
        leads
            .created
            .push(s.signup - 7 - (id.wrapping_mul(7919) % 53) as i32);
        leads.converted.push(true);
        leads.customer.push(Some(id));
        for &(d, plan, seats, mrr, kind) in &s.subs {
            subs.customer.push(id);
            subs.date.push(d);
            subs.plan.push(PLANS[plan]);
            subs.seats.push(seats);
            subs.mrr.push(mrr);
            subs.kind.push(kind);
        }
        let first_invoice = inv.id.len() as i64 + 1;
        for &(d, due, amount) in &s.invoices {
            inv.id.push(inv.id.len() as i64 + 1);
            inv.customer.push(id);
            inv.date.push(d);
            inv.due.push(due);
            inv.amount.push(amount);
        }
        for &(k, d, attempt, amount, ok, late) in &s.payments {
            pay.id.push(pay.id.len() as i64 + 1);
            pay.invoice.push(first_invoice + k as i64);
            pay.customer.push(id);
            pay.date.push(d);
            pay.attempt.push(attempt);
            pay.amount.push(amount);
            pay.status.push(if ok { "succeeded" } else { "failed" });
            pay.late.push(late);
        }
        for &(w, sessions, users, minutes, adopted) in &s.usage {
            usage.customer.push(id);
            usage.week.push(w);
            usage.sessions.push(sessions);
            usage.users.push(users);
            usage.minutes.push(minutes);
            usage.adopted.push(adopted);
        }
        for &(d, sev, cat, resolved, hours) in &s.tickets {
            tick.id.push(tick.id.len() as i64 + 1);
            tick.customer.push(id);
            tick.opened.push(d);
            tick.severity.push(sev);
            tick.category.push(TICKET_CATEGORIES[cat]);
            tick.resolved.push(resolved);
            tick.hours.push(hours);
        }
        for &(d, kind, score) in &s.surveys {
            surv.id.push(surv.id.len() as i64 + 1);
            surv.customer.push(id);
            surv.date.push(d);
            surv.kind.push(kind);
            surv.score.push(score);
        }
        if let Some((d, kind, reason)) = s.churn {
            churn.customer.push(id);
            churn.date.push(d);
            churn.kind.push(kind);
            churn.reason.push(reason);
        }
        for &(m, v, inv_h, alive) in &s.hazard {
            haz.alive.push(alive);
            haz.customer.push(id);
            haz.month.push(m);
            haz.vol.push(v);
            haz.inv.push(inv_h);
        }
    }
    // Leads that did not convert, at each rep's latent conversion rate.
    for (e_idx, e) in employees
        .iter()
        .enumerate()
        .filter(|(_, e)| e.role == "acquisition")
    {
        let conv = sigmoid(-1.3 + 0.6 * e.skill);
        let lost = (rep_customers[e_idx] as f64 * (1.0 - conv) / conv).round() as usize;
        for _ in 0..lost {
            leads.id.push(leads.id.len() as i64 + 1);
            leads.rep.push(e.id);
            leads.created.push(rng.gen_range(month_start[0]..end));
            leads.converted.push(false);
            leads.customer.push(None);
        }
    }

    let emp = DataFrame::new(
        employees.len(),
        vec![
            Column::new(
                "employee_id".into(),
                employees.iter().map(|e| e.id).collect::<Vec<_>>(),
            ),
            Column::new(
                "name".into(),
                employees
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "role".into(),
                employees.iter().map(|e| e.role).collect::<Vec<_>>(),
            ),
            Column::new(
                "team".into(),
                employees
                    .iter()
                    .map(|e| e.team.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "region".into(),
                employees
                    .iter()
                    .map(|e| REGIONS[e.region])
                    .collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(DataError::polars("building employees"))?;
    let truth_emp = DataFrame::new(
        employees.len(),
        vec![
            Column::new(
                "employee_id".into(),
                employees.iter().map(|e| e.id).collect::<Vec<_>>(),
            ),
            Column::new(
                "role".into(),
                employees.iter().map(|e| e.role).collect::<Vec<_>>(),
            ),
            Column::new(
                "skill".into(),
                employees.iter().map(|e| e.skill).collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(DataError::polars("building truth_employees"))?;

    Ok(Company {
        tables: Tables {
            customers: c.frame()?,
            employees: emp,
            leads: leads.frame()?,
            subscriptions: subs.frame()?,
            invoices: inv.frame()?,
            payments: pay.frame()?,
            usage: usage.frame()?,
            tickets: tick.frame()?,
            surveys: surv.frame()?,
            churn_events: churn.frame()?,
        },
        truth: Truth {
            hazard: haz.frame()?,
            customers: tc.frame()?,
            employees: truth_emp,
        },
    })
}

fn person_name(rng: &mut impl Rng) -> String {
    const FIRST: &[&str] = &[
        "Ana", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya",
        "Luis", "Mara", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vera",
        "Wei", "Yusuf", "Zoe",
    ];
    const LAST: &[&str] = &[
        "Almeida", "Becker", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
        "Jansen", "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Patel", "Rossi", "Schmidt",
        "Tanaka", "Usman", "Varga", "Walsh", "Yilmaz", "Zhang",
    ];
    format!(
        "{} {}",
        FIRST.choose(rng).unwrap(),
        LAST.choose(rng).unwrap()
    )
}

fn company_name(rng: &mut impl Rng) -> String {
    const A: &[&str] = &[
        "Acme", "Blue", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juniper",
        "Kite", "Lumen", "Maple", "Nimbus", "Orbit", "Pine", "Quartz", "River", "Summit", "Tidal",
        "Umber", "Vertex", "Willow", "Zephyr",
    ];
    const B: &[&str] = &[
        "Labs",
        "Systems",
        "Foods",
        "Logistics",
        "Health",
        "Media",
        "Works",
        "Analytics",
        "Retail",
        "Energy",
        "Finance",
        "Studio",
        "Robotics",
        "Travel",
        "Legal",
    ];
    format!("{} {}", A.choose(rng).unwrap(), B.choose(rng).unwrap())
}

fn pick(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

fn add_months(day: i32, k: u32) -> i32 {
    days_from_date(date_from_days(day) + Months::new(k))
}

#[allow(clippy::too_many_lines)]
fn simulate_customer(
    rng: &mut ChaCha8Rng,
    month_start: &[i32],
    employees: &[Employee],
    am_by_region: &[Vec<usize>],
    rep_by_region: &[Vec<usize>],
) -> Sim {
    use model::*;
    let normal = Normal::new(0.0, 1.0).expect("valid");
    let months = month_start.len() - 1;
    let end = month_start[months];
    let mut s = Sim::default();

    // Who the customer is.
    let j = if rng.gen::<f64>() < 0.3 {
        0
    } else {
        rng.gen_range(0..months)
    };
    let month_len = month_start[j + 1] - month_start[j];
    s.signup = month_start[j] + rng.gen_range(0..month_len);
    s.region = pick(rng, &[0.45, 0.3, 0.15, 0.1]);
    s.channel = pick(rng, &[0.3, 0.25, 0.15, 0.15, 0.15]);
    s.plan0 = pick(rng, &[0.55, 0.35, 0.10]);
    s.contract = match s.plan0 {
        0 => pick(rng, &[0.7, 0.25, 0.05]),
        1 => pick(rng, &[0.5, 0.4, 0.1]),
        _ => pick(rng, &[0.2, 0.55, 0.25]),
    };
    s.name = company_name(rng);
    let am = &employees[*am_by_region[s.region]
        .choose(rng)
        .expect("every region has a manager")];
    let rep = &employees[*rep_by_region[s.region].choose(rng).expect("reps exist")];
    s.am = am.id;
    s.rep = rep.id;
    let skill = am.skill;
    let engagement0 = normal.sample(rng) + 0.3 * rep.skill + [-0.2, 0.0, 0.1, 0.0, 0.3][s.channel];
    let satisfaction0 = normal.sample(rng);
    let price_sens = normal.sample(rng) + [0.3, 0.0, -0.4][s.plan0];
    let fail_base = sigmoid(-3.0 + 0.9 * normal.sample(rng));
    s.traits = [engagement0, satisfaction0, price_sens, fail_base];
    s.never_active = rng.gen::<f64>() < 0.04;
    s.manual_payer = rng.gen::<f64>() < 0.15;
    let channel_cac = [150.0, 900.0, 600.0, 1500.0, 300.0][s.channel];
    s.cac = (channel_cac
        * [1.0, 1.8, 4.0][s.plan0]
        * (-0.25 * rep.skill + 0.2 * normal.sample(rng)).exp()
        * 100.0)
        .round()
        / 100.0;

    let seat_median = [3.0_f64, 12.0, 60.0][s.plan0];
    let mut seats = LogNormal::new(seat_median.ln(), 0.5)
        .expect("valid")
        .sample(rng)
        .round()
        .max(1.0) as i64;
    let mut plan = s.plan0;
    let mrr_of = |plan: usize, seats: i64, contract: usize| {
        (seats as f64 * PRICE_PER_SEAT[plan] * TERM_DISCOUNT[contract] * 100.0).round() / 100.0
    };
    let mut mrr = mrr_of(plan, seats, s.contract);
    s.subs.push((s.signup, plan, seats, mrr, "new"));

    // Latent state.
    let mut level_target = if s.never_active {
        -2.5
    } else {
        engagement0 + 0.15 * skill
    };
    let mut engagement = level_target + 0.5;
    let mut history = vec![engagement];
    let mut satisfaction = satisfaction0;
    let mut pain = 0.0_f64;
    let mut shocked = false;
    let mut downgrade_left = 0u32;
    let mut adopted = 0i64;
    let bugginess = normal.sample(rng);
    // First Monday on or after signup.
    let weekday = date_from_days(s.signup).weekday().num_days_from_monday() as i32;
    let mut week = s.signup + (7 - weekday) % 7;
    let billing_day0 = s.signup;

    for m in j..months {
        let k = (m - j) as u32;
        let lo = month_start[m].max(s.signup);
        let hi = month_start[m + 1];
        // Evolve the latent state.
        if k > 0 {
            if !shocked && rng.gen::<f64>() < 0.04 {
                shocked = true;
                level_target -= 1.2;
            } else if shocked && rng.gen::<f64>() < 0.1 + 0.1 * sigmoid(skill) {
                shocked = false;
                level_target += 1.2;
            }
            engagement = 0.7 * engagement + 0.3 * level_target + 0.15 * normal.sample(rng);
            history.push(engagement);
            satisfaction = 0.7 * satisfaction
                + 0.3 * (satisfaction0 + 0.4 * engagement + 0.25 * skill - 0.5 * pain)
                + 0.15 * normal.sample(rng);
        }
        let trend = engagement - history[history.len().saturating_sub(3)];
        let contract_term = match s.contract {
            0 => MONTHLY,
            1 if k % 12 == 11 => TERM_RENEWAL,
            2 if k % 24 == 23 => TERM_RENEWAL,
            _ => TERM_OFF_RENEWAL,
        };
        let tenure_term = if k < 3 {
            TENURE_UNDER_3
        } else if k < 6 {
            TENURE_UNDER_6
        } else {
            0.0
        };
        let logit = BASE
            + ENGAGEMENT * engagement
            + TREND * trend
            + SATISFACTION * satisfaction
            + SUPPORT_PAIN * pain
            + PRICE_SENSITIVITY * price_sens
            + MANAGER_SKILL * skill
            + if downgrade_left > 0 {
                RECENT_DOWNGRADE
            } else {
                0.0
            }
            + contract_term
            + tenure_term;
        let h_vol = sigmoid(logit);
        let (p_fail, h_inv) = if s.manual_payer {
            (0.0, 0.0)
        } else {
            let all_fail = CARD_EXPIRY * (1.0 - EXPIRED_RETRY_SUCCESS).powi(2)
                + (1.0 - CARD_EXPIRY) * fail_base * (1.0 - RETRY_SUCCESS).powi(2);
            (fail_base, all_fail * CANCEL_UNRECOVERED)
        };
        let gone = s.churn.is_some();
        s.hazard.push((month_start[m], h_vol, h_inv, !gone));
        if gone {
            // After churn the latent state goes on evolving, so the hazard of
            // every month stays defined ("had the customer stayed"): the
            // oracle of a window must not depend on when the churn fell.
            pain *= 0.5;
            downgrade_left = downgrade_left.saturating_sub(1);
            continue;
        }

        // Billing for this month.
        let mut churn_at: Option<(i32, &'static str, &'static str)> = None;
        let invoice_day = add_months(billing_day0, k);
        if invoice_day < hi && invoice_day < end {
            let due = invoice_day + 14;
            let inv_idx = s.invoices.len();
            s.invoices.push((invoice_day, due, mrr));
            if s.manual_payer {
                let late = if rng.gen::<f64>() < 0.25 {
                    rng.gen_range(1..=30)
                } else {
                    0
                };
                let paid = if late > 0 {
                    due + late as i32
                } else {
                    invoice_day + rng.gen_range(0..=14)
                };
                if paid < end {
                    s.payments.push((inv_idx, paid, 1, mrr, true, late));
                }
            } else {
                let expired = rng.gen::<f64>() < CARD_EXPIRY;
                let fails_first = expired || rng.gen::<f64>() < p_fail;
                let retry = if expired {
                    EXPIRED_RETRY_SUCCESS
                } else {
                    RETRY_SUCCESS
                };
                let mut day = invoice_day;
                let mut ok = !fails_first;
                s.payments.push((inv_idx, day, 1, mrr, ok, 0));
                for (attempt, gap) in [(2, 3), (3, 4)] {
                    if ok {
                        break;
                    }
                    day += gap;
                    if day >= end {
                        break;
                    }
                    ok = rng.gen::<f64>() < retry;
                    s.payments
                        .push((inv_idx, day, attempt, mrr, ok, (day - due).max(0) as i64));
                }
                if !ok && day + 5 < end {
                    if rng.gen::<f64>() < CANCEL_UNRECOVERED {
                        churn_at = Some((day + 5, "involuntary", "payment_failed"));
                    } else {
                        let paid = day + rng.gen_range(10..=25);
                        if paid < end {
                            s.payments.push((
                                inv_idx,
                                paid,
                                4,
                                mrr,
                                true,
                                (paid - due).max(0) as i64,
                            ));
                        }
                    }
                }
            }
        }
        if churn_at.is_none() && rng.gen::<f64>() < h_vol {
            let reasons = [
                (
                    -ENGAGEMENT * engagement.min(0.0) - TREND * trend.min(0.0),
                    "low_usage",
                ),
                (-SATISFACTION * satisfaction.min(0.0), "dissatisfied"),
                (SUPPORT_PAIN * pain, "support_issues"),
                (PRICE_SENSITIVITY * price_sens.max(0.0), "price"),
                (0.3, "switched_competitor"),
            ];
            let weights: Vec<f64> = reasons.iter().map(|r| r.0.max(0.01)).collect();
            let reason = reasons[pick(rng, &weights)].1;
            churn_at = Some((rng.gen_range(lo..hi), "voluntary", reason));
        }
        let stop = churn_at.map_or(hi, |c| c.0.min(hi));

        // Usage, one row per complete week before churn.
        let active = !s.never_active;
        while week < hi {
            if week >= stop || week + 7 > end {
                break;
            }
            if active {
                let lambda = 2.5 * (seats as f64).powf(0.6) * (0.8 * engagement).exp();
                let sessions = Poisson::new(lambda.max(1e-6)).expect("valid").sample(rng) as i64;
                let users = if sessions == 0 {
                    0
                } else {
                    let mean = seats as f64 * sigmoid(engagement) * 0.8;
                    (Poisson::new(mean.max(0.3)).expect("valid").sample(rng) as i64)
                        .clamp(1, seats.max(1))
                };
                let minutes = if sessions == 0 {
                    0.0
                } else {
                    (sessions as f64
                        * LogNormal::new(12f64.ln(), 0.4).expect("valid").sample(rng)
                        * 10.0)
                        .round()
                        / 10.0
                };
                if sessions > 0
                    && adopted < 12
                    && rng.gen::<f64>() < 0.25 * sigmoid(engagement + 1.0)
                {
                    adopted += 1;
                }
                s.usage.push((week, sessions, users, minutes, adopted));
            }
            week += 7;
        }
        if churn_at.is_some() && week < hi {
            week = hi;
        }

        // Support tickets.
        let rate = 0.12 * (seats as f64).powf(0.35) * (-0.3 * engagement + 0.4 * bugginess).exp();
        let n_tickets = Poisson::new(rate.max(1e-6)).expect("valid").sample(rng) as usize;
        let mut month_pain = 0.0;
        for _ in 0..n_tickets {
            let opened = rng.gen_range(lo..hi);
            if opened >= stop {
                continue;
            }
            let severity = 1 + pick(rng, &[0.45, 0.30, 0.18, 0.07]) as i64;
            let category = if severity == 4 {
                3
            } else {
                pick(rng, &[0.35, 0.35, 0.15, 0.0, 0.15])
            };
            let hours = (LogNormal::new((8.0 * severity as f64).ln(), 0.8)
                .expect("valid")
                .sample(rng)
                * 10.0)
                .round()
                / 10.0;
            let resolved_day = opened + (hours / 24.0).ceil() as i32;
            let (resolved, hours) = if resolved_day < end {
                (Some(resolved_day), Some(hours))
            } else {
                (None, None)
            };
            month_pain += 0.5 * (severity as f64 / 2.0 + hours.unwrap_or(72.0) / 72.0);
            s.tickets
                .push((opened, severity, category, resolved, hours));
            if let Some(r) = resolved {
                if r < stop.min(end) {
                    let answered = rng.gen::<f64>() < 0.5;
                    let score = (3.8 + 0.7 * satisfaction - 0.35 * (severity - 1) as f64
                        + 0.7 * normal.sample(rng))
                    .round()
                    .clamp(1.0, 5.0) as i64;
                    s.surveys.push((r, "csat", answered.then_some(score)));
                }
            }
        }
        pain = 0.5 * pain + month_pain;

        // Quarterly NPS survey; many go unanswered.
        if k % 3 == 2 {
            let day = rng.gen_range(lo..hi);
            if day < stop {
                let answered = rng.gen::<f64>() < 0.35 + 0.2 * sigmoid(engagement);
                let score = (7.2 + 1.6 * satisfaction + 1.2 * normal.sample(rng))
                    .round()
                    .clamp(0.0, 10.0) as i64;
                s.surveys.push((day, "nps", answered.then_some(score)));
            }
        }

        // Expansion and contraction.
        downgrade_left = downgrade_left.saturating_sub(1);
        if churn_at.is_none() && k > 0 {
            let change_day = rng.gen_range(lo..hi);
            if rng.gen::<f64>() < sigmoid(-3.8 + 0.9 * engagement + 0.3 * skill) {
                if plan < 2 && rng.gen::<f64>() < 0.3 {
                    plan += 1;
                } else {
                    seats = ((seats as f64) * rng.gen_range(1.1..1.5)).ceil() as i64;
                }
                mrr = mrr_of(plan, seats, s.contract);
                s.subs.push((change_day, plan, seats, mrr, "upgrade"));
            } else if rng.gen::<f64>() < sigmoid(-4.5 - 0.9 * engagement + 0.3 * price_sens) {
                if plan > 0 && rng.gen::<f64>() < 0.3 {
                    plan -= 1;
                } else {
                    seats = (((seats as f64) * rng.gen_range(0.6..0.9)).floor() as i64).max(1);
                }
                mrr = mrr_of(plan, seats, s.contract);
                s.subs.push((change_day, plan, seats, mrr, "downgrade"));
                downgrade_left = 3;
            }
        }

        if let Some(c) = churn_at {
            s.churn = Some(c);
        }
    }
    s.surveys.sort_by_key(|x| x.0);
    s.tickets.sort_by_key(|x| x.0);
    s
}

/// The true probability that each customer churns in
/// `(snapshot, snapshot + horizon_days]`, from the generator's hazards.
///
/// Each calendar month contributes its combined hazard
/// `1 − (1 − voluntary)(1 − involuntary)`, scaled by the share of the month
/// inside the window. Customers without hazard rows in the window get 0.
pub fn oracle_probability(
    hazard: &DataFrame,
    customer_ids: &[i64],
    snapshot: NaiveDate,
    horizon_days: u32,
) -> Result<Vec<f64>> {
    let s = days_from_date(snapshot);
    let e = s + horizon_days as i32;
    let ids = hazard
        .column("customer_id")
        .and_then(|c| c.i64().cloned())
        .map_err(DataError::polars("truth_hazard.customer_id"))?;
    let month = hazard
        .column("month_start")
        .and_then(|c| c.cast(&DataType::Int32))
        .and_then(|c| c.i32().cloned())
        .map_err(DataError::polars("truth_hazard.month_start"))?;
    let vol = hazard
        .column("voluntary_hazard")
        .and_then(|c| c.f64().cloned())
        .map_err(DataError::polars("truth_hazard.voluntary_hazard"))?;
    let inv = hazard
        .column("involuntary_hazard")
        .and_then(|c| c.f64().cloned())
        .map_err(DataError::polars("truth_hazard.involuntary_hazard"))?;
    let mut log_survival: std::collections::HashMap<i64, f64> =
        customer_ids.iter().map(|&id| (id, 0.0)).collect();
    for i in 0..ids.len() {
        let (Some(id), Some(m0), Some(v), Some(iv)) =
            (ids.get(i), month.get(i), vol.get(i), inv.get(i))
        else {
            continue;
        };
        let Some(acc) = log_survival.get_mut(&id) else {
            continue;
        };
        let m1 = add_months(m0, 1);
        let overlap = (m1.min(e + 1) - m0.max(s + 1)).max(0) as f64;
        if overlap > 0.0 {
            let frac = overlap / (m1 - m0) as f64;
            *acc += frac * ((1.0 - v) * (1.0 - iv)).max(1e-12).ln();
        }
    }
    Ok(customer_ids
        .iter()
        .map(|id| 1.0 - log_survival[id].exp())
        .collect())
}

/// The probability of churn in `(snapshot, snapshot + horizon_days]` if the
/// hazard of the month holding the snapshot held for the whole window: what a
/// model that knew every hidden trait and state at the snapshot, but nothing
/// after it, could reach. The gap between this and [`oracle_probability`] is
/// what no model can close; the gap from a model to this one is what better
/// features could.
pub fn snapshot_oracle_probability(
    hazard: &DataFrame,
    customer_ids: &[i64],
    snapshot: NaiveDate,
    horizon_days: u32,
) -> Result<Vec<f64>> {
    let s = days_from_date(snapshot);
    let ids = hazard
        .column("customer_id")
        .and_then(|c| c.i64().cloned())
        .map_err(DataError::polars("truth_hazard.customer_id"))?;
    let month = hazard
        .column("month_start")
        .and_then(|c| c.cast(&DataType::Int32))
        .and_then(|c| c.i32().cloned())
        .map_err(DataError::polars("truth_hazard.month_start"))?;
    let vol = hazard
        .column("voluntary_hazard")
        .and_then(|c| c.f64().cloned())
        .map_err(DataError::polars("truth_hazard.voluntary_hazard"))?;
    let inv = hazard
        .column("involuntary_hazard")
        .and_then(|c| c.f64().cloned())
        .map_err(DataError::polars("truth_hazard.involuntary_hazard"))?;
    let mut monthly: std::collections::HashMap<i64, f64> =
        customer_ids.iter().map(|&id| (id, 0.0)).collect();
    for i in 0..ids.len() {
        let (Some(id), Some(m0), Some(v), Some(iv)) =
            (ids.get(i), month.get(i), vol.get(i), inv.get(i))
        else {
            continue;
        };
        if m0 <= s && s < add_months(m0, 1) {
            if let Some(h) = monthly.get_mut(&id) {
                *h = 1.0 - (1.0 - v) * (1.0 - iv);
            }
        }
    }
    let months = f64::from(horizon_days) / 30.4375;
    Ok(customer_ids
        .iter()
        .map(|id| 1.0 - (1.0 - monthly[id]).powf(months))
        .collect())
}

/// Types a ground-truth table read back from disk.
pub(crate) fn typed_truth(name: &str, df: DataFrame, path: &std::path::Path) -> Result<DataFrame> {
    use super::schema::ColumnKind::*;
    let cols: &[(&str, super::ColumnKind)] = match name {
        "truth_hazard" => &[
            ("customer_id", Id),
            ("month_start", Date),
            ("voluntary_hazard", Amount),
            ("involuntary_hazard", Amount),
        ],
        "truth_employees" => &[("employee_id", Id), ("role", Text), ("skill", Amount)],
        _ => return Ok(df),
    };
    let mut out = Vec::new();
    for (c, kind) in cols {
        let column = df.column(c).map_err(|_| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: c.to_string(),
        })?;
        let kind = if *c == "skill" {
            super::ColumnKind::Text
        } else {
            *kind
        };
        let s = if *c == "skill" {
            column
                .as_materialized_series()
                .cast(&DataType::Float64)
                .map_err(DataError::polars("truth_employees.skill"))?
        } else {
            super::parse_columns(column, kind, path)?
        };
        out.push(s.into_column());
    }
    DataFrame::new(df.height(), out).map_err(DataError::polars("typing truth"))
}

fn date_col(name: &str, days: Vec<i32>) -> Result<Column> {
    Series::new(name.into(), days)
        .cast(&DataType::Date)
        .map(Series::into_column)
        .map_err(DataError::polars("casting dates"))
}

fn opt_date_col(name: &str, days: Vec<Option<i32>>) -> Result<Column> {
    Series::new(name.into(), days)
        .cast(&DataType::Date)
        .map(Series::into_column)
        .map_err(DataError::polars("casting dates"))
}

macro_rules! frame {
    ($table:literal, $len:expr, [$($col:expr),+ $(,)?]) => {
        DataFrame::new($len, vec![$($col),+]).map_err(DataError::polars(concat!("building ", $table)))
    };
}

#[derive(Default)]
struct CustomerCols {
    id: Vec<i64>,
    name: Vec<String>,
    signup: Vec<i32>,
    plan: Vec<&'static str>,
    contract: Vec<&'static str>,
    region: Vec<&'static str>,
    channel: Vec<&'static str>,
    cac: Vec<f64>,
    am: Vec<i64>,
    rep: Vec<i64>,
}

impl CustomerCols {
    fn push(&mut self, id: i64, s: &Sim) {
        self.id.push(id);
        self.name.push(format!("{} {id}", s.name));
        self.signup.push(s.signup);
        self.plan.push(PLANS[s.plan0]);
        self.contract.push(CONTRACTS[s.contract]);
        self.region.push(REGIONS[s.region]);
        self.channel.push(CHANNELS[s.channel]);
        self.cac.push(s.cac);
        self.am.push(s.am);
        self.rep.push(s.rep);
    }
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "customers",
            self.id.len(),
            [
                Column::new("customer_id".into(), self.id),
                Column::new("name".into(), self.name),
                date_col("signup_date", self.signup)?,
                Column::new("plan".into(), self.plan),
                Column::new("contract".into(), self.contract),
                Column::new("region".into(), self.region),
                Column::new("acquisition_channel".into(), self.channel),
                Column::new("cac".into(), self.cac),
                Column::new("account_manager_id".into(), self.am),
                Column::new("acquisition_rep_id".into(), self.rep),
            ]
        )
    }
}

#[derive(Default)]
struct TruthCustomerCols {
    id: Vec<i64>,
    traits: [Vec<f64>; 4],
    never_active: Vec<bool>,
    manual_payer: Vec<bool>,
}

impl TruthCustomerCols {
    fn push(&mut self, id: i64, s: &Sim) {
        self.id.push(id);
        for (v, t) in self.traits.iter_mut().zip(s.traits) {
            v.push(t);
        }
        self.never_active.push(s.never_active);
        self.manual_payer.push(s.manual_payer);
    }
    fn frame(self) -> Result<DataFrame> {
        let [e, sat, p, f] = self.traits;
        frame!(
            "truth_customers",
            self.id.len(),
            [
                Column::new("customer_id".into(), self.id),
                Column::new("engagement_propensity".into(), e),
                Column::new("satisfaction_base".into(), sat),
                Column::new("price_sensitivity".into(), p),
                Column::new("payment_failure_rate".into(), f),
                Column::new("never_active".into(), self.never_active),
                Column::new("manual_payer".into(), self.manual_payer),
            ]
        )
    }
}

#[derive(Default)]
struct LeadCols {
    id: Vec<i64>,
    rep: Vec<i64>,
    created: Vec<i32>,
    converted: Vec<bool>,
    customer: Vec<Option<i64>>,
}

impl LeadCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "leads",
            self.id.len(),
            [
                Column::new("lead_id".into(), self.id),
                Column::new("acquisition_rep_id".into(), self.rep),
                date_col("created_date", self.created)?,
                Column::new("converted".into(), self.converted),
                Column::new("customer_id".into(), self.customer),
            ]
        )
    }
}

#[derive(Default)]
struct SubCols {
    customer: Vec<i64>,
    date: Vec<i32>,
    plan: Vec<&'static str>,
    seats: Vec<i64>,
    mrr: Vec<f64>,
    kind: Vec<&'static str>,
}

impl SubCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "subscriptions",
            self.customer.len(),
            [
                Column::new("customer_id".into(), self.customer),
                date_col("effective_date", self.date)?,
                Column::new("plan".into(), self.plan),
                Column::new("seats".into(), self.seats),
                Column::new("mrr".into(), self.mrr),
                Column::new("change_type".into(), self.kind),
            ]
        )
    }
}

#[derive(Default)]
struct InvoiceCols {
    id: Vec<i64>,
    customer: Vec<i64>,
    date: Vec<i32>,
    due: Vec<i32>,
    amount: Vec<f64>,
}

impl InvoiceCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "invoices",
            self.id.len(),
            [
                Column::new("invoice_id".into(), self.id),
                Column::new("customer_id".into(), self.customer),
                date_col("invoice_date", self.date)?,
                date_col("due_date", self.due)?,
                Column::new("amount".into(), self.amount),
            ]
        )
    }
}

#[derive(Default)]
struct PaymentCols {
    id: Vec<i64>,
    invoice: Vec<i64>,
    customer: Vec<i64>,
    date: Vec<i32>,
    attempt: Vec<i64>,
    amount: Vec<f64>,
    status: Vec<&'static str>,
    late: Vec<i64>,
}

impl PaymentCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "payments",
            self.id.len(),
            [
                Column::new("payment_id".into(), self.id),
                Column::new("invoice_id".into(), self.invoice),
                Column::new("customer_id".into(), self.customer),
                date_col("attempt_date", self.date)?,
                Column::new("attempt".into(), self.attempt),
                Column::new("amount".into(), self.amount),
                Column::new("status".into(), self.status),
                Column::new("days_late".into(), self.late),
            ]
        )
    }
}

#[derive(Default)]
struct UsageCols {
    customer: Vec<i64>,
    week: Vec<i32>,
    sessions: Vec<i64>,
    users: Vec<i64>,
    minutes: Vec<f64>,
    adopted: Vec<i64>,
}

impl UsageCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "usage",
            self.customer.len(),
            [
                Column::new("customer_id".into(), self.customer),
                date_col("week_start", self.week)?,
                Column::new("sessions".into(), self.sessions),
                Column::new("active_users".into(), self.users),
                Column::new("minutes".into(), self.minutes),
                Column::new("features_adopted".into(), self.adopted),
            ]
        )
    }
}

#[derive(Default)]
struct TicketCols {
    id: Vec<i64>,
    customer: Vec<i64>,
    opened: Vec<i32>,
    severity: Vec<i64>,
    category: Vec<&'static str>,
    resolved: Vec<Option<i32>>,
    hours: Vec<Option<f64>>,
}

impl TicketCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "tickets",
            self.id.len(),
            [
                Column::new("ticket_id".into(), self.id),
                Column::new("customer_id".into(), self.customer),
                date_col("opened_date", self.opened)?,
                Column::new("severity".into(), self.severity),
                Column::new("category".into(), self.category),
                opt_date_col("resolved_date", self.resolved)?,
                Column::new("resolution_hours".into(), self.hours),
            ]
        )
    }
}

#[derive(Default)]
struct SurveyCols {
    id: Vec<i64>,
    customer: Vec<i64>,
    date: Vec<i32>,
    kind: Vec<&'static str>,
    score: Vec<Option<i64>>,
}

impl SurveyCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "surveys",
            self.id.len(),
            [
                Column::new("survey_id".into(), self.id),
                Column::new("customer_id".into(), self.customer),
                date_col("survey_date", self.date)?,
                Column::new("kind".into(), self.kind),
                Column::new("score".into(), self.score),
            ]
        )
    }
}

#[derive(Default)]
struct ChurnCols {
    customer: Vec<i64>,
    date: Vec<i32>,
    kind: Vec<&'static str>,
    reason: Vec<&'static str>,
}

impl ChurnCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "churn_events",
            self.customer.len(),
            [
                Column::new("customer_id".into(), self.customer),
                date_col("churn_date", self.date)?,
                Column::new("churn_type".into(), self.kind),
                Column::new("reason".into(), self.reason),
            ]
        )
    }
}

#[derive(Default)]
struct HazardCols {
    customer: Vec<i64>,
    month: Vec<i32>,
    vol: Vec<f64>,
    inv: Vec<f64>,
    alive: Vec<bool>,
}

impl HazardCols {
    fn frame(self) -> Result<DataFrame> {
        frame!(
            "truth_hazard",
            self.customer.len(),
            [
                Column::new("customer_id".into(), self.customer),
                date_col("month_start", self.month)?,
                Column::new("voluntary_hazard".into(), self.vol),
                Column::new("involuntary_hazard".into(), self.inv),
                Column::new("alive".into(), self.alive),
            ]
        )
    }
}

/// Churn events as they would have been had treatment worked: each churn of
/// a treated customer that falls within `window_days` after the treatment
/// is prevented with probability equal to that playbook's true effect (the
/// first treatment whose window holds the churn decides). Returns the
/// thinned events and how many churns were prevented. The coin of each
/// customer is a stable hash of `seed` and the id, so reruns agree.
pub fn apply_treatment_effects(
    churn_events: &DataFrame,
    treated: &[(String, i64, f64)],
    window_days: u32,
    seed: u64,
) -> Result<(DataFrame, usize)> {
    let ids = crate::data::columns::strs(churn_events, "customer_id")
        .map_err(|m| DataError::polars("churn_events")(PolarsError::ComputeError(m.into())))?;
    let days = crate::data::columns::days(churn_events, "churn_date")
        .map_err(|m| DataError::polars("churn_events")(PolarsError::ComputeError(m.into())))?;
    let mut by_customer: std::collections::HashMap<&str, Vec<(i64, f64)>> =
        std::collections::HashMap::new();
    for (id, at, effect) in treated {
        by_customer
            .entry(id.as_str())
            .or_default()
            .push((at.div_euclid(86_400), *effect));
    }
    for v in by_customer.values_mut() {
        v.sort_by_key(|t| t.0);
    }
    let salt = format!("simulated-effect-{seed}");
    let mut prevented = 0;
    let keep: BooleanChunked = ids
        .iter()
        .zip(&days)
        .map(|(id, day)| {
            let (Some(id), Some(day)) = (id, day) else {
                return true;
            };
            let day = i64::from(*day);
            let Some(effect) = by_customer.get(id.as_str()).and_then(|v| {
                v.iter()
                    .find(|(start, _)| day > *start && day <= start + i64::from(window_days))
                    .map(|t| t.1)
            }) else {
                return true;
            };
            let drop = crate::interventions::control_hash(&salt, id) < effect;
            prevented += usize::from(drop);
            !drop
        })
        .collect();
    let out = churn_events
        .filter(&keep)
        .map_err(DataError::polars("thinning churn_events"))?;
    Ok((out, prevented))
}
