//! Consumer-driven contract tests (Pact) between the services: see
//! `tests/` and docs/src/quality/contracts.md#pact-the-calls-between-the-services. The crate
//! has no code of its own; everything is a test.
