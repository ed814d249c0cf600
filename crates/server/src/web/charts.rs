//! Small SVG charts for the web pages: a health gauge, component bars and a
//! health history line. Presentation attributes only (no inline styles), so
//! the pages keep a strict Content-Security-Policy.

use maud::{html, Markup};

use churnguard_core::health::ComponentScore;

fn band_colour(score: f64) -> &'static str {
    if score >= 70.0 {
        "#1a7f37"
    } else if score >= 40.0 {
        "#9a6700"
    } else {
        "#cf222e"
    }
}

/// A half-circle gauge of a 0–100 score, with the number in the middle.
pub fn gauge(score: f64, label: &str) -> Markup {
    let s = score.clamp(0.0, 100.0);
    let angle = std::f64::consts::PI * (1.0 - s / 100.0);
    let (cx, cy, r) = (100.0, 100.0, 80.0);
    let (x, y) = (cx + r * angle.cos(), cy - r * angle.sin());
    let track = format!("M {} {} A {r} {r} 0 0 1 {} {}", cx - r, cy, cx + r, cy);
    let value = format!("M {} {} A {r} {r} 0 0 1 {x:.2} {y:.2}", cx - r, cy);
    html! {
        svg.gauge viewBox="0 0 200 120" width="200" height="120" role="img" aria-label=(format!("{label}: {s:.0} of 100")) {
            path d=(track) fill="none" stroke="#d0d7de" stroke-width="16" {}
            path d=(value) fill="none" stroke=(band_colour(s)) stroke-width="16" {}
            text x="100" y="95" text-anchor="middle" font-size="32" font-weight="bold" fill="#1f2328" { (format!("{s:.0}")) }
            text x="100" y="115" text-anchor="middle" font-size="12" fill="#57606a" { (label) }
        }
    }
}

/// One bar per component: its score (0–100) and its contribution in points.
pub fn component_bars(components: &[ComponentScore]) -> Markup {
    let row_h = 28.0;
    let height = row_h * components.len() as f64 + 10.0;
    html! {
        svg.bars viewBox=(format!("0 0 470 {height}")) width="470" height=(height) role="img"
            aria-label="Health components: score and points contributed" {
            @for (k, c) in components.iter().enumerate() {
                @let y = 5.0 + row_h * k as f64;
                @let score = c.score.unwrap_or(0.0);
                text x="0" y=(y + 16.0) font-size="12" fill="#1f2328" { (c.component.name().replace('_', " ")) }
                rect x="110" y=(y + 4.0) width="200" height="16" fill="#eaeef2" {}
                @if c.score.is_some() {
                    rect x="110" y=(y + 4.0) width=(format!("{:.1}", 2.0 * score)) height="16" fill=(band_colour(score)) {}
                }
                text x="318" y=(y + 16.0) font-size="12" fill="#1f2328" {
                    @if let Some(s) = c.score { (format!("{s:.0}")) } @else { "no data" }
                    " → " (format!("{:.1} pts", c.contribution))
                }
            }
        }
    }
}

/// Health over time: `(label, score)` oldest first.
pub fn history_line(points: &[(String, f64)]) -> Markup {
    let (w, h, pad) = (480.0, 160.0, 30.0);
    let n = points.len();
    let x = |i: usize| {
        if n <= 1 {
            w / 2.0
        } else {
            pad + (w - 2.0 * pad) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v.clamp(0.0, 100.0) / 100.0;
    let line: String = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        svg.history viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img" aria-label="Health history" {
            @for band in [40.0, 70.0] {
                line x1=(pad) x2=(w - pad) y1=(y(band)) y2=(y(band)) stroke="#d0d7de" stroke-dasharray="4 3" {}
                text x="2" y=(y(band) + 4.0) font-size="10" fill="#57606a" { (band) }
            }
            polyline points=(line) fill="none" stroke="#0969da" stroke-width="2" {}
            @for (i, (label, v)) in points.iter().enumerate() {
                circle cx=(x(i)) cy=(y(*v)) r="4" fill=(band_colour(*v)) {
                    title { (format!("{label}: {v:.1}")) }
                }
                text x=(x(i)) y=(h - 8.0) font-size="10" text-anchor="middle" fill="#57606a" { (label) }
            }
        }
    }
}

