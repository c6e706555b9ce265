//! Print the `3 1 1` TLSA line for a certificate or key file, and judge a chain against it.
//!
//! ```text
//! cargo run -p certwatch-core --example core_pin -- FILE HOST [PORT]
//! ```
//! FILE is a certificate (PEM/DER, full chain allowed), a public key or a private key
//! (PKCS#8, SEC1, PKCS#1). The library takes bytes; this example reads the file.

use std::process::ExitCode;

use certwatch_core::pin_from_key_material;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(file), Some(host)) = (args.first(), args.get(1)) else {
        eprintln!("usage: core_pin FILE HOST [PORT]");
        return ExitCode::from(3);
    };
    let port = match args.get(2).map(|p| p.parse::<u16>()) {
        None => 5222,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("core_pin: PORT {:?}: {e}", args[2]);
            return ExitCode::from(3);
        }
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("core_pin: {file}: {e}");
            return ExitCode::from(3);
        }
    };
    match pin_from_key_material(&bytes, file) {
        Ok(pin) => {
            println!("; {} key read as {}", pin.algorithm(), pin.format());
            println!("{}", pin.zone_line(host, port, 3600));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("core_pin: {e}");
            ExitCode::from(3)
        }
    }
}
