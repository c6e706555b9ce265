//! The `certwatch-server` web service. Under construction.

fn main() {
    eprintln!("certwatch-server: the web service is not implemented yet in this build");
    std::process::exit(3);
}
