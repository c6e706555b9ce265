//! The `certwatch` command-line tool: argument parsing, file reading and printing only.
//!
//! Exit codes follow the monitoring-plugin convention of certwatch (REFERENCE §3); usage
//! errors and invalid input exit 3, never clap's default 2.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser};

mod check;
mod evidence;
mod net;
mod records;
mod watch;

/// Exit code for usage errors and invalid input.
const EXIT_ERROR: u8 = 3;

/// Detects TLS interception of XMPP servers by comparing the key a server presents with the
/// DANE TLSA records its DNSSEC-signed zone publishes.
#[derive(Debug, Parser)]
#[command(name = "certwatch", version, about, long_about = None)]
#[command(after_long_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "\
Verbs:
  check        check domains once (for cron and monitoring systems)
  records      print the TLSA lines to publish (from a key file, or a live probe)
  watch        re-check on an interval, print changes, run a hook on each change
  evidence     verify a certwatch-server evidence bundle offline
  completions  print a shell completion script

Exit codes (check; the other verbs say theirs in their --help):
  0 match, 1 setup needed or weak pin, 2 mismatch/bogus, 3 indeterminate or error.
  Usage errors exit 3, never 2.

Examples:
  certwatch check example.org
  certwatch records --key /etc/prosody/certs/example.org.key --host xmpp.example.org
  certwatch watch --interval 15m --exec /usr/local/bin/certwatch-alert example.org
  certwatch evidence verify bundle.json --key service-key.json
  certwatch completions bash > /etc/bash_completion.d/certwatch

Documentation: docs/cli.md, docs/json.md and docs/watch.md in the source tree.";

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check XMPP domains: probe every endpoint, address and key type, and compare the keys
    /// with the DANE TLSA records of the DNSSEC-signed zone.
    ///
    /// Exit 0 match, 1 setup needed, 2 mismatch/bogus, 3 indeterminate or error.
    Check(check::CheckArgs),
    /// Print the TLSA lines (3 1 1: SHA-256 of the server's public key) to add to the zone.
    ///
    /// Offline from the certificate or key file on the server (trusted), or live from a
    /// probe of the domain's servers (trusts the connection). Exit 0 when printed, 3 on
    /// error or refusal.
    Records(records::RecordsArgs),
    /// Watch XMPP domains: re-check every interval (with jitter), print state changes, and
    /// run a command on each change.
    ///
    /// Runs until interrupted (Ctrl-C or SIGTERM: exit 0). Exit 3 on a usage or setup error.
    Watch(watch::WatchArgs),
    /// Evidence bundles of certwatch-server: `verify` checks one offline (the service's
    /// signature, the DNSSEC chains, and whether each presented key is in the TLSA RRset).
    ///
    /// Exit 0 verified, 1 not verified, 3 usage error.
    Evidence(evidence::EvidenceArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    ///
    /// Exit 0 printed, 3 on a usage error.
    #[command(after_long_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const COMPLETIONS_HELP: &str = "\
Examples:
  certwatch completions bash > ~/.local/share/bash-completion/completions/certwatch
  certwatch completions zsh > ~/.zfunc/_certwatch      # with fpath+=~/.zfunc
  certwatch completions fish > ~/.config/fish/completions/certwatch.fish

Exit codes:
  0  the script was printed
  3  a usage error (unknown shell)";

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
    let code = match cli.command {
        Command::Records(args) => records::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Evidence(args) => evidence::run(&args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "certwatch",
                &mut std::io::stdout(),
            );
            0
        }
    };
    ExitCode::from(code)
}
