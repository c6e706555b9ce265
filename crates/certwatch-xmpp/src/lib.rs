//! # certwatch-xmpp
//!
//! A minimal XMPP stream negotiator that takes a raw byte stream to the exact byte where
//! TLS begins (RFC 6120 STARTTLS), as a sans-I/O state machine with a thin tokio adapter,
//! plus the parameters for direct TLS (XEP-0368).
//!
//! It is under construction; nothing is exported yet.
#![forbid(unsafe_code)]
