//! Statistics against SciPy reference values (the canary checks' error
//! rates are measured in canary_stats.rs).

use gateprobe::stats::binomial::*;
use serde_json::Value;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/stats.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn assert_close(seen: f64, expected: f64, what: &str) {
    let tolerance = 1e-6 * expected.abs().max(1e-300) + 1e-15;
    assert!(
        (seen - expected).abs() <= tolerance,
        "{what}: {seen} vs SciPy {expected}"
    );
}

#[test]
fn dispersion_and_normal_quantiles_match_scipy() {
    let reference = reference();
    for row in reference["dispersion"].as_array().unwrap() {
        let groups: Vec<(u64, u64)> = row["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap()))
            .collect();
        let (statistic, freedom, p) = dispersion_test(groups.into_iter()).unwrap();
        assert_eq!(freedom as u64, row["df"].as_u64().unwrap());
        assert_close(
            statistic,
            row["statistic"].as_f64().unwrap(),
            "χ² statistic",
        );
        assert_close(p, row["p"].as_f64().unwrap(), "χ² p-value");
    }
    for row in reference["chi2_critical"].as_array().unwrap() {
        assert_close(
            dispersion_critical(
                row["df"].as_u64().unwrap() as usize,
                row["p"].as_f64().unwrap(),
            ),
            row["statistic"].as_f64().unwrap(),
            "χ² critical value",
        );
    }
    for row in reference["normal_quantile"].as_array().unwrap() {
        assert_close(
            normal_quantile(row["probability"].as_f64().unwrap()),
            row["z"].as_f64().unwrap(),
            "z",
        );
    }
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn line_fit_matches_statsmodels_ols() {
    let reference = reference();
    let floats = |value: &Value| -> Vec<f64> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    for row in reference["line_fit"].as_array().unwrap() {
        let points: Vec<(f64, f64)> = floats(&row["x"])
            .into_iter()
            .zip(floats(&row["y"]))
            .collect();
        let fit = gateprobe::stats::line::LineFit::fit(&points).unwrap();
        assert_close(fit.slope, row["slope"].as_f64().unwrap(), "OLS slope");
        assert_close(
            fit.intercept,
            row["intercept"].as_f64().unwrap(),
            "OLS intercept",
        );
        assert_close(
            fit.residual_sd,
            row["residual_sd"].as_f64().unwrap(),
            "OLS residual sd",
        );
        let (low, high) = fit.slope_interval(0.95);
        let expected = floats(&row["slope_95"]);
        assert_close(low, expected[0], "OLS slope 95% low");
        assert_close(high, expected[1], "OLS slope 95% high");
        let (low, high) = fit.mean_interval_at(row["x0"].as_f64().unwrap(), 0.95);
        let expected = floats(&row["mean_at_x0_95"]);
        assert_close(low, expected[0], "OLS mean at x0 95% low");
        assert_close(high, expected[1], "OLS mean at x0 95% high");
    }
}

#[test]
fn confidence_sequences_match_scipy() {
    use gateprobe::stats::confseq::{normal_mixture_radius, tuned_rho2, BernoulliCs, Mixture};
    let reference = reference();
    for row in reference["mixture_cs"].as_array().unwrap() {
        let number = |key: &str| row[key].as_f64().unwrap();
        let mixture = Mixture::centred(
            number("center"),
            number("scale"),
            number("w_zero"),
            number("w_one"),
            number("w_flat"),
        );
        let (hits, trials) = (
            row["hits"].as_u64().unwrap(),
            row["trials"].as_u64().unwrap(),
        );
        let cs = BernoulliCs::from_counts(mixture, number("alpha"), hits, trials);
        // The same counts pushed one by one give the same sequence.
        let mut pushed = BernoulliCs::new(mixture, number("alpha"));
        for index in 0..trials {
            pushed.push(index < hits);
        }
        let what = format!("{hits}/{trials} around {}", number("center"));
        for (p, expected) in floats(&row["points"]).iter().zip(floats(&row["log_ratio"])) {
            assert_close(cs.log_ratio(*p), expected, &format!("ln M({p}) for {what}"));
            assert_close(
                pushed.log_ratio(*p),
                expected,
                &format!("pushed ln M({p}) for {what}"),
            );
        }
        let (low, high) = cs.interval().expect("not empty");
        let expected = floats(&row["interval"]);
        assert!(
            (low - expected[0]).abs() < 1e-9,
            "{what}: low {low} vs {}",
            expected[0]
        );
        assert!(
            (high - expected[1]).abs() < 1e-9,
            "{what}: high {high} vs {}",
            expected[1]
        );
    }
    for row in reference["normal_mixture"].as_array().unwrap() {
        let number = |key: &str| row[key].as_f64().unwrap();
        let radius = normal_mixture_radius(
            number("t"),
            number("sigma"),
            number("alpha"),
            tuned_rho2(number("t_star"), number("alpha")),
        );
        assert_close(radius, number("radius"), "Gaussian-mixture radius");
    }
}
