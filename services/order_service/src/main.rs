use clap::Parser;
use order_service::config::{Config, client_service_from_env};
use service_kit::server::StartError;

/// mimalloc rather than the system's malloc: see docs/src/performance/profile.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let telemetry = match service_kit::observability::telemetry::init(
        config.common.log_format,
        "order_service",
    ) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: {}", service_kit::http::problem::cause_chain(&err));
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = async {
        let client_service = client_service_from_env().map_err(StartError::Config)?;
        order_service::build(&config, &client_service)
            .await?
            .run()
            .await
    }
    .await;
    // Logged before the log writer stops.
    let code = service_kit::server::exit_code(result);
    telemetry.shutdown().await;
    code
}
