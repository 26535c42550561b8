//! Configuration: flags beat `SLUICE_*` variables, which beat the TOML file, which beats the
//! defaults. [`Config::resolve`] merges and checks them once into a [`ValidatedConfig`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::cli::ServeArgs;
use crate::protocol::auth::{Authenticator, Credential};

/// The default listen address: loopback only, LocalStack's port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4566";

/// The configuration file (`--config FILE`). Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address, e.g. `127.0.0.1:4566`.
    pub listen: Option<SocketAddr>,
    /// Where state lives; `:memory:` keeps it in memory only.
    pub data_dir: Option<PathBuf>,
    /// Authentication settings.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Browser origins allowed to call Sluice (CORS). None by default.
    #[serde(default)]
    pub cors: CorsConfig,
    /// Allows emulator mode (no signature checks) on a non-loopback address. Dangerous.
    #[serde(default)]
    pub allow_remote_emulator: bool,
}

/// `[auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `emulator` (default: any key, secret unchecked) or `strict` (verified SigV4).
    pub mode: Option<AuthMode>,
    /// Credentials for strict mode.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
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

/// One `[[auth.credentials]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// The secret; never logged.
    pub secret_access_key: String,
    /// The 12-digit account the key belongs to.
    pub account_id: String,
}

impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// `[cors]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`http://localhost:3000`) whose pages may call Sluice.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// Where state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataDir {
    /// A directory holding `sluice.db`.
    Path(PathBuf),
    /// Nothing on disk.
    Memory,
}

/// The checked configuration the server runs with.
#[derive(Debug)]
pub struct ValidatedConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// State location.
    pub data_dir: DataDir,
    /// Authentication.
    pub authenticator: Authenticator,
    /// Allowed CORS origins.
    pub allowed_origins: Vec<String>,
    /// Exit when standard input closes (used by test harnesses that own the process).
    pub exit_with_stdin: bool,
    /// Do not start the delivery worker (tests of crash recovery between accept and deliver).
    pub pause_delivery: bool,
    /// Time between retention sweeps.
    pub sweep_interval: std::time::Duration,
}

/// The default data directory: `$XDG_DATA_HOME/sluice`, else `~/.local/share/sluice`, else
/// `./sluice-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("sluice");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/sluice");
    }
    PathBuf::from("sluice-data")
}

