use std::io::Read;

use auth_service::config::{Cli, Command};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(command) => match run_command(command) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(why) => {
                eprintln!("error: {why}");
                std::process::ExitCode::FAILURE
            }
        },
        None => {
            let log_format = cli.config.log_format;
            kit_server::main("auth_service", log_format, auth_service::build(cli.config))
        }
    }
}

fn run_command(command: Command) -> Result<(), String> {
    match command {
        Command::Init { dir } => {
            for made in auth_service::init::init(&dir)? {
                println!("made {}", made.display());
            }
        }
        Command::NewKey { file } => {
            let (pem, kid) = auth_service::keys::new_key()?;
            auth_service::init::write_private(&file, &pem)?;
            println!("{kid}");
        }
        Command::HashSecret => {
            let mut secret = String::new();
            std::io::stdin()
                .read_to_string(&mut secret)
                .map_err(|e| format!("cannot read the secret from standard input: {e}"))?;
            let secret = secret.trim_end_matches(['\r', '\n']);
            kit_config::parse_client_secret(secret)?;
            println!("{}", auth_service::clients::hash_secret(secret)?);
        }
    }
    Ok(())
}
