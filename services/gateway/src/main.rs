use clap::Parser;
use fleetwatch_gateway::{Gateway, Theme};
use shared::config::{CommonArgs, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;

/// fleetwatch gateway: the dashboard, REST API, WebSocket and Prometheus endpoint.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to bind [default: 127.0.0.1]
    #[arg(long)]
    host: Option<String>,
    /// Port; 0 picks a free one [default: 8082]
    #[arg(long)]
    port: Option<u16>,
    /// The dashboard's theme until a person picks one [default: dark]
    #[arg(long, value_parser = parse_theme)]
    theme: Option<Theme>,
    /// How often pages read the REST API again, seconds; 0 never [default: 2]
    #[arg(long)]
    refresh: Option<u32>,
    /// Live updates over the WebSocket (the default; `[gateway] real_time_enabled = false` turns them off)
    #[arg(long)]
    real_time: bool,
    /// Write the dashboard's files here at start [default: none]
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Open the dashboard in a browser ($BROWSER, else xdg-open) once listening
    #[arg(long)]
    browser: bool,
    /// Serve with no users or tokens on an address other hosts can reach
    #[arg(long)]
    insecure: bool,
    /// Read a password on standard input, print its argon2id hash for `[[gateway.auth.users]]`, and exit
    #[arg(long)]
    hash_password: bool,
}

fn parse_theme(text: &str) -> Result<Theme, String> {
    match text {
        "dark" => Ok(Theme::Dark),
        "light" => Ok(Theme::Light),
        other => Err(format!("{other:?}: use dark or light")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.hash_password {
        return print_password_hash();
    }
    let mut flags = Overrides::default();
    flags
        .set("gateway.host", cli.host)
        .set("gateway.port", cli.port)
        .set("gateway.theme", cli.theme)
        .set("gateway.auto_refresh", cli.refresh)
        .set("gateway.real_time_enabled", cli.real_time.then_some(true))
        .set("gateway.output_dir", cli.output_dir)
        .set("gateway.browser", cli.browser.then_some(true))
        .set("gateway.insecure", cli.insecure.then_some(true));
    shared::service::main::<Gateway>(&cli.common, flags)
}

/// `--hash-password`: the first line of standard input, hashed. Not an argument, so the
/// password stays out of the shell's history and the process list.
fn print_password_hash() -> ExitCode {
    let mut line = String::new();
    if let Err(err) = std::io::stdin().read_line(&mut line) {
        eprintln!("reading the password: {err}");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("no password on standard input: printf %s 'the password' | fleetwatch-gateway --hash-password");
        return ExitCode::FAILURE;
    }
    match fleetwatch_gateway::auth::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
