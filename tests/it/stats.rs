//! Statistics against SciPy reference values (the canary checks' error
//! rates are measured in canary_stats.rs).

use gateprobe::stats::binomial::*;
use gateprobe::stats::health::*;
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
fn binomial_tests_and_intervals_match_scipy() {
    let reference = reference();
    for row in reference["binomial"].as_array().unwrap() {
        let (k, n, p0) = (
            row["successes"].as_u64().unwrap(),
            row["trials"].as_u64().unwrap(),
            row["p0"].as_f64().unwrap(),
        );
        let case = format!("k={k} n={n} p0={p0}");
        assert_close(
            binomial_test_two_sided(k, n, p0),
            row["two_sided"].as_f64().unwrap(),
            &format!("{case} two-sided"),
        );
        assert_close(
            binomial_test_one_sided(k, n, p0, true),
            row["greater"].as_f64().unwrap(),
            &format!("{case} greater"),
        );
        assert_close(
            binomial_test_one_sided(k, n, p0, false),
            row["less"].as_f64().unwrap(),
            &format!("{case} less"),
        );
        for confidence in [0.95, 0.98, 0.99] {
            for (name, interval) in [
                ("clopper_pearson", clopper_pearson(k, n, confidence)),
                ("wilson", wilson(k, n, confidence)),
            ] {
                let expected = &row[format!("{name}_{confidence}")];
                assert_close(
                    interval.0,
                    expected[0].as_f64().unwrap(),
                    &format!("{case} {name} {confidence} low"),
                );
                assert_close(
                    interval.1,
                    expected[1].as_f64().unwrap(),
                    &format!("{case} {name} {confidence} high"),
                );
            }
        }
    }
}

#[test]
fn chi_square_and_normal_quantiles_match_scipy() {
    let reference = reference();
    for row in reference["chi_square"].as_array().unwrap() {
        let observed: Vec<u64> = row["observed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let shares: Vec<f64> = row["shares"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let (statistic, freedom, p) = chi_square_goodness_of_fit(&observed, &shares);
        assert_eq!(freedom, observed.len() - 1);
        assert_close(
            statistic,
            row["statistic"].as_f64().unwrap(),
            "χ² statistic",
        );
        assert_close(p, row["p"].as_f64().unwrap(), "χ² p-value");
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

fn u64s(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn groups(value: &Value) -> Vec<(u64, u64)> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap()))
        .collect()
}

#[test]
fn health_statistics_match_scipy_and_statsmodels() {
    let reference = reference();
    for row in reference["fisher"].as_array().unwrap() {
        let t = u64s(&row["table"]);
        assert_close(
            fisher_greater(t[0], t[0] + t[1], t[2], t[2] + t[3]),
            row["p_greater"].as_f64().unwrap(),
            &format!("Fisher {t:?}"),
        );
    }
    for row in reference["newcombe"].as_array().unwrap() {
        let c = u64s(&row["counts"]);
        let confidence = row["confidence"].as_f64().unwrap();
        let (low, high) = newcombe_difference(c[0], c[1], c[2], c[3], confidence);
        assert_close(
            low,
            row["low"].as_f64().unwrap(),
            &format!("Newcombe low {c:?}"),
        );
        assert_close(
            high,
            row["high"].as_f64().unwrap(),
            &format!("Newcombe high {c:?}"),
        );
    }
    for row in reference["mann_whitney"].as_array().unwrap() {
        let (x, y) = (groups(&row["x"]), groups(&row["y"]));
        let test = mann_whitney_greater(&x, &y);
        assert_close(test.u, row["u"].as_f64().unwrap(), "Mann–Whitney U");
        assert_close(
            test.p_greater,
            row["p_greater"].as_f64().unwrap(),
            "Mann–Whitney p",
        );
        let shift = hodges_lehmann(&x, &y, 0.95).unwrap();
        assert_close(
            shift.estimate,
            row["hodges_lehmann"].as_f64().unwrap(),
            "Hodges–Lehmann",
        );
        assert_close(shift.low, row["moses_95"][0].as_f64().unwrap(), "Moses low");
        assert_close(
            shift.high,
            row["moses_95"][1].as_f64().unwrap(),
            "Moses high",
        );
    }
    for row in reference["holm"].as_array().unwrap() {
        let p: Vec<f64> = row["p"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (seen, expected) in holm(&p).iter().zip(row["adjusted"].as_array().unwrap()) {
            assert_close(*seen, expected.as_f64().unwrap(), "Holm");
        }
    }
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
