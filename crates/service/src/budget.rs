//! Query budgets: how many inferences one client key and one client
//! address may complete in a period, as token buckets. Black-box model
//! extraction needs many queries, and keys are cheap, so a server that
//! protects its model limits both.
//!
//! A session reserves one token of its key's bucket and one of its
//! address's when its Start arrives, and gives them back if it ends before
//! the server has sent its last round (only completed inferences count).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A budget of `queries` completed inferences per `period`, refilled
/// continuously (a token bucket of `queries` tokens): on average at most
/// `queries` per `period`, with bursts of up to `queries` (so up to twice
/// that within one period that starts with a full bucket). Each server
/// process keeps its own buckets: replicas count apart, and a restart
/// refills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBudget {
    /// Inferences per period (the bucket's size).
    pub queries: u32,
    /// The period.
    pub period: Duration,
}

impl std::fmt::Display for QueryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} inferences per {} s", self.queries, self.period.as_secs_f64())
    }
}

/// Most buckets one map keeps: past it, full buckets (which equal fresh
/// ones) are dropped first, then the fullest.
const MAX_BUCKETS: usize = 100_000;

/// One bucket: tokens left at `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key (a client key's digest, or an address).
#[derive(Debug)]
struct Buckets<K> {
    budget: QueryBudget,
    buckets: HashMap<K, Bucket>,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new(budget: QueryBudget) -> Self {
        Buckets { budget, buckets: HashMap::new() }
    }

    fn rate(&self) -> f64 {
        f64::from(self.budget.queries) / self.budget.period.as_secs_f64()
    }

    /// The bucket of `key` refilled up to `now`.
    fn level(&self, key: &K, now: Instant) -> f64 {
        let cap = f64::from(self.budget.queries);
        match self.buckets.get(key) {
            Some(b) => (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * self.rate()).min(cap),
            None => cap,
        }
    }

    /// How long until `key` has one token (zero if it has one now).
    fn wait(&self, key: &K, now: Instant) -> Duration {
        let missing = 1.0 - self.level(key, now);
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(missing / self.rate()).unwrap_or(Duration::MAX)
        }
    }

    fn add(&mut self, key: &K, delta: f64, now: Instant) {
        let tokens = (self.level(key, now) + delta).min(f64::from(self.budget.queries));
        self.buckets.insert(key.clone(), Bucket { tokens, at: now });
        if self.buckets.len() > MAX_BUCKETS {
            self.prune(now);
        }
    }

    /// Drops the buckets that are full (they equal fresh ones), then, if
    /// still too many, the fullest half: the oldest spenders.
    fn prune(&mut self, now: Instant) {
        let cap = f64::from(self.budget.queries);
        let rate = self.rate();
        let level =
            |b: &Bucket| (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(cap);
        self.buckets.retain(|_, b| level(b) < cap);
        if self.buckets.len() > MAX_BUCKETS {
            let mut levels: Vec<f64> = self.buckets.values().map(level).collect();
            levels.sort_by(f64::total_cmp);
            let cut = levels[levels.len() / 2];
            self.buckets.retain(|_, b| level(b) < cut);
        }
    }
}

/// Why a session may not start: a bucket is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// The client key's budget.
    Key(Duration),
    /// The client address's budget.
    Address(Duration),
}

impl Exhausted {
    /// How long until the session could start.
    pub fn wait(self) -> Duration {
        match self {
            Exhausted::Key(w) | Exhausted::Address(w) => w,
        }
    }
}

#[derive(Debug)]
struct State {
    keys: Buckets<[u8; 32]>,
    addresses: Buckets<IpAddr>,
}

/// The query budgets of a server, shared by its sessions.
#[derive(Debug, Clone)]
pub struct Budgets {
    state: Arc<Mutex<State>>,
    clock: fn() -> Instant,
}

impl Budgets {
    /// Budgets of `budget` per client key and per client address.
    pub fn new(budget: QueryBudget) -> Self {
        Self::with_clock(budget, Instant::now)
    }

    fn with_clock(budget: QueryBudget, clock: fn() -> Instant) -> Self {
        let state = State { keys: Buckets::new(budget), addresses: Buckets::new(budget) };
        Budgets { state: Arc::new(Mutex::new(state)), clock }
    }

    /// Reserves one inference for `key` (a digest of the client's public
    /// key) from `address` (if known), or says which budget is empty and
    /// how long to wait. The reservation is given back if the returned
    /// guard is dropped before [`Reservation::complete`].
    pub fn reserve(&self, key: [u8; 32], address: Option<IpAddr>) -> Result<Reservation, Exhausted> {
        let now = (self.clock)();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key_wait = state.keys.wait(&key, now);
        if key_wait > Duration::ZERO {
            return Err(Exhausted::Key(key_wait));
        }
        if let Some(ip) = address {
            let ip_wait = state.addresses.wait(&ip, now);
            if ip_wait > Duration::ZERO {
                return Err(Exhausted::Address(ip_wait));
            }
            state.addresses.add(&ip, -1.0, now);
        }
        state.keys.add(&key, -1.0, now);
        Ok(Reservation { budgets: self.clone(), key, address, completed: false })
    }

    fn refund(&self, key: &[u8; 32], address: Option<IpAddr>) {
        let now = (self.clock)();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.keys.add(key, 1.0, now);
        if let Some(ip) = address {
            state.addresses.add(&ip, 1.0, now);
        }
    }
}

/// One session's reserved inference: spent once the session completes,
/// given back if it is dropped first.
#[derive(Debug)]
pub struct Reservation {
    budgets: Budgets,
    key: [u8; 32],
    address: Option<IpAddr>,
    completed: bool,
}

impl Reservation {
    /// The inference completed (its output was released): the tokens are spent.
    pub fn complete(mut self) {
        self.completed = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.completed {
            self.budgets.refund(&self.key, self.address);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A clock the test moves by hand (milliseconds past a fixed start).
    static OFFSET_MS: AtomicU64 = AtomicU64::new(0);
    fn clock() -> Instant {
        static START: OnceLock<Instant> = OnceLock::new();
        *START.get_or_init(Instant::now) + Duration::from_millis(OFFSET_MS.load(Ordering::SeqCst))
    }

    #[test]
    fn buckets_empty_refill_refund_and_keep_keys_and_addresses_apart() {
        let budget = QueryBudget { queries: 2, period: Duration::from_secs(10) };
        let b = Budgets::with_clock(budget, clock);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        b.reserve([1; 32], Some(ip)).unwrap().complete();
        b.reserve([1; 32], Some(ip)).unwrap().complete();
        // The key's bucket is empty: one token comes back after 5 s.
        let wait = b.reserve([1; 32], Some(other)).unwrap_err();
        assert!(
            matches!(wait, Exhausted::Key(w) if w > Duration::from_millis(4_900) && w <= Duration::from_secs(5))
        );
        // A fresh key from the same address: the address's bucket is empty too.
        assert!(matches!(b.reserve([2; 32], Some(ip)), Err(Exhausted::Address(_))));
        // A session that ends before completing gives its tokens back.
        let r = b.reserve([2; 32], Some(other)).unwrap();
        drop(r);
        b.reserve([2; 32], Some(other)).unwrap().complete();
        b.reserve([2; 32], Some(other)).unwrap().complete();
        assert!(b.reserve([2; 32], Some(other)).is_err());
        // Half a period later, one token each.
        OFFSET_MS.fetch_add(5_000, Ordering::SeqCst);
        b.reserve([1; 32], Some(ip)).unwrap().complete();
        assert!(b.reserve([1; 32], Some(ip)).is_err());
    }
}
