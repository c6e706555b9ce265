//! # certwatch-probe
//!
//! Connects to one probe target the way a monitor must (embedded Tor through arti, Tor
//! through SOCKS5, or direct), negotiates XMPP, and captures the certificate chain that the
//! server proves it holds, verifying the handshake signature so that a replayed chain cannot
//! pass.
//!
//! It is under construction; nothing is exported yet.
#![forbid(unsafe_code)]
