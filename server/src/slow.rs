//! Failed logins, slowed: each address that shows an unknown token waits
//! longer before its answer (nothing for the first three, then 0.5 s,
//! doubling to 8 s), so guessing tokens is hopeless and a typo is not
//! punished. A success from the address forgets its failures; so do 15
//! minutes without one. The table is bounded: at most [`MAX_ADDRESSES`]
//! addresses are remembered, the stalest forgotten first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many addresses are remembered at most.
pub const MAX_ADDRESSES: usize = 4096;

/// Failures free of any wait.
const FREE: u32 = 3;

/// How long failures are remembered.
const MEMORY: Duration = Duration::from_secs(15 * 60);

/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(8);

/// The failures seen, by address.
#[derive(Default)]
pub struct Slowdown {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Slowdown {
    /// Counts a failure from `from`; returns how long its answer waits.
    pub fn failed(&self, from: IpAddr) -> Duration {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&from) {
            failures.retain(|_, (_, at)| now.duration_since(*at) < MEMORY);
            if failures.len() >= MAX_ADDRESSES {
                if let Some(stalest) = failures
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(a, _)| *a)
                {
                    failures.remove(&stalest);
                }
            }
        }
        let entry = failures.entry(from).or_insert((0, now));
        if now.duration_since(entry.1) >= MEMORY {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        wait(entry.0)
    }

    /// A success from `from`: its failures are forgotten.
    pub fn succeeded(&self, from: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&from);
    }

    /// How many addresses are remembered.
    pub fn len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The wait after the `n`th failure in a row.
fn wait(n: u32) -> Duration {
    if n <= FREE {
        return Duration::ZERO;
    }
    let doublings = (n - FREE - 1).min(4);
    (Duration::from_millis(500) * 2u32.pow(doublings)).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_longer_and_longer_until_a_success() {
        let slow = Slowdown::default();
        let at: IpAddr = "192.0.2.1".parse().unwrap();
        let waits: Vec<u64> = (0..9).map(|_| slow.failed(at).as_millis() as u64).collect();
        assert_eq!(waits, [0, 0, 0, 500, 1000, 2000, 4000, 8000, 8000]);
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(slow.failed(other), Duration::ZERO);
        slow.succeeded(at);
        assert_eq!(slow.failed(at), Duration::ZERO);
    }

    #[test]
    fn the_table_stays_bounded_whoever_fails() {
        let slow = Slowdown::default();
        for i in 0..(MAX_ADDRESSES as u32 * 3) {
            slow.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(slow.len(), MAX_ADDRESSES);
    }
}
