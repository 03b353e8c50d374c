//! Failed sign-ins, counted per account and per client address.
//!
//! Per account, so that guessing one user's password is slow from any number of addresses;
//! per client address, so that one address cannot try many accounts. The address limit is
//! higher: several people (an office, users behind one proxy that is not in
//! `--trusted-proxies`) share one. An account is the submitted email, normalised, whether or
//! not a user has it, so the answers never tell which accounts exist. A success resets its
//! account's count, not its address's (else one valid account would reset an attacker's
//! address).
//!
//! Memory is bounded: each table holds at most [`Limit::capacity`] keys. When full, it first
//! forgets counts whose window has passed, then counts that lock nothing yet, then the locks
//! that end soonest; it makes room for a quarter of its capacity at a time, so the sweep is
//! paid once per many failures. An IPv6 client counts by its /64, which is what one host
//! usually gets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures lock a key, for how long, and how many keys a table holds.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Failures within [`Limit::window`] that lock the key until the window ends.
    pub failures: u32,
    /// Counted from a key's first failure; a lock lasts until it ends.
    pub window: Duration,
    /// Keys kept at most.
    pub capacity: usize,
}

/// Failed sign-ins allowed per account (the submitted email) within 15 minutes.
pub const PER_ACCOUNT: Limit = Limit {
    failures: 5,
    window: Duration::from_secs(15 * 60),
    capacity: 100_000,
};

/// Failed sign-ins allowed per client address within 15 minutes: higher than per account,
/// as several people may share an address.
pub const PER_ADDRESS: Limit = Limit {
    failures: 20,
    window: Duration::from_secs(15 * 60),
    capacity: 100_000,
};

/// The two tables of failed sign-ins.
pub struct SignInLimits {
    accounts: Mutex<Table>,
    addresses: Mutex<Table>,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits::new(PER_ACCOUNT, PER_ADDRESS)
    }
}

/// A sign-in that must wait: how long until it may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after: Duration,
}

impl Locked {
    /// Whole seconds to wait, at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

impl SignInLimits {
    pub fn new(per_account: Limit, per_address: Limit) -> SignInLimits {
        SignInLimits {
            accounts: Mutex::new(Table::new(per_account)),
            addresses: Mutex::new(Table::new(per_address)),
        }
    }

    /// Whether a sign-in to `account` from `address` must wait (the longer wait of the two).
    pub fn check(&self, account: &str, address: IpAddr) -> Result<(), Locked> {
        self.check_at(account, address, Instant::now())
    }

    /// Counts a failed sign-in against both.
    pub fn failed(&self, account: &str, address: IpAddr) {
        self.failed_at(account, address, Instant::now());
    }

    /// A successful sign-in: the account's count starts again.
    pub fn succeeded(&self, account: &str) {
        lock(&self.accounts).entries.remove(&account_key(account));
    }

    fn check_at(&self, account: &str, address: IpAddr, now: Instant) -> Result<(), Locked> {
        let waits = [
            lock(&self.accounts).locked(&account_key(account), now),
            lock(&self.addresses).locked(&address_key(address), now),
        ];
        match waits.into_iter().flatten().max() {
            Some(retry_after) => Err(Locked { retry_after }),
            None => Ok(()),
        }
    }

