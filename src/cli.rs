//! The command line. A leaf: `config` reads the parsed flags; this module imports nothing of
//! Sluice's.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// Sluice: AWS log and audit-event destinations, self-hosted.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the server.
    Serve(ServeArgs),
}

/// `sluice serve` options. Flags beat `SLUICE_*` variables, which beat the config file.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4566].
    #[arg(long, env = "SLUICE_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory for state, or `:memory:` [default: $XDG_DATA_HOME/sluice or ~/.local/share/sluice].
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store: `sqlite` (in the data directory) or `postgres://user:password@host/db`
    /// [default: sqlite].
    #[arg(long, env = "SLUICE_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Authentication mode [default: emulator].
    #[arg(long, env = "SLUICE_AUTH", value_enum)]
    pub auth: Option<AuthMode>,
    /// Allows emulator mode on a non-loopback address.
    #[arg(long)]
    pub allow_remote_emulator: bool,
    /// Exits when standard input closes; lets a test harness own the server's lifetime.
    #[arg(long, hide = true)]
    pub exit_with_stdin: bool,
    /// Accepts data but delivers nothing; lets a test crash the server between the two.
    #[arg(long, hide = true)]
    pub pause_delivery: bool,
    /// Seconds between retention sweeps, which remove expired log events, Kinesis records,
    /// CloudTrail Lake events and client tokens [default: 60].
    #[arg(long, env = "SLUICE_SWEEP_INTERVAL", value_name = "SECONDS")]
    pub sweep_interval: Option<u64>,
    /// Seconds a lease on background work (a delivery queue, a Firehose buffer, AppFabric
    /// polling ...) lasts unless its node renews it; with several nodes on one PostgreSQL, the
    /// longest a dead node's work waits for another node [default: 5].
    #[arg(long, env = "SLUICE_LEASE_TTL", value_name = "SECONDS")]
    pub lease_ttl: Option<u64>,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Any access key; the account is the key if it is 12 digits, else 000000000000.
    Emulator,
    /// Only configured keys, with verified signatures (production).
    Strict,
}
