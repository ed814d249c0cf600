//! One customer's life, month by month: who they are, how their hidden
//! engagement, satisfaction and support pain evolve, the hazards that
//! follow, and the events they leave (invoices and payments, weekly usage,
//! tickets, surveys, plan changes, churn).
//!
//! The steps of a month run in a fixed order and each draws from the
//! customer's own random stream in that order, so a customer's events are a
//! function of the seed and the customer's index only.

use chrono::Datelike;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};

use super::names::company_name;
use super::{add_months, pick, sigmoid, Employee};
use crate::data::schema::date_from_days;

/// Coefficients of the latent churn model; `data/README.md` lists them.
pub(super) mod model {
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

/// (opened, severity, category index, resolved day, resolution hours)
type TicketRow = (i32, i64, usize, Option<i32>, Option<f64>);

/// (date, voluntary or involuntary, reason)
type ChurnEvent = (i32, &'static str, &'static str);

/// What one customer leaves behind: their row, their events, their hazards.
#[derive(Default)]
pub(super) struct Sim {
    // customer row
    pub(super) signup: i32,
    pub(super) plan0: usize,
    pub(super) contract: usize,
    pub(super) region: usize,
    pub(super) channel: usize,
    pub(super) cac: f64,
    pub(super) am: i64,
    pub(super) rep: i64,
    pub(super) name: String,
    pub(super) traits: [f64; 4],
    pub(super) never_active: bool,
    pub(super) manual_payer: bool,
    // events
    pub(super) subs: Vec<(i32, usize, i64, f64, &'static str)>,
    pub(super) invoices: Vec<(i32, i32, f64)>,
    /// (invoice index within customer, date, attempt, amount, ok, days_late)
    pub(super) payments: Vec<(usize, i32, i64, f64, bool, i64)>,
    pub(super) usage: Vec<(i32, i64, i64, f64, i64)>,
    pub(super) tickets: Vec<TicketRow>,
    pub(super) surveys: Vec<(i32, &'static str, Option<i64>)>,
    pub(super) churn: Option<ChurnEvent>,
    /// (month start, voluntary, involuntary, alive at month start)
    pub(super) hazard: Vec<(i32, f64, f64, bool)>,
}

/// The price of a subscription: seats × list price × the term discount.
fn mrr_of(plan: usize, seats: i64, contract: usize) -> f64 {
    (seats as f64 * PRICE_PER_SEAT[plan] * TERM_DISCOUNT[contract] * 100.0).round() / 100.0
}

/// A customer being simulated: the record being written and the hidden
/// state that drives it.
struct Life<'a> {
    s: Sim,
    month_start: &'a [i32],
    /// The first day after the simulated period.
    end: i32,
    /// The calendar month of signup.
    first_month: usize,
    normal: Normal<f64>,
    // Traits, fixed for life.
    skill: f64,
    satisfaction0: f64,
    price_sens: f64,
    fail_base: f64,
    /// From this day (the drift scenario's billing change), first-attempt
    /// card failures are [`BILLING_CHANGE_FACTOR`] times as likely.
    billing_change: Option<i32>,
    bugginess: f64,
    // What they pay for.
    seats: i64,
    plan: usize,
    mrr: f64,
    // Hidden state, month by month.
    level_target: f64,
    engagement: f64,
    history: Vec<f64>,
    satisfaction: f64,
    pain: f64,
    shocked: bool,
    downgrade_left: u32,
    adopted: i64,
    /// The Monday of the next week of usage to write.
    week: i32,
}

/// The drift scenario's billing change: how many times as likely a
/// first-attempt card failure becomes.
pub const BILLING_CHANGE_FACTOR: f64 = 3.0;

/// Simulates one customer from signup to the end of the period.
pub(super) fn simulate_customer(
    rng: &mut ChaCha8Rng,
    month_start: &[i32],
    employees: &[Employee],
    am_by_region: &[Vec<usize>],
    rep_by_region: &[Vec<usize>],
    billing_change: Option<i32>,
) -> Sim {
    let mut life = Life::begin(rng, month_start, employees, am_by_region, rep_by_region);
    life.billing_change = billing_change;
    for m in life.first_month..month_start.len() - 1 {
        life.month(rng, m);
    }
    life.finish()
}

impl<'a> Life<'a> {
    /// Who the customer is: signup, region, channel, plan and contract,
    /// owner and rep, hidden traits, acquisition cost, first subscription.
    fn begin(
        rng: &mut ChaCha8Rng,
        month_start: &'a [i32],
        employees: &[Employee],
        am_by_region: &[Vec<usize>],
        rep_by_region: &[Vec<usize>],
    ) -> Life<'a> {
        let normal = Normal::new(0.0, 1.0).expect("valid");
        let months = month_start.len() - 1;
        let end = month_start[months];
        let mut s = Sim::default();

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
        let engagement0 =
            normal.sample(rng) + 0.3 * rep.skill + [-0.2, 0.0, 0.1, 0.0, 0.3][s.channel];
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
        let seats = LogNormal::new(seat_median.ln(), 0.5)
            .expect("valid")
            .sample(rng)
            .round()
            .max(1.0) as i64;
        let plan = s.plan0;
        let mrr = mrr_of(plan, seats, s.contract);
        s.subs.push((s.signup, plan, seats, mrr, "new"));