    fn failed_at(&self, account: &str, address: IpAddr, now: Instant) {
        lock(&self.accounts).fail(account_key(account), now);
        lock(&self.addresses).fail(address_key(address), now);
    }
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table
        .lock()
        .expect("limiter lock is never poisoned: no panics while held")
}

/// An account as counted: the email as sign-in looks it up (trimmed, lower case).
fn account_key(account: &str) -> String {
    account.trim().to_lowercase()
}

/// An address as counted: IPv4 as is, IPv6 by its /64.
fn address_key(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

struct Table {
    limit: Limit,
    entries: HashMap<String, Failures>,
}

struct Failures {
    count: u32,
    since: Instant,
}

impl Table {
    fn new(limit: Limit) -> Table {
        Table {
            limit,
            entries: HashMap::new(),
        }
    }

    /// How long `key` is still locked, if it is.
    fn locked(&self, key: &str, now: Instant) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        let ends = entry.since + self.limit.window;
        (entry.count >= self.limit.failures && now < ends).then(|| ends - now)
    }

    fn fail(&mut self, key: String, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.limit.capacity {
            self.make_room(now);
        }
        let window = self.limit.window;
        let entry = self.entries.entry(key).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.saturating_duration_since(entry.since) >= window {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    /// Shrinks the table to three quarters of its capacity: expired counts first, then counts
    /// that lock nothing, then the locks that end soonest.
    fn make_room(&mut self, now: Instant) {
        let Limit {
            failures,
            window,
            capacity,
        } = self.limit;
        let target = capacity - capacity / 4;
        self.entries
            .retain(|_, f| now.saturating_duration_since(f.since) < window);
        if self.entries.len() > target {
            self.entries.retain(|_, f| f.count >= failures);
        }
        if self.entries.len() > target {
            let mut starts: Vec<Instant> = self.entries.values().map(|f| f.since).collect();
            let excess = self.entries.len() - target;
            starts.select_nth_unstable(excess - 1);
            let cutoff = starts[excess - 1];
            self.entries.retain(|_, f| f.since > cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));

    fn other(n: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, n))
    }

    #[test]
    fn an_account_locks_after_its_failures_from_any_address_until_the_window_ends() {
        let limits = SignInLimits::default();
        let start = Instant::now();
        for n in 0..PER_ACCOUNT.failures {
            assert_eq!(
                limits.check_at("Ann@Example.com", other(n as u8), start),
                Ok(())
            );
            limits.failed_at(" ann@example.com", other(n as u8), start);
        }
        let locked = limits
            .check_at(
                "ann@example.com",
                other(200),
                start + Duration::from_secs(60),
            )
            .unwrap_err();
        assert_eq!(locked.retry_after, Duration::from_secs(14 * 60));
        assert_eq!(locked.retry_after_secs(), 840);
        // Another account from the same addresses is not locked.
        assert_eq!(limits.check_at("bob@example.com", other(0), start), Ok(()));
        // The lock ends with the window.
        let later = start + PER_ACCOUNT.window;
        assert_eq!(
            limits.check_at("ann@example.com", other(200), later),
            Ok(())
        );
        // And counting starts again: one failure locks nothing.
        limits.failed_at("ann@example.com", other(1), later);
        assert_eq!(limits.check_at("ann@example.com", other(1), later), Ok(()));
    }

    #[test]
    fn an_address_locks_after_its_failures_across_accounts() {
        let limits = SignInLimits::default();
        let now = Instant::now();
        for n in 0..PER_ADDRESS.failures {
            limits.failed_at(&format!("user{n}@example.com"), V4, now);
        }
        assert!(limits.check_at("new@example.com", V4, now).is_err());
        assert_eq!(limits.check_at("new@example.com", other(1), now), Ok(()));
    }

    #[test]
    fn a_success_resets_the_account_but_not_the_address() {
        let limits = SignInLimits::new(
            Limit {
                failures: 2,
                ..PER_ACCOUNT
            },
            Limit {
                failures: 3,
                ..PER_ADDRESS
            },
        );
        let now = Instant::now();
        limits.failed_at("ann@example.com", V4, now);
        limits.failed_at("ann@example.com", V4, now);
        assert!(limits.check_at("ann@example.com", other(1), now).is_err());
        limits.succeeded("ANN@example.com");
        assert_eq!(limits.check_at("ann@example.com", other(1), now), Ok(()));
        limits.failed_at("bob@example.com", V4, now);
        assert!(limits.check_at("carol@example.com", V4, now).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(address_key(mapped), "203.0.113.9");
    }

    #[test]
    fn a_flood_of_names_cannot_grow_the_table_beyond_its_capacity() {
        let small = Limit {
            failures: 2,
            window: Duration::from_secs(900),
            capacity: 100,
        };
        let limits = SignInLimits::new(small, small);
        let start = Instant::now();
        // The victim is locked first.
        limits.failed_at("victim@example.com", V4, start);
        limits.failed_at("victim@example.com", V4, start);
        for n in 0..10_000u32 {
            let at = start + Duration::from_millis(u64::from(n));
            limits.failed_at(&format!("flood{n}@example.com"), other((n % 250) as u8), at);
            assert!(lock(&limits.accounts).entries.len() <= small.capacity);
            assert!(lock(&limits.addresses).entries.len() <= small.capacity);
        }
        // The flood's single failures lock nothing, so they go before the victim's lock does.
        assert!(limits
            .check_at(
                "victim@example.com",
                other(1),
                start + Duration::from_secs(20)
            )
            .is_err());
    }

    #[test]
    fn when_every_entry_is_a_lock_the_oldest_locks_go_first() {
        let tiny = Limit {
            failures: 1,
            window: Duration::from_secs(900),
            capacity: 8,
        };
        let limits = SignInLimits::new(tiny, PER_ADDRESS);
        let start = Instant::now();
        for n in 0..9u64 {
            limits.failed_at(&format!("u{n}@x"), V4, start + Duration::from_secs(n));
        }
        {
            let accounts = lock(&limits.accounts);
            assert!(accounts.entries.len() <= tiny.capacity);
            assert!(!accounts.entries.contains_key("u0@x"));
            assert!(accounts.entries.contains_key("u8@x"));
        }
        // Fill it again; once the window has passed, a full table forgets every expired lock.
        for n in 9..20u64 {
            limits.failed_at(&format!("u{n}@x"), V4, start + Duration::from_secs(n));
        }
        limits.failed_at("late@x", V4, start + Duration::from_secs(2000));
        assert_eq!(lock(&limits.accounts).entries.len(), 1);
    }
}
