//! Statistics for the canary verdict and the throttle estimate, each
//! procedure with its source, each checked against reference values computed
//! with SciPy and statsmodels (`tests/reference/make_reference.py` →
//! `tests/reference/stats.json`).
//!
//! statrs supplies the distributions (Normal, χ², Student t) and ln Γ; what
//! it lacks is written here: confidence sequences (a beta-binomial mixture for
//! shares and error rates, a Gaussian mixture for means), the TOST sample size
//! for comparison, the χ² dispersion test, and the straight-line fit.
pub mod binomial;
pub mod confseq;
pub mod line;
pub mod sequential;