        let level_target = if s.never_active {
            -2.5
        } else {
            engagement0 + 0.15 * skill
        };
        let engagement = level_target + 0.5;
        let bugginess = normal.sample(rng);
        // First Monday on or after signup.
        let weekday = date_from_days(s.signup).weekday().num_days_from_monday() as i32;
        let week = s.signup + (7 - weekday) % 7;
        Life {
            s,
            month_start,
            end,
            first_month: j,
            normal,
            skill,
            satisfaction0,
            price_sens,
            fail_base,
            billing_change: None,
            bugginess,
            seats,
            plan,
            mrr,
            level_target,
            engagement,
            history: vec![engagement],
            satisfaction: satisfaction0,
            pain: 0.0,
            shocked: false,
            downgrade_left: 0,
            adopted: 0,
            week,
        }
    }

    /// One calendar month: the hidden state moves, the hazards follow, and
    /// (while the customer is still there) the month's events are written.
    fn month(&mut self, rng: &mut ChaCha8Rng, m: usize) {
        let k = (m - self.first_month) as u32;
        let lo = self.month_start[m].max(self.s.signup);
        let hi = self.month_start[m + 1];
        if k > 0 {
            self.evolve(rng);
        }
        let trend = self.engagement - self.history[self.history.len().saturating_sub(3)];
        let (h_vol, p_fail, h_inv) = self.hazards(k, trend, self.month_start[m]);
        let gone = self.s.churn.is_some();
        self.s
            .hazard
            .push((self.month_start[m], h_vol, h_inv, !gone));
        if gone {
            // After churn the latent state goes on evolving, so the hazard of
            // every month stays defined ("had the customer stayed"): the
            // oracle of a window must not depend on when the churn fell.
            self.pain *= 0.5;
            self.downgrade_left = self.downgrade_left.saturating_sub(1);
            return;
        }
        let mut churn_at = self.bill(rng, k, hi, p_fail);
        if churn_at.is_none() && rng.gen::<f64>() < h_vol {
            churn_at = Some(self.voluntary_churn(rng, trend, lo, hi));
        }
        let stop = churn_at.map_or(hi, |c| c.0.min(hi));
        self.weekly_usage(rng, hi, stop, churn_at.is_some());
        self.support(rng, lo, hi, stop);
        self.nps(rng, k, lo, hi, stop);
        self.downgrade_left = self.downgrade_left.saturating_sub(1);
        if churn_at.is_none() && k > 0 {
            self.plan_change(rng, lo, hi);
        }
        if let Some(c) = churn_at {
            self.s.churn = Some(c);
        }
    }

    /// Engagement drifts toward its target (with occasional shocks that a
    /// skilled manager helps recover from); satisfaction follows engagement,
    /// the manager's skill and support pain.
    fn evolve(&mut self, rng: &mut ChaCha8Rng) {
        if !self.shocked && rng.gen::<f64>() < 0.04 {
            self.shocked = true;
            self.level_target -= 1.2;
        } else if self.shocked && rng.gen::<f64>() < 0.1 + 0.1 * sigmoid(self.skill) {
            self.shocked = false;
            self.level_target += 1.2;
        }
        self.engagement =
            0.7 * self.engagement + 0.3 * self.level_target + 0.15 * self.normal.sample(rng);
        self.history.push(self.engagement);
        self.satisfaction = 0.7 * self.satisfaction
            + 0.3
                * (self.satisfaction0 + 0.4 * self.engagement + 0.25 * self.skill
                    - 0.5 * self.pain)
            + 0.15 * self.normal.sample(rng);
    }

