//! Crash points for crash tests of durable actor messages.
//!
//! `AGORA_FAULT=<point>` makes the process kill itself with `SIGKILL` the first time it passes
//! `<point>`; `AGORA_FAULT=<point>@<n>` the n-th time. Points:
//!
//! - `after_send_commit`: a message's sender committed it (durably), nothing delivered yet.
//! - `after_receive_commit`: the receiver's commit (its handling and the receipt) is durable;
//!   the sender has not heard back yet (on the receiver's node, in a cluster).
//! - `before_sender_removal`: the sender's deliverer heard that the receiver handled the
//!   message; the sender's entry is not removed yet.
//!
//! The variable is read once. When it is unset, a check costs one atomic load. `SIGKILL` and
//! not `abort()`: nothing runs on the way out (no unwinding, no flush, no destructor), exactly
//! like an operator's `kill -9` or the OOM killer.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms a crash point.
pub const FAULT_ENV: &str = "AGORA_FAULT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    AfterSendCommit,
    AfterReceiveCommit,
    BeforeSenderRemoval,
}

impl Fault {
    fn parse(name: &str) -> Option<Fault> {
        match name {
            "after_send_commit" => Some(Fault::AfterSendCommit),
            "after_receive_commit" => Some(Fault::AfterReceiveCommit),
            "before_sender_removal" => Some(Fault::BeforeSenderRemoval),
            _ => None,
        }
    }
}

/// The armed point and on which pass it fires.
static ARMED: OnceLock<Option<(Fault, u32)>> = OnceLock::new();
static PASSES: AtomicU32 = AtomicU32::new(0);

fn armed() -> Option<(Fault, u32)> {
    *ARMED.get_or_init(|| {
        let spec = std::env::var(FAULT_ENV).ok()?;
        let (name, nth) = match spec.split_once('@') {
            Some((name, n)) => (name, n.trim().parse::<u32>().ok()?),
            None => (spec.as_str(), 1),
        };
        match Fault::parse(name.trim()) {
            Some(point) => {
                tracing::warn!(point = ?point, nth, "crash point armed: this process will SIGKILL itself there");
                Some((point, nth.max(1)))
            }
            None => {
                tracing::warn!(spec = %spec, "unknown {FAULT_ENV} ignored");
                None
            }
        }
    })
}

/// Passes crash point `point`: kills the process here if it is armed and this is its pass.
pub(crate) fn check(point: Fault) {
    let Some((armed_point, nth)) = armed() else {
        return;
    };
    if armed_point != point {
        return;
    }
    if PASSES.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        tracing::warn!(point = ?point, "crash point reached: SIGKILL");
        kill_self();
    }
}

#[allow(unsafe_code)]
fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid with a constant signal touches no memory of ours.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL to oneself is delivered before kill(2) returns; this only satisfies the type.
    loop {
        std::thread::park();
    }
}
