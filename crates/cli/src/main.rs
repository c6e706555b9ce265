//! The `certwatch` command-line tool. Under construction.

fn main() {
    eprintln!("certwatch: no subcommand is implemented yet in this build");
    std::process::exit(3);
}
