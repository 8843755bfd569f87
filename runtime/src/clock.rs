//! Time as the runtime and actors see it. Injectable so deadline logic is testable without
//! sleeping: everything that compares against a deadline (reminders, delivery backoff, the
//! expiry of messages, cluster RPC deadlines) reads [`Clock::now_ms`] and waits with
//! [`Clock::sleep_until`], so a [`ManualClock`] moves all of it at once.
//!
//! This file is the only place that reads the wall clock. Monotonic `Instant`s remain where
//! they measure the node's own safety margins rather than rules of the domain (cluster lease
//! validity, passivation of idle actors, I/O timeouts against a hung Redis): see the comments
//! there for why a test clock must not move those.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A future that resolves once a clock has reached a deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Resolves once [`Clock::now_ms`] is at least `deadline_ms` (at once if it already is).
    /// Must be awaited inside a tokio runtime.
    fn sleep_until(&self, deadline_ms: u64) -> Sleep;

    /// Resolves once `d` has passed on this clock.
    fn sleep(&self, d: Duration) -> Sleep {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.sleep_until(self.now_ms().saturating_add(ms))
    }

    /// The manual clock behind this one, when time is driven by hand (tests, `--manual-clock`).
    fn as_manual(&self) -> Option<&ManualClock> {
        None
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        let wait = deadline_ms.saturating_sub(self.now_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }

    /// Waits on tokio's monotonic timer, so a wall-clock step does not stretch the wait.
    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that moves only when told to. Every sleeper waiting on it wakes as soon as a move
/// takes it past the sleeper's deadline.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<u64>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(0)
    }
}

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: watch::Sender::new(start_ms),
        }
    }

    /// Moves the clock forward by `ms` and answers the new time.
    pub fn advance(&self, ms: u64) -> u64 {
        let mut now = 0;
        self.now.send_modify(|t| {
            *t = t.saturating_add(ms);
            now = *t;
        });
        now
    }

    /// Sets the clock to `ms`, even in its past.
    pub fn set(&self, ms: u64) {
        self.now.send_replace(ms);
    }

    /// Moves the clock to `ms` unless that is in its past. Answers the clock's time afterwards
    /// as `Ok`, or as `Err` when it refused to go back (in one step: no move in between).
    pub fn advance_to(&self, ms: u64) -> Result<u64, u64> {
        let mut result = Ok(ms);
        self.now.send_if_modified(|t| {
            if ms < *t {
                result = Err(*t);
                false
            } else {
                let moved = ms != *t;
                *t = ms;
                moved
            }
        });
        result
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; were it gone, time would never move again.
            if rx.wait_for(|t| *t >= deadline_ms).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }

    fn as_manual(&self) -> Option<&ManualClock> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_only_when_the_clock_passes_its_deadline() {
        let clock = std::sync::Arc::new(ManualClock::new(1_000));
        let mut sleeper = tokio::spawn(clock.sleep_until(1_500));
        // Not before: give the sleeper every chance to run.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!sleeper.is_finished());
        assert_eq!(clock.advance(499), 1_499);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!sleeper.is_finished());
        clock.advance(1);
        tokio::time::timeout(Duration::from_secs(5), &mut sleeper)
            .await
            .expect("woken by the advance")
            .unwrap();
        // A deadline already passed resolves at once.
        clock.sleep(Duration::ZERO).await;
        assert_eq!(clock.advance_to(1_400), Err(1_500), "never backwards");
        assert_eq!(clock.advance_to(2_000), Ok(2_000));
        clock.set(10);
        assert_eq!(clock.now_ms(), 10);
    }
}