impl FileConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Merges flags and variables (already merged by clap) over the file and the defaults.
pub fn resolve(args: &ServeArgs) -> anyhow::Result<ValidatedConfig> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let listen = match (args.listen, file.listen) {
        (Some(listen), _) | (None, Some(listen)) => listen,
        (None, None) => DEFAULT_LISTEN.parse().context("default listen address")?,
    };
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(default_data_dir);
    let data_dir = if data_dir.as_os_str() == ":memory:" {
        DataDir::Memory
    } else {
        DataDir::Path(data_dir)
    };
    let mode = args.auth.or(file.auth.mode).unwrap_or(AuthMode::Emulator);
    let authenticator = match mode {
        AuthMode::Emulator => Authenticator::Emulator,
        AuthMode::Strict => {
            if file.auth.credentials.is_empty() {
                bail!(
                    "strict auth needs at least one [[auth.credentials]] entry in the config file"
                );
            }
            let mut credentials = HashMap::new();
            for entry in file.auth.credentials {
                if !crate::arn::is_account_id(&entry.account_id) {
                    bail!(
                        "account_id of access key {} must be 12 digits",
                        entry.access_key_id
                    );
                }
                credentials.insert(
                    entry.access_key_id,
                    Credential {
                        secret_access_key: entry.secret_access_key,
                        account_id: entry.account_id,
                    },
                );
            }
            Authenticator::Strict(credentials)
        }
    };
    let allow_remote_emulator = args.allow_remote_emulator || file.allow_remote_emulator;
    if !listen.ip().is_loopback() && !authenticator.is_strict() && !allow_remote_emulator {
        bail!(
            "refusing to listen on {listen} in emulator mode, where any key is accepted: use --auth strict with credentials, or --allow-remote-emulator if you really mean it"
        );
    }
    let sweep_interval = match args.sweep_interval {
        Some(0) => bail!("--sweep-interval must be at least 1 second"),
        Some(seconds) => std::time::Duration::from_secs(seconds),
        None => crate::sweeper::DEFAULT_INTERVAL,
    };
    Ok(ValidatedConfig {
        listen,
        data_dir,
        authenticator,
        allowed_origins: file.cors.allowed_origins,
        exit_with_stdin: args.exit_with_stdin,
        pause_delivery: args.pause_delivery,
        sweep_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("write");
        file
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let config = file("listen = \"127.0.0.3:5000\"\ndata_dir = \"/tmp/from-file\"\n");
        let mut args = ServeArgs {
            config: Some(config.path().to_owned()),
            ..ServeArgs::default()
        };
        let resolved = resolve(&args).expect("valid");
        assert_eq!(resolved.listen.to_string(), "127.0.0.3:5000");
        assert_eq!(resolved.data_dir, DataDir::Path("/tmp/from-file".into()));
        args.listen = Some("127.0.0.1:6000".parse().expect("addr"));
        args.data_dir = Some(":memory:".into());
        let resolved = resolve(&args).expect("valid");
        assert_eq!(resolved.listen.to_string(), "127.0.0.1:6000");
        assert_eq!(resolved.data_dir, DataDir::Memory);
        let defaults = resolve(&ServeArgs::default()).expect("valid");
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert!(!defaults.authenticator.is_strict());
    }

    #[test]
    fn strict_mode_needs_credentials_and_remote_listeners_need_strict_mode() {
        let strict = file("[auth]\nmode = \"strict\"\n");
        let args = ServeArgs {
            config: Some(strict.path().to_owned()),
            ..ServeArgs::default()
        };
        assert!(resolve(&args).is_err());

        let remote = ServeArgs {
            listen: Some("0.0.0.0:4566".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let refused = resolve(&remote).expect_err("emulator mode on 0.0.0.0 is refused");
        assert!(refused.to_string().contains("--auth strict"));
        let overridden = ServeArgs {
            allow_remote_emulator: true,
            ..remote
        };
        assert!(resolve(&overridden).is_ok());

        let with_keys = file(
            "listen = \"0.0.0.0:4566\"\n[auth]\nmode = \"strict\"\n[[auth.credentials]]\naccess_key_id = \"AK\"\nsecret_access_key = \"s\"\naccount_id = \"123456789012\"\n",
        );
        let args = ServeArgs {
            config: Some(with_keys.path().to_owned()),
            ..ServeArgs::default()
        };
        let resolved = resolve(&args).expect("strict on 0.0.0.0 is fine");
        assert!(resolved.authenticator.is_strict());
        assert!(
            !format!("{resolved:?}").contains("secret_access_key: \"s\""),
            "secrets are redacted"
        );
    }

    #[test]
    fn the_sweep_interval_defaults_to_a_minute_and_is_never_zero() {
        let defaults = resolve(&ServeArgs::default()).expect("valid");
        assert_eq!(defaults.sweep_interval, std::time::Duration::from_secs(60));
        let zero = ServeArgs {
            sweep_interval: Some(0),
            ..ServeArgs::default()
        };
        assert!(resolve(&zero).is_err());
        let one = ServeArgs {
            sweep_interval: Some(1),
            ..ServeArgs::default()
        };
        assert_eq!(
            resolve(&one).expect("valid").sweep_interval,
            std::time::Duration::from_secs(1)
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let bad = file("lisen = \"127.0.0.1:1\"\n");
        let args = ServeArgs {
            config: Some(bad.path().to_owned()),
            ..ServeArgs::default()
        };
        assert!(resolve(&args).is_err());
    }
}
