//! # certwatch-core
//!
//! The rules that decide whether an XMPP operator is told "you are being intercepted".
//!
//! This crate will hold, as pure functions with no I/O and no async runtime:
//! the TLSA record model (RFC 6698, RFC 7218 names), DANE matching (RFC 7671, RFC 7673),
//! verdicts and their order, the confirmation rules for several vantage points, pin-strength
//! warnings, and the setup advice (zone-file lines) an operator needs.
//!
//! It is under construction; nothing is exported yet.
#![forbid(unsafe_code)]
