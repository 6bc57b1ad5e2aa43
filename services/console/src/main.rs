use clap::Parser;
use console::config::Config;

/// mimalloc rather than the system's malloc: see docs/src/performance/profile.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let log_format = config.log_format;
    kit_server::main("console", log_format, console::build(config))
}
