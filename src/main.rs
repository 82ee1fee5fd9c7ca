//! `dialer`: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc: the importer allocates per row on every core, where glibc's malloc spent a
/// fifth of the CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dialer::cli::run(dialer::cli::Cli::parse()).await
}
