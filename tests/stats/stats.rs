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

/// The group-sequential designs against an independent SciPy computation:
/// exact binomial bounds and crossing chances (numpy convolution of
/// `binom.pmf`), normal bounds (`multivariate_normal`), the Clopper–Pearson
/// interval (`binomtest(...).proportion_ci(method="exact")`), z carried to
/// Student's t, and the fixed-sample test's size.
#[test]
fn group_sequential_designs_match_scipy() {
    use gateprobe::canary::design::fixed_size;
    use gateprobe::canary::split::Expectation;
    use gateprobe::stats::sequential::*;
    let reference = reference();
    for row in reference["gs_binomial"].as_array().unwrap() {
        let looks: Vec<u64> = row["looks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let side = if row["side"] == "upper" {
            Side::Upper
        } else {
            Side::Lower
        };
        let (p, alpha) = (row["p"].as_f64().unwrap(), row["alpha"].as_f64().unwrap());
        let bounds = binomial_boundary(&looks, &fractions(&looks), p, alpha, Spending::HSD, side);
        let expected: Vec<Option<u64>> = row["bounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64())
            .collect();
        assert_eq!(bounds, expected, "bounds at {p} {side:?}");
        for (truth, chance) in floats(&row["truths"])
            .into_iter()
            .zip(floats(&row["crossing"]))
        {
            let walked = binomial_walk(&looks, truth, |look, hits| {
                let crossed = match (side, bounds[look]) {
                    (Side::Upper, Some(b)) => hits >= b,
                    (Side::Lower, Some(b)) => hits <= b,
                    (_, None) => false,
                };
                if crossed {
                    Stop::Fail
                } else {
                    Stop::Continue
                }
            });
            assert!(
                (walked.fail - chance).abs() <= 1e-9,
                "crossing at {truth}: {} vs SciPy {chance}",
                walked.fail
            );
        }
    }
    for row in reference["gs_normal"].as_array().unwrap() {
        let fractions = floats(&row["fractions"]);
        let bounds = normal_boundary(&fractions, row["alpha"].as_f64().unwrap(), Spending::HSD);
        for (seen, expected) in bounds.iter().zip(floats(&row["bounds"])) {
            // The grid is 1/200 of a standard deviation.
            assert!(
                (seen - expected).abs() <= 0.01,
                "{fractions:?}: {seen} vs SciPy {expected}"
            );
        }
    }
    for row in reference["clopper_pearson"].as_array().unwrap() {
        let (low, high) = clopper_pearson(
            row["hits"].as_u64().unwrap(),
            row["trials"].as_u64().unwrap(),
            row["alpha"].as_f64().unwrap(),
        );
        let expected = floats(&row["interval"]);
        assert_close(low, expected[0], "Clopper–Pearson low");
        assert_close(high, expected[1], "Clopper–Pearson high");
    }
    for row in reference["t_bound"].as_array().unwrap() {
        let seen = gateprobe::canary::latency::t_bound(
            row["z"].as_f64().unwrap(),
            row["batches"].as_u64().unwrap() as usize,
        );
        assert_close(seen, row["t"].as_f64().unwrap(), "z carried to t");
    }
    for row in reference["fixed_size"].as_array().unwrap() {
        let e = Expectation {
            share: row["share"].as_f64().unwrap(),
            tolerance: row["tolerance"].as_f64().unwrap(),
        };
        let n = fixed_size(&e, 0.01, 0.95, row["zone"].as_f64().unwrap());
        let expected = row["n"].as_u64().unwrap() as f64;
        // Both are the first n of the saw-tooth their bisections meet.
        assert!(
            (n as f64 - expected).abs() <= 0.02 * expected,
            "fixed size {e:?}: {n} vs SciPy {expected}"
        );
    }
}
