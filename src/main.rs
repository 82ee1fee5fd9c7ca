//! `dialer`: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc rather than glibc's malloc: the importer's rows are allocated on one thread and
/// freed on another, which glibc pays for in consolidation (a third of an import's CPU).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dialer::cli::run(dialer::cli::Cli::parse()).await
}