/// A survival curve: the probability of still being a customer after each
/// month (`points[t]` is month `t + 1`), with year marks.
pub fn survival_line(points: &[f64]) -> Markup {
    let (w, h, pad) = (480.0, 160.0, 30.0);
    let n = points.len().max(1);
    let x = |t: f64| pad + (w - 2.0 * pad) * t / n as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v.clamp(0.0, 1.0);
    let line: String = std::iter::once((0.0, 1.0))
        .chain(points.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)))
        .map(|(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        svg.survival viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img" aria-label="Chance of still being a customer, month by month" {
            @for level in [0.5, 1.0] {
                line x1=(pad) x2=(w - pad) y1=(y(level)) y2=(y(level)) stroke="#d0d7de" stroke-dasharray="4 3" {}
                text x="2" y=(y(level) + 4.0) font-size="10" fill="#57606a" { (format!("{:.0}%", 100.0 * level)) }
            }
            polyline points=(line) fill="none" stroke="#0969da" stroke-width="2" {}
            @for year in (12..=n).step_by(12) {
                circle cx=(x(year as f64)) cy=(y(points[year - 1])) r="3" fill="#0969da" {
                    title { (format!("after {} year(s): {:.0}%", year / 12, 100.0 * points[year - 1])) }
                }
                text x=(x(year as f64)) y=(h - 8.0) font-size="10" text-anchor="middle" fill="#57606a" { (format!("{}y", year / 12)) }
            }
        }
    }
}

/// Cohort curves: each cohort's observed survival (solid) and its
/// projection (dashed), months on the x axis.
pub fn cohort_lines(cohorts: &[&churnguard_core::value::cohorts::CohortRetention]) -> Markup {
    const COLOURS: [&str; 6] = [
        "#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e",
    ];
    let (w, h, pad, right) = (600.0, 220.0, 30.0, 60.0);
    let months = cohorts
        .iter()
        .map(|c| c.projected.len().max(c.survivors.len()))
        .max()
        .unwrap_or(1)
        .max(2)
        - 1;
    let x = |t: usize| pad + (w - pad - right) * t as f64 / months as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v.clamp(0.0, 1.0);
    let path = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(t, s)| format!("{:.1},{:.1}", x(t), y(*s)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        svg.cohorts viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img" aria-label="Retention by signup cohort: observed and projected" {
            @for level in [0.5, 1.0] {
                line x1=(pad) x2=(w - right) y1=(y(level)) y2=(y(level)) stroke="#d0d7de" stroke-dasharray="4 3" {}
                text x="2" y=(y(level) + 4.0) font-size="10" fill="#57606a" { (format!("{:.0}%", 100.0 * level)) }
            }
            @for t in (0..=months).step_by(6) {
                text x=(x(t)) y=(h - 8.0) font-size="10" text-anchor="middle" fill="#57606a" { (format!("{t}m")) }
            }
            @for (i, c) in cohorts.iter().enumerate() {
                @let colour = COLOURS[i % COLOURS.len()];
                @let observed: Vec<f64> = c.survivors.iter().map(|n| *n as f64 / c.customers.max(1) as f64).collect();
                polyline points=(path(&c.projected)) fill="none" stroke=(colour) stroke-width="1.5" stroke-dasharray="5 4" {
                    title { (format!("{}: projected", c.cohort)) }
                }
                polyline points=(path(&observed)) fill="none" stroke=(colour) stroke-width="2.5" {
                    title { (format!("{}: observed ({} customers)", c.cohort, c.customers)) }
                }
                text x=(w - right + 4.0) y=(y(*c.projected.last().unwrap_or(&0.0)) + 3.0) font-size="9" fill=(colour) { (c.cohort) }
            }
        }
    }
}

/// A baseline-against-now histogram: per bin, the training baseline's share
/// (grey) beside the latest run's (blue), for one input.
pub fn drift_bars(name: &str, expected: &[f64], actual: &[f64], bins: &[String]) -> Markup {
    let (w, h, pad, top) = (360.0, 140.0, 24.0, 8.0);
    let n = expected.len().max(1);
    let max = expected
        .iter()
        .chain(actual)
        .copied()
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let slot = (w - 2.0 * pad) / n as f64;
    let bar = (slot / 2.0 - 1.0).max(1.0);
    let y = |v: f64| top + (h - pad - top) * (1.0 - v / max);
    html! {
        svg.drift viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img"
            aria-label=(format!("{name}: training baseline against the latest run, per bin")) {
            line x1=(pad) x2=(w - pad) y1=(h - pad) y2=(h - pad) stroke="#d0d7de" {}
            @for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
                @let x0 = pad + slot * i as f64;
                rect x=(x0) y=(y(*e)) width=(bar) height=((h - pad - y(*e)).max(0.0)) fill="#8c959f" {
                    title { (format!("{}: baseline {:.1}%", bins.get(i).map_or("", String::as_str), 100.0 * e)) }
                }
                rect x=(x0 + bar + 1.0) y=(y(*a)) width=(bar) height=((h - pad - y(*a)).max(0.0)) fill="#0969da" {
                    title { (format!("{}: now {:.1}%", bins.get(i).map_or("", String::as_str), 100.0 * a)) }
                }
            }
            text x=(pad) y=(h - 6.0) font-size="10" fill="#57606a" { "grey: training baseline · blue: latest run" }
        }
    }
}
