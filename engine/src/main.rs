//! The `bianzhi` command: generate data, run report scripts, serve PostgreSQL clients.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
