//! `dialer`: parse the command line and hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dialer::cli::run(dialer::cli::Cli::parse()).await
}
