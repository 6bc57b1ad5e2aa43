//! axe-core, the accessibility checker injected into every page: the npm
//! package pinned in axe/package-lock.json, installed by axe/install.sh
//! into the cargo target folder (never committed), read once per test
//! process.

use std::{path::PathBuf, process::Command, sync::OnceLock};

use test_kit::workspace_root;

/// The source of axe.min.js, installed first if need be; panics, saying
/// what failed, when it cannot be.
pub fn source() -> &'static str {
    static SOURCE: OnceLock<Result<String, String>> = OnceLock::new();
    match SOURCE.get_or_init(install) {
        Ok(source) => source,
        Err(why) => panic!("{why}"),
    }
}

fn install() -> Result<String, String> {
    let script = workspace_root().join("tests/browser/axe/install.sh");
    let output = Command::new(&script)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed (axe-core comes from npm):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
