//! Where the binaries under test are, built from the code under test
//! before the first of them starts; and nginx.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the service binaries are: `E2E_BIN_DIR` (binaries built
/// elsewhere, e.g. from an older commit, taken as they are), else
/// [`built_bin_dir`].
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("E2E_BIN_DIR") {
        Some(dir) => dir.into(),
        None => built_bin_dir(),
    }
}

/// The target folder's `debug` (cargo's: `CARGO_TARGET_DIR` or `target`),
/// built from the code under test first: the first call in a test process
/// runs `cargo build --workspace --bins`, so that a test never runs
/// binaries older than the code (nothing to do when `make test` built them
/// already). A failed build fails the test, with cargo's output.
pub fn built_bin_dir() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(why) = BUILT.get_or_init(build_binaries) {
        panic!("{why}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join("debug")
}

/// `cargo build --workspace --bins --locked` in the workspace, quietly;
/// its output when it fails.
fn build_binaries() -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let output = Command::new(cargo)
        .args(["build", "--workspace", "--bins", "--locked", "--quiet"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo to build the services: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`cargo build --workspace --bins` failed, so there is nothing to test:\n{}",
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// nginx: `E2E_NGINX`, else Debian's /usr/sbin/nginx, else the one on PATH.
pub fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("E2E_NGINX") {
        return path.into();
    }
    let system = PathBuf::from("/usr/sbin/nginx");
    if system.exists() {
        system
    } else {
        "nginx".into()
    }
}
