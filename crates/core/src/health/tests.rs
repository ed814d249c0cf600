//! Tests of the health index: hand-computed cases, the missing-data rules,
//! profiles, bands, trend and config checks.

use super::*;

fn full(p: f64) -> HealthInputs {
    HealthInputs {
        churn_probability: p,
        tenure_days: Some(365.0),
        sessions_per_seat_30d: Some(6.0),
        usage_trend: Some(0.0),
        features_adopted: Some(4.0),
        last_nps: Some(8.0),
        last_csat: Some(4.0),
        payment_failures_90d: Some(0.0),
        late_payments_90d: Some(0.0),
        tickets_90d: Some(0.0),
        severe_tickets_90d: Some(0.0),
        open_tickets: Some(0.0),
        mapped: Vec::new(),
    }
}

fn component(h: &HealthIndex, c: Component) -> &ComponentScore {
    h.components.iter().find(|x| x.component == c).unwrap()
}

#[test]
fn a_hand_computed_customer() {
    let h = health_index(&full(0.2), &HealthConfig::default());
    // churn risk 100 x (1 - 0.2 / 0.4) = 50; engagement: level 50, trend 50, adoption 50 -> 50;
    // satisfaction: (80 + 75) / 2 = 77.5; payment 100; support 100.
    let expect = 0.40 * 50.0 + 0.20 * 50.0 + 0.15 * 77.5 + 0.15 * 100.0 + 0.10 * 100.0;
    assert!((h.score - expect).abs() < 1e-9, "{} vs {expect}", h.score);
    assert_eq!(h.band, Band::Yellow, "66.6 is yellow");
    assert_eq!(h.profile, "default");
    assert_eq!(component(&h, Component::Satisfaction).score, Some(77.5));
    let total: f64 = h.components.iter().map(|c| c.contribution).sum();
    assert!((total - h.score).abs() < 1e-9);
}

#[test]
fn weights_are_normalised() {
    let config = HealthConfig {
        weights: Weights {
            churn_risk: 4.0,
            engagement: 2.0,
            satisfaction: 1.5,
            payment: 1.5,
            support: 1.0,
        },
        ..Default::default()
    };
    let a = health_index(&full(0.3), &config);
    let b = health_index(&full(0.3), &HealthConfig::default());
    assert!((a.score - b.score).abs() < 1e-9);
    let sum: f64 = a.components.iter().map(|c| c.weight).sum();
    assert!((sum - 1.0).abs() < 1e-12);
}

#[test]
fn a_missing_component_is_reweighted_or_neutral_never_zero() {
    let mut x = full(0.2);
    x.last_nps = None;
    x.last_csat = None;
    let reweighted = health_index(&x, &HealthConfig::default());
    let sat = component(&reweighted, Component::Satisfaction);
    assert_eq!(sat.score, None);
    assert_eq!(sat.weight, 0.0);
    let expect = (0.40 * 50.0 + 0.20 * 50.0 + 0.15 * 100.0 + 0.10 * 100.0) / 0.85;
    assert!((reweighted.score - expect).abs() < 1e-9);

    let config = HealthConfig {
        missing: MissingPolicy::Neutral,
        ..Default::default()
    };
    let neutral = health_index(&x, &config);
    let sat = component(&neutral, Component::Satisfaction);
    assert_eq!(sat.score, None);
    assert!((sat.contribution - 0.15 * 50.0).abs() < 1e-9);
    // Treating the missing answers as zero would give a lower score than both.
    let mut zero = full(0.2);
    zero.last_nps = Some(0.0);
    zero.last_csat = Some(1.0);
    let zeroed = health_index(&zero, &HealthConfig::default());
    assert!(zeroed.score < neutral.score && zeroed.score < reweighted.score);
}