    /// This month's voluntary hazard, first-attempt payment failure
    /// probability and involuntary hazard.
    fn hazards(&self, k: u32, trend: f64, month_start: i32) -> (f64, f64, f64) {
        use model::*;
        let contract_term = match self.s.contract {
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
            + ENGAGEMENT * self.engagement
            + TREND * trend
            + SATISFACTION * self.satisfaction
            + SUPPORT_PAIN * self.pain
            + PRICE_SENSITIVITY * self.price_sens
            + MANAGER_SKILL * self.skill
            + if self.downgrade_left > 0 {
                RECENT_DOWNGRADE
            } else {
                0.0
            }
            + contract_term
            + tenure_term;
        let h_vol = sigmoid(logit);
        if self.s.manual_payer {
            (h_vol, 0.0, 0.0)
        } else {
            let p_fail = if self.billing_change.is_some_and(|d| month_start >= d) {
                (self.fail_base * BILLING_CHANGE_FACTOR).min(0.9)
            } else {
                self.fail_base
            };
            let all_fail = CARD_EXPIRY * (1.0 - EXPIRED_RETRY_SUCCESS).powi(2)
                + (1.0 - CARD_EXPIRY) * p_fail * (1.0 - RETRY_SUCCESS).powi(2);
            (h_vol, p_fail, all_fail * CANCEL_UNRECOVERED)
        }
    }

    /// The month's invoice and its payment attempts; an unrecovered card
    /// failure may end in involuntary churn.
    fn bill(&mut self, rng: &mut ChaCha8Rng, k: u32, hi: i32, p_fail: f64) -> Option<ChurnEvent> {
        use model::*;
        let (end, mrr) = (self.end, self.mrr);
        let invoice_day = add_months(self.s.signup, k);
        if invoice_day >= hi || invoice_day >= end {
            return None;
        }
        let due = invoice_day + 14;
        let inv_idx = self.s.invoices.len();
        self.s.invoices.push((invoice_day, due, mrr));
        if self.s.manual_payer {
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
                self.s.payments.push((inv_idx, paid, 1, mrr, true, late));
            }
            return None;
        }
        let expired = rng.gen::<f64>() < CARD_EXPIRY;
        let fails_first = expired || rng.gen::<f64>() < p_fail;
        let retry = if expired {
            EXPIRED_RETRY_SUCCESS
        } else {
            RETRY_SUCCESS
        };
        let mut day = invoice_day;
        let mut ok = !fails_first;
        self.s.payments.push((inv_idx, day, 1, mrr, ok, 0));
        for (attempt, gap) in [(2, 3), (3, 4)] {
            if ok {
                break;
            }
            day += gap;
            if day >= end {
                break;
            }
            ok = rng.gen::<f64>() < retry;
            self.s
                .payments
                .push((inv_idx, day, attempt, mrr, ok, (day - due).max(0) as i64));
        }
        if !ok && day + 5 < end {
            if rng.gen::<f64>() < CANCEL_UNRECOVERED {
                return Some((day + 5, "involuntary", "payment_failed"));
            }
            let paid = day + rng.gen_range(10..=25);
            if paid < end {
                self.s
                    .payments
                    .push((inv_idx, paid, 4, mrr, true, (paid - due).max(0) as i64));
            }
        }
        None
    }

    /// A voluntary churn this month: its day and a reason drawn in
    /// proportion to what pushed the hazard up.
    fn voluntary_churn(&self, rng: &mut ChaCha8Rng, trend: f64, lo: i32, hi: i32) -> ChurnEvent {
        use model::*;
        let reasons = [
            (
                -ENGAGEMENT * self.engagement.min(0.0) - TREND * trend.min(0.0),
                "low_usage",
            ),
            (-SATISFACTION * self.satisfaction.min(0.0), "dissatisfied"),
            (SUPPORT_PAIN * self.pain, "support_issues"),
            (PRICE_SENSITIVITY * self.price_sens.max(0.0), "price"),
            (0.3, "switched_competitor"),
        ];
        let weights: Vec<f64> = reasons.iter().map(|r| r.0.max(0.01)).collect();
        let reason = reasons[pick(rng, &weights)].1;
        (rng.gen_range(lo..hi), "voluntary", reason)
    }

