//! The `certwatch` command-line tool: argument parsing, file reading and printing only.
//!
//! Exit codes follow the monitoring-plugin convention of certwatch (REFERENCE §3); usage
//! errors and invalid input exit 3, never clap's default 2.

use std::process::ExitCode;

use clap::Parser;

mod check;
mod records;

/// Exit code for usage errors and invalid input.
const EXIT_ERROR: u8 = 3;

/// Detects TLS interception of XMPP servers by comparing the key a server presents with the
/// DANE TLSA records its DNSSEC-signed zone publishes.
#[derive(Debug, Parser)]
#[command(name = "certwatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the TLSA line (3 1 1: SHA-256 of the server's public key) to add to the zone.
    ///
    /// Works offline from the certificate or key file on the server. Exit 0 when printed,
    /// 3 on error.
    Records(records::RecordsArgs),
    /// Check XMPP domains: probe every endpoint, address and key type, and compare the keys
    /// with the DANE TLSA records of the DNSSEC-signed zone.
    ///
    /// Exit 0 match, 1 setup needed, 2 mismatch/bogus, 3 indeterminate or error.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_ERROR,
            };
            // Printing can only fail if stdout/stderr are gone; the exit code still says it.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Records(args) => records::run(&args),
        Command::Check(args) => return ExitCode::from(check::run(&args)),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("certwatch: error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
