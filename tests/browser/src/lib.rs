//! The harness of the browser tests (tests/): Debian's Chromium, headless,
//! driven over WebDriver by its chromedriver, with fantoccini; the whole
//! system behind the gateway, the web console included (test_kit's
//! [`Stack`](test_kit::Stack) with `Options::console`).
//!
//! - [`axe`]: axe-core, installed from npm into the target folder
//!   (axe/install.sh) and read once;
//! - [`driver`]: chromedriver on a free port, and browser sessions of it;
//! - [`browser`]: one browser session: pages, forms, waits (each bounded),
//!   and the checks made on every page: no console error, no CSP violation,
//!   no axe-core violation, the page contract's title and `<h1>`, and a
//!   screenshot;
//! - [`console`]: the system with its console, signed in to as the
//!   development users.
//!
//! Nothing is skipped: a missing Chromium, chromedriver or npm fails the
//! test that needs it, saying what to install.

pub mod axe;
pub mod browser;
pub mod console;
pub mod driver;

pub use browser::{Browser, Locator, page_problems};
pub use console::{ConsoleStack, bounded};
pub use driver::Driver;
