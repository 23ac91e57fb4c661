//! See `tests/compare.rs`: the runner lives in the integration test.
