//! The write gate of the SQL stores: after a write whose outcome cannot be proved, every write
//! is refused until a probe write commits.
//!
//! Each backend decides what is a fault (SQLite: any unproven statement, a lost database file;
//! PostgreSQL: an unanswered `COMMIT`, no connection) and how to probe; the gate keeps the
//! state between the two, says it in [`StoreHealth`], rate-limits probes started by writes and
//! warnings about refused writes, and logs each fault and recovery once.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::{StoreError, StoreHealth};

/// How often a background task probes a faulted store.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// The shortest time between two probes started by write attempts, so that a flood of refused
/// writes does not become a flood of probes.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest time between two warnings about refused writes.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// The setting a probe write updates.
pub const PROBE_SETTING: &str = "sluice.store.probe";

/// Whether writes are accepted, and why not.
#[derive(Default)]
pub struct FaultGate {
    /// Never held across an `.await`, so `health()` never waits on a write.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    refused: u64,
    last_warning: Option<Instant>,
    last_probe: Option<Instant>,
}

struct Fault {
    reason: String,
    since: SystemTime,
    started: Instant,
    restart_required: bool,
}

/// What [`FaultGate::start_probe`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// No fault: writes are accepted.
    Healthy,
    /// Faulted, and no probe now (one was tried just now, or only a restart helps).
    Refuse,
    /// Faulted: probe now, then call [`FaultGate::recovered`] if the probe committed.
    Now,
}

impl FaultGate {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A few plain fields, consistent after any panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether writes are refused now.
    pub fn is_faulted(&self) -> bool {
        self.lock().fault.is_some()
    }

    /// The state for `/_sluice/health`.
    pub fn health(&self) -> StoreHealth {
        let state = self.lock();
        match &state.fault {
            None => StoreHealth::durable(),
            Some(fault) => StoreHealth {
                durable: false,
                reason: Some(fault.reason.clone()),
                since: Some(fault.since),
                refused_writes: state.refused,
                restart_required: fault.restart_required,
            },
        }
    }

    /// Records a fault and logs it at ERROR (`what` says what happened); while one is
    /// recorded, a new one only matters (and is logged) if only a restart ends it.
    pub fn fail(&self, what: &str, reason: String, restart_required: bool) {
        let mut state = self.lock();
        if let Some(fault) = &mut state.fault {
            if restart_required && !fault.restart_required {
                tracing::error!(error = %reason, "{what}; every write is refused until Sluice restarts.");
                fault.reason = reason;
                fault.restart_required = true;
            }
            return;
        }
        if restart_required {
            tracing::error!(error = %reason, "{what}; every write is refused until Sluice restarts.");
        } else {
            tracing::error!(error = %reason, "{what}; every write is refused until a probe write commits.");
        }
        state.fault = Some(Fault {
            reason,
            since: SystemTime::now(),
            started: Instant::now(),
            restart_required,
        });
        state.refused = 0;
        state.last_warning = None;
        state.last_probe = Some(Instant::now());
    }

    /// Counts a refused write, warns at most every [`WARN_INTERVAL`], and builds its error.
    pub fn refuse(&self) -> StoreError {
        let mut state = self.lock();
        state.refused += 1;
        let refused = state.refused;
        let warn_now = state
            .last_warning
            .is_none_or(|at| at.elapsed() >= WARN_INTERVAL);
        if warn_now {
            state.last_warning = Some(Instant::now());
        }
        let reason = state
            .fault
            .as_ref()
            .map_or_else(String::new, |fault| fault.reason.clone());
        drop(state);
        if warn_now {
            tracing::warn!(refused_writes = refused, cause = %reason, "Write refused: storage is not durable.");
        }
        StoreError::Unavailable(format!("storage is not durable, write refused: {reason}"))
    }

    /// Whether to probe now: a probe started by a write (`background` false) waits
    /// [`RETRY_INTERVAL`] after the last one; a fault that needs a restart is never probed.
    pub fn start_probe(&self, background: bool) -> Probe {
        let mut state = self.lock();
        let Some(fault) = &state.fault else {
            return Probe::Healthy;
        };
        if fault.restart_required {
            return Probe::Refuse;
        }
        let recent = state
            .last_probe
            .is_some_and(|at| at.elapsed() < RETRY_INTERVAL);
        if recent && !background {
            return Probe::Refuse;
        }
        state.last_probe = Some(Instant::now());
        Probe::Now
    }

    /// A probe committed: writes are accepted again.
    pub fn recovered(&self) {
        let mut state = self.lock();
        if let Some(fault) = state.fault.take() {
            tracing::info!(
                refused_writes = state.refused,
                down_for_ms = fault.started.elapsed().as_millis() as u64,
                cause = %fault.reason,
                "Storage recovered: a probe write committed, writes are accepted again."
            );
        }
        state.refused = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_refuses_until_a_probe_commits_and_probes_are_rate_limited() {
        let gate = FaultGate::default();
        assert_eq!(gate.start_probe(false), Probe::Healthy);
        gate.fail("Storage write failed", "disk full".to_owned(), false);
        assert!(gate.is_faulted());
        assert!(matches!(gate.refuse(), StoreError::Unavailable(m) if m.contains("disk full")));
        assert_eq!(gate.health().refused_writes, 1);
        assert!(!gate.health().durable);
        // `fail` counts as the first probe: a write right after it does not probe again.
        assert_eq!(gate.start_probe(false), Probe::Refuse);
        assert_eq!(
            gate.start_probe(true),
            Probe::Now,
            "the background always may"
        );
        gate.recovered();
        assert!(gate.health().durable);
        assert_eq!(gate.start_probe(false), Probe::Healthy);
    }

    #[test]
    fn a_fault_that_needs_a_restart_is_never_probed_and_outranks_others() {
        let gate = FaultGate::default();
        gate.fail("Storage write failed", "disk full".to_owned(), false);
        gate.fail("Storage lost its database file", "deleted".to_owned(), true);
        let health = gate.health();
        assert!(health.restart_required);
        assert_eq!(health.reason.as_deref(), Some("deleted"));
        assert_eq!(gate.start_probe(true), Probe::Refuse);
        gate.fail("Storage write failed", "again".to_owned(), false);
        assert_eq!(gate.health().reason.as_deref(), Some("deleted"));
    }
}
