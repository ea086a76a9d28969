//! Statistics for the canary verdict, each procedure with its source, each
//! checked against reference values computed with SciPy
//! (`tests/reference/make_reference.py` → `tests/reference/stats.json`).
//!
//! statrs supplies the distributions (Beta, Binomial, Normal, χ²); what it
//! lacks is written here: exact binomial tests, Clopper–Pearson and Wilson
//! intervals, the TOST sample size, and Wald's sequential probability ratio
//! test.
pub mod binomial;
pub mod sprt;
