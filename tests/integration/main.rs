//! Integration tests of the `bianzhi` binary and its library, in one test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod export;
mod import;
mod monitor;
mod serve;
mod time_travel;
mod user_tables;
mod wire;
