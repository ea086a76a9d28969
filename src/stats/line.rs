//! Ordinary least squares for a straight line, with Student-t intervals for
//! the slope and for the line's mean at a point — the throttle probe's fit of
//! admitted requests over time (slope = refill rate; the line at the moment
//! the bucket began to drain, minus what was admitted by then = the burst).
//!
//! Source: any regression text, e.g. Draper & Smith, *Applied Regression
//! Analysis* (3rd ed.), §1.3–1.4: se(b₁) = s/√Sxx and
//! se(ŷ₀) = s·√(1/n + (x₀ − x̄)²/Sxx), with s² = SSE/(n − 2), t on n − 2 df.
//! Checked against statsmodels' OLS (`tests/reference/make_reference.py`).
use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    pub n: usize,
    pub slope: f64,
    pub intercept: f64,
    x_mean: f64,
    sxx: f64,
    /// Residual standard deviation, √(SSE/(n − 2)).
    pub residual_sd: f64,
}

impl LineFit {
    /// Fits y = intercept + slope·x; `None` with fewer than three points or
    /// when every x is the same.
    pub fn fit(points: &[(f64, f64)]) -> Option<Self> {
        let n = points.len();
        if n < 3 {
            return None;
        }
        let count = n as f64;
        let x_mean = points.iter().map(|p| p.0).sum::<f64>() / count;
        let y_mean = points.iter().map(|p| p.1).sum::<f64>() / count;
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for &(x, y) in points {
            sxx += (x - x_mean) * (x - x_mean);
            sxy += (x - x_mean) * (y - y_mean);
        }
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let intercept = y_mean - slope * x_mean;
        let sse: f64 = points
            .iter()
            .map(|&(x, y)| (y - intercept - slope * x).powi(2))
            .sum();
        Some(Self {
            n,
            slope,
            intercept,
            x_mean,
            sxx,
            residual_sd: (sse / (count - 2.0)).sqrt(),
        })
    }

    /// The same fit with the residual standard deviation raised to at least
    /// `floor` (a count's rounding alone is 1/√12 ≈ 0.29).
    pub fn with_residual_floor(mut self, floor: f64) -> Self {
        self.residual_sd = self.residual_sd.max(floor);
        self
    }

    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }

    fn t_quantile(&self, confidence: f64) -> f64 {
        StudentsT::new(0.0, 1.0, (self.n - 2) as f64)
            .map(|t| t.inverse_cdf(0.5 + confidence / 2.0))
            .unwrap_or(f64::INFINITY)
    }

    pub fn slope_se(&self) -> f64 {
        self.residual_sd / self.sxx.sqrt()
    }

    /// Standard error of the line's mean at `x`.
    pub fn mean_se_at(&self, x: f64) -> f64 {
        self.residual_sd * (1.0 / self.n as f64 + (x - self.x_mean).powi(2) / self.sxx).sqrt()
    }

    /// Two-sided interval for the slope.
    pub fn slope_interval(&self, confidence: f64) -> (f64, f64) {
        let half = self.t_quantile(confidence) * self.slope_se();
        (self.slope - half, self.slope + half)
    }

    /// Two-sided interval for the line's mean at `x`.
    pub fn mean_interval_at(&self, x: f64, confidence: f64) -> (f64, f64) {
        let half = self.t_quantile(confidence) * self.mean_se_at(x);
        (self.at(x) - half, self.at(x) + half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_has_zero_residual_and_degenerate_inputs_are_none() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        let fit = LineFit::fit(&points).unwrap();
        assert!((fit.slope - 2.0).abs() < 1e-12 && (fit.intercept - 3.0).abs() < 1e-12);
        assert!(fit.residual_sd < 1e-9);
        assert!(LineFit::fit(&points[..2]).is_none());
        assert!(LineFit::fit(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none());
    }
}
