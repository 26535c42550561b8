//! The one retry schedule of the data plane: waits that double from a first delay up to a
//! ceiling, for a bounded number of attempts. Every delivery loop (queue workers, Firehose
//! flushes) retries through it, so retry behaviour is the same everywhere and changed in one
//! place.

use std::time::Duration;

/// A doubling backoff with a limit on attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    ceiling: Duration,
    attempts: u32,
    max_attempts: u32,
}

impl Backoff {
    /// The delivery workers' schedule: 100 ms doubling to 10 s, 10 attempts (about 50 s in all).
    pub fn delivery() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10), 10)
    }

    /// Waits starting at `first`, doubling up to `ceiling`, for at most `max_attempts`
    /// attempts (`u32::MAX`: without end).
    pub fn new(first: Duration, ceiling: Duration, max_attempts: u32) -> Self {
        Self {
            next: first,
            ceiling,
            attempts: 0,
            max_attempts,
        }
    }

    /// Records a failed attempt. Returns `false` when the attempts are used up; otherwise
    /// sleeps the next delay and returns `true`, to try again.
    pub async fn retry(&mut self) -> bool {
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts >= self.max_attempts {
            return false;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.ceiling);
        true
    }

    /// The attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_to_the_ceiling_and_stops_after_the_last_attempt() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(300), 4);
        let started = tokio::time::Instant::now();
        assert!(backoff.retry().await);
        assert!(backoff.retry().await);
        assert!(backoff.retry().await);
        assert!(!backoff.retry().await, "the fourth failure is the last");
        // 100 + 200 + 300 (capped) of virtual time.
        assert_eq!(started.elapsed(), Duration::from_millis(600));
        assert_eq!(backoff.attempts(), 4);
    }
}
