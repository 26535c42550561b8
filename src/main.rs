//! The `sluice` binary: parse the command line, set up logging, run.

use clap::Parser;
use sluice::cli::{Cli, Command};

/// mimalloc instead of glibc's allocator: requests allocate and free many small values
/// (decoded records, JSON output), and glibc's malloc/free were a third of the read path's
/// time under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve(args) => sluice::app::run(sluice::config::resolve(&args)?).await,
    }
}
