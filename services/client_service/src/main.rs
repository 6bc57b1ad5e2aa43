use clap::Parser;
use client_service::config::Config;

/// mimalloc rather than the system's malloc: see docs/src/performance/profile.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let log_format = config.common.log_format;
    kit_server::main("client_service", log_format, client_service::build(config))
}
