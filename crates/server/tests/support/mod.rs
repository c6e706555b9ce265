//! Code shared by the interop test files that `mod support;` it. Each test file uses only
//! part of it.
#![allow(dead_code)]

pub mod xmpp_client;
