use clap::Parser;
use order_service::config::Config;

/// mimalloc rather than the system's malloc: see docs/src/performance/profile.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let log_format = config.common.log_format;
    kit_server::main("order_service", log_format, order_service::build(config))
}
