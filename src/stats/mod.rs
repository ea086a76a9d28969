//! Statistics for the canary verdict, each procedure with its source, each
//! checked against reference values computed with SciPy
//! (`tests/reference/make_reference.py` → `tests/reference/stats.json`).
//!
//! statrs supplies the distributions (Beta, Binomial, Normal, χ²) and
//! Fisher's exact test; what it lacks is written here: exact binomial tests,
//! Clopper–Pearson and Wilson intervals, the TOST sample size, Wald's
//! sequential probability ratio test, Newcombe's interval for a difference,
//! the Mann–Whitney U test and Hodges–Lehmann shift from histograms, and
//! Holm's correction. Reference values for the last ones come from
//! statsmodels and NumPy (same script).
pub mod binomial;
pub mod confseq;
pub mod health;
pub mod line;
pub mod sprt;
