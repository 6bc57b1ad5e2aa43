//! The binaries a test starts are built from the code under test: a source
//! changed since the last build is built again before the first binary of a
//! test process is looked up. (The only test of this file: the build runs
//! once per test process, at the first look-up.)

use std::{fs::File, time::SystemTime};

use test_kit::{built_bin_dir, workspace_root};

#[test]
fn a_changed_source_is_built_again_before_a_binary_is_started() {
    // The source marked as changed now (its content as it is), as an edit
    // would: cargo compares its time with the last build's.
    let source = workspace_root().join("services/client_service/src/main.rs");
    let changed = SystemTime::now();
    File::options()
        .write(true)
        .open(&source)
        .and_then(|file| file.set_modified(changed))
        .unwrap_or_else(|e| panic!("cannot touch {}: {e}", source.display()));

    let binary = built_bin_dir().join("client_service");

    let built = std::fs::metadata(&binary)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|e| panic!("no {}: {e}", binary.display()));
    assert!(
        built > changed,
        "{} ({built:?}) is older than its changed source ({changed:?}): \
         the binaries were not built before the tests",
        binary.display()
    );
}
