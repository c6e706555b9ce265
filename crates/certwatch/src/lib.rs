//! # certwatch
//!
//! Detects TLS interception of XMPP servers by comparing the key a server presents with
//! the DANE TLSA records its operator published in DNSSEC-signed DNS.
//!
//! This facade will re-export certwatch-core, certwatch-dns, certwatch-xmpp and
//! certwatch-probe, and hold the `check(domain, options)` pipeline that the CLI, the server
//! and embedders share.
//!
//! It is under construction; nothing is exported yet.
#![forbid(unsafe_code)]