    /// Usage, one row per complete week before churn.
    fn weekly_usage(&mut self, rng: &mut ChaCha8Rng, hi: i32, stop: i32, churned: bool) {
        let active = !self.s.never_active;
        let (seats, engagement) = (self.seats, self.engagement);
        while self.week < hi {
            if self.week >= stop || self.week + 7 > self.end {
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
                    && self.adopted < 12
                    && rng.gen::<f64>() < 0.25 * sigmoid(engagement + 1.0)
                {
                    self.adopted += 1;
                }
                self.s
                    .usage
                    .push((self.week, sessions, users, minutes, self.adopted));
            }
            self.week += 7;
        }
        if churned && self.week < hi {
            self.week = hi;
        }
    }

    /// Support tickets (more for buggy accounts and disengaged users), the
    /// CSAT surveys after resolved ones, and the pain they add.
    fn support(&mut self, rng: &mut ChaCha8Rng, lo: i32, hi: i32, stop: i32) {
        let end = self.end;
        let rate = 0.12
            * (self.seats as f64).powf(0.35)
            * (-0.3 * self.engagement + 0.4 * self.bugginess).exp();
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
            self.s
                .tickets
                .push((opened, severity, category, resolved, hours));
            if let Some(r) = resolved {
                if r < stop.min(end) {
                    let answered = rng.gen::<f64>() < 0.5;
                    let score = (3.8 + 0.7 * self.satisfaction - 0.35 * (severity - 1) as f64
                        + 0.7 * self.normal.sample(rng))
                    .round()
                    .clamp(1.0, 5.0) as i64;
                    self.s.surveys.push((r, "csat", answered.then_some(score)));
                }
            }
        }
        self.pain = 0.5 * self.pain + month_pain;
    }

    /// The quarterly NPS survey; many go unanswered.
    fn nps(&mut self, rng: &mut ChaCha8Rng, k: u32, lo: i32, hi: i32, stop: i32) {
        if k % 3 != 2 {
            return;
        }
        let day = rng.gen_range(lo..hi);
        if day < stop {
            let answered = rng.gen::<f64>() < 0.35 + 0.2 * sigmoid(self.engagement);
            let score = (7.2 + 1.6 * self.satisfaction + 1.2 * self.normal.sample(rng))
                .round()
                .clamp(0.0, 10.0) as i64;
            self.s.surveys.push((day, "nps", answered.then_some(score)));
        }
    }

    /// Expansion (engaged customers with skilled managers) or contraction
    /// (disengaged, price-sensitive ones).
    fn plan_change(&mut self, rng: &mut ChaCha8Rng, lo: i32, hi: i32) {
        let change_day = rng.gen_range(lo..hi);
        if rng.gen::<f64>() < sigmoid(-3.8 + 0.9 * self.engagement + 0.3 * self.skill) {
            if self.plan < 2 && rng.gen::<f64>() < 0.3 {
                self.plan += 1;
            } else {
                self.seats = ((self.seats as f64) * rng.gen_range(1.1..1.5)).ceil() as i64;
            }
            self.mrr = mrr_of(self.plan, self.seats, self.s.contract);
            self.s
                .subs
                .push((change_day, self.plan, self.seats, self.mrr, "upgrade"));
        } else if rng.gen::<f64>() < sigmoid(-4.5 - 0.9 * self.engagement + 0.3 * self.price_sens) {
            if self.plan > 0 && rng.gen::<f64>() < 0.3 {
                self.plan -= 1;
            } else {
                self.seats =
                    (((self.seats as f64) * rng.gen_range(0.6..0.9)).floor() as i64).max(1);
            }
            self.mrr = mrr_of(self.plan, self.seats, self.s.contract);
            self.s
                .subs
                .push((change_day, self.plan, self.seats, self.mrr, "downgrade"));
            self.downgrade_left = 3;
        }
    }

    fn finish(mut self) -> Sim {
        self.s.surveys.sort_by_key(|x| x.0);
        self.s.tickets.sort_by_key(|x| x.0);
        self.s
    }
}
