//! The `sluice serve` command line: flags beat `SLUICE_*` variables, which beat the file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Starts `sluice serve` with the given arguments and environment and returns the address from
/// its first line; the process stops when its stdin closes.
fn listening_address(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["serve", "--exit-with-stdin"])
        .args(args)
        .env_remove("SLUICE_LISTEN")
        .env("SLUICE_DATA_DIR", data.path())
        .env("SLUICE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    drop(child.stdin.take());
    assert!(
        child.wait().expect("exit").success(),
        "graceful exit on end of stdin"
    );
    line.trim()
        .trim_start_matches("sluice listening on http://")
        .to_owned()
}

#[test]
fn flags_beat_variables_which_beat_the_file() {
    let config = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(config.path(), "listen = \"127.0.0.3:0\"\n").expect("write");
    let config = config.path().to_str().expect("utf-8 path");

    let from_file = listening_address(&["--config", config], &[]);
    assert!(from_file.starts_with("127.0.0.3:"), "{from_file}");
    let from_variable =
        listening_address(&["--config", config], &[("SLUICE_LISTEN", "127.0.0.2:0")]);
    assert!(from_variable.starts_with("127.0.0.2:"), "{from_variable}");
    let from_flag = listening_address(
        &["--config", config, "--listen", "127.0.0.1:0"],
        &[("SLUICE_LISTEN", "127.0.0.2:0")],
    );
    assert!(from_flag.starts_with("127.0.0.1:"), "{from_flag}");
}

#[test]
fn refuses_a_public_listener_in_emulator_mode() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir", ":memory:"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--auth strict"));
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", ":memory:"])
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(
        child.wait().expect("exit").success(),
        "exit code 0 after SIGTERM"
    );
}
