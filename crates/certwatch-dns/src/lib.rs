//! # certwatch-dns
//!
//! XMPP service discovery (SRV, XEP-0368) and TLSA lookups with local DNSSEC validation,
//! built on hickory. Every RRset and every denial comes back with an honest status:
//! secure, insecure, bogus (with a reason) or indeterminate.
//!
//! It is under construction; nothing is exported yet.
#![forbid(unsafe_code)]
