//! End-to-end tests: the real binaries behind the real nginx gateway,
//! driven over HTTP. Everything is a test (`tests/`); the harness they
//! share is the test kit (tests/kit, `test_kit`).
