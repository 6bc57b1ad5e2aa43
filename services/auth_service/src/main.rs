use std::io::{IsTerminal, Read};

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
        Command::Init {
            dir,
            database_url,
            web_origin,
        } => {
            let made = runtime()?.block_on(auth_service::init::init_with(
                &dir,
                database_url.as_deref(),
                &web_origin,
            ))?;
            for file in made.files {
                println!("made {}", file.display());
            }
            for user in made.users {
                println!("{user}");
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
        Command::Users { database, command } => {
            let stdin = std::io::stdin();
            let is_terminal = stdin.is_terminal();
            let password = || auth_service::cli::read_password(stdin.lock(), is_terminal);
            let said =
                runtime()?.block_on(auth_service::cli::users(&database, command, password))?;
            println!("{said}");
        }
    }
    Ok(())
}

/// The runtime of a command that opens the database.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}
