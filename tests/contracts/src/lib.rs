//! Consumer-driven contract tests (Pact) between the services: see
//! `tests/` and the README's "Contracts between the services". The crate
//! has no code of its own; everything is a test.