#[test]
fn no_usage_is_zero_engagement_not_missing() {
    let mut x = full(0.2);
    x.sessions_per_seat_30d = Some(0.0);
    x.features_adopted = Some(0.0);
    x.usage_trend = Some(0.0);
    let h = health_index(&x, &HealthConfig::default());
    // level 0, trend 50, adoption 0 -> 12.5
    assert_eq!(component(&h, Component::Engagement).score, Some(12.5));
}

#[test]
fn onboarding_customers_use_their_profile() {
    let mut x = full(0.2);
    x.tenure_days = Some(30.0);
    let h = health_index(&x, &HealthConfig::default());
    assert_eq!(h.profile, "onboarding");
    assert!((component(&h, Component::Engagement).weight - 0.40).abs() < 1e-12);
    x.tenure_days = Some(90.0);
    assert_eq!(
        health_index(&x, &HealthConfig::default()).profile,
        "default"
    );
}

#[test]
fn bands_follow_the_thresholds() {
    let b = Bands::default();
    assert_eq!(b.of(70.0), Band::Green);
    assert_eq!(b.of(69.99), Band::Yellow);
    assert_eq!(b.of(40.0), Band::Yellow);
    assert_eq!(b.of(39.99), Band::Red);
}

#[test]
fn the_index_stays_in_range_and_falls_with_risk() {
    let config = HealthConfig::default();
    let mut last = f64::INFINITY;
    for k in 0..=100 {
        let p = f64::from(k) / 100.0;
        let mut x = full(p);
        x.tickets_90d = Some(1e9);
        x.payment_failures_90d = Some(f64::INFINITY);
        x.usage_trend = Some(-1e300);
        let h = health_index(&x, &config);
        assert!((0.0..=100.0).contains(&h.score), "{}", h.score);
        assert!(h.score <= last + 1e-12, "not monotone at p = {p}");
        last = h.score;
    }
    let nan = health_index(&full(f64::NAN), &config);
    assert!(nan.score.is_finite());
}

#[test]
fn trend_has_a_direction() {
    let c = HealthConfig::default();
    assert_eq!(trend(None, 50.0, &c).direction, Direction::New);
    assert_eq!(trend(Some(40.0), 50.0, &c).direction, Direction::Up);
    assert_eq!(trend(Some(50.0), 49.5, &c).direction, Direction::Flat);
    let t = trend(Some(60.0), 50.0, &c);
    assert_eq!(t.direction, Direction::Down);
    assert_eq!(t.change, Some(-10.0));
}

#[test]
fn bad_settings_name_their_key() {
    let mut c = HealthConfig::default();
    c.weights.engagement = -1.0;
    assert_eq!(c.check().unwrap_err().key, "health.weights.engagement");
    let c = HealthConfig {
        weights: Weights {
            churn_risk: 0.0,
            engagement: 0.0,
            satisfaction: 0.0,
            payment: 0.0,
            support: 0.0,
        },
        ..Default::default()
    };
    assert_eq!(c.check().unwrap_err().key, "health.weights");
    let c = HealthConfig {
        bands: Bands {
            green: 40.0,
            yellow: 60.0,
        },
        ..Default::default()
    };
    let e = c.check().unwrap_err();
    assert_eq!(e.key, "health.bands");
    assert!(e.message.contains("overlap"));
    let mut c = HealthConfig::default();
    c.profiles[0].weights.support = f64::NAN;
    assert_eq!(
        c.check().unwrap_err().key,
        "health.profiles[0].weights.support"
    );
    HealthConfig::default().check().unwrap();
}

#[test]
fn the_plain_one_minus_p_is_a_setting_away() {
    let mut config = HealthConfig::default();
    config.scales.churn_probability_at_zero = 1.0;
    let h = health_index(&full(0.2), &config);
    assert_eq!(component(&h, Component::ChurnRisk).score, Some(80.0));
    let h = health_index(&full(0.7), &HealthConfig::default());
    assert_eq!(component(&h, Component::ChurnRisk).score, Some(0.0));
}
