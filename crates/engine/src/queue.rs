//! The queue's policy, pure: what happens to calls when events come, attempts end, slots free
//! up and processes die. No I/O: storage reads what a decision needs inside its transaction,
//! asks a function here, and writes what it returns; it never calls back into the engine.
//!
//! The rules (ARCHITECTURE.md lists them as invariants; the property tests below check them
//! over random interleavings on [`Model`], which follows these rules the way storage does):
//! - **Unique items**: at most one *pending* call per (action, entity) at every moment. A newer
//!   call supersedes an older one that still waits — queued earlier, earlier in the same
//!   batch, or just failed and due for a retry: the older ends `superseded` and names the call
//!   that replaced it, so the newest payload is the one delivered. A call on the wire is
//!   never touched; when its attempt fails, it is superseded if a newer call exists.
//! - **Order**: an ordered call waits while an earlier unfinished call of its (action, entity)
//!   exists; so calls of one (action, entity) leave in the order they were queued.
//! - **Slots**: an endpoint never has more calls on the wire from one process than its slots;
//!   a claim takes due calls, highest priority first, oldest first, as far as slots allow.
//! - **Leases and recovery**: a claimed call is leased for longer than its longest attempt
//!   can take; when the lease ends (PostgreSQL) or the process that held it starts again
//!   (SQLite), the call is due at once, its `webhook-id` kept and its interrupted attempt
//!   counted and logged. Nothing unfinished is ever left without a due time.

use std::collections::HashMap;

use crate::model::{ActionRef, CallId, Next, Timestamp};

/// The key of unique items and ordering: one action, one entity.
pub type EntityKey<'a> = (ActionRef, &'a str);

/// A call an ingest is about to queue, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct FreshCall<'a> {
    pub key: EntityKey<'a>,
    pub unique: bool,
    pub ordered: bool,
    /// It would wait for delivery (`false`: stored as failed or skipped, not queued).
    pub queued: bool,
    /// Older calls already folded into it.
    pub coalesced: i32,
}

/// An unfinished call already stored for one of the keys involved.
#[derive(Debug, Clone, Copy)]
pub struct Unfinished<'a> {
    pub id: CallId,
    pub key: EntityKey<'a>,
    /// Pending (`false`: on the wire).
    pub pending: bool,
    /// Whether it is a unique item (only those are superseded).
    pub unique: bool,
    pub coalesced: i32,
}

/// Where a fresh call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Stored to be delivered. `blocked`: an earlier unfinished call of its key exists, so it
    /// must wait for it (and cannot be handed straight to a worker). `coalesced`: calls it
    /// replaced, counting theirs.
    Queue { blocked: bool, coalesced: i32 },
    /// Stored as superseded by the later call at this index of the same batch.
    SupersededBy(usize),
}

/// What an ingest does to the queue.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IngestPlan {
    /// One per fresh call, in order.
    pub placements: Vec<Placement>,
    /// Stored pending calls superseded by the fresh call at the index.
    pub supersede: Vec<(CallId, usize)>,
}

/// Places the fresh calls of one ingest transaction, given the unfinished calls stored for
/// their keys (read, and on PostgreSQL locked, in the same transaction).
pub fn plan_ingest(fresh: &[FreshCall<'_>], unfinished: &[Unfinished<'_>]) -> IngestPlan {
    // The newest unique call of each key wins over the older ones of its batch.
    let mut winner: HashMap<EntityKey<'_>, usize> = HashMap::new();
    for (i, call) in fresh.iter().enumerate() {
        if call.unique && call.queued {
            winner.insert(call.key, i);
        }
    }
    let mut placements = Vec::with_capacity(fresh.len());
    let mut supersede = Vec::new();
    let mut folded = vec![0i32; fresh.len()];
    let mut queued_in_batch: HashMap<EntityKey<'_>, ()> = HashMap::new();
    for (i, call) in fresh.iter().enumerate() {
        if !call.queued {
            placements.push(Placement::Queue {
                blocked: false,
                coalesced: call.coalesced,
            });
            continue;
        }
        if call.unique {
            let w = winner[&call.key];
            if w != i {
                folded[w] += 1 + call.coalesced + folded[i];
                placements.push(Placement::SupersededBy(w));
                continue;
            }
        }
        let mut waits_for_stored = false;
        for old in unfinished.iter().filter(|u| u.key == call.key) {
            if call.unique && old.unique && old.pending {
                supersede.push((old.id, i));
                folded[i] += 1 + old.coalesced;
            } else {
                waits_for_stored = true;
            }
        }
        let blocked = call.ordered && (waits_for_stored || queued_in_batch.contains_key(&call.key));
        queued_in_batch.insert(call.key, ());
        placements.push(Placement::Queue {
            blocked,
            coalesced: call.coalesced + folded[i],
        });
    }
    IngestPlan {
        placements,
        supersede,
    }
}

/// What a finished attempt leaves a call as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Succeeded,
    /// Due again at this time.
    RetryAt(Timestamp),
    Failed,
    /// Not retried: a newer call of its unique key carries a newer payload.
    SupersededBy(CallId),
}

/// Settles an attempt. `newer`: for a unique item, the oldest call of its key queued after it
/// that is not itself finished badly (pending, on the wire or delivered), as read in the
/// completing transaction.
pub fn settle(next: Next, unique: bool, newer: Option<CallId>) -> Settled {
    match (next, unique, newer) {
        (Next::Succeeded, _, _) => Settled::Succeeded,
        (Next::RetryAt(_), true, Some(by)) => Settled::SupersededBy(by),
        (Next::RetryAt(at), _, _) => Settled::RetryAt(at),
        (Next::Failed, _, _) => Settled::Failed,
    }
}

/// A call that was on the wire when its worker went away (lease ended, or the SQLite process
/// that held it is starting again): due at once — or superseded, like a retry, when a newer
/// call of its unique key exists — with the interrupted attempt counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub attempts: i32,
    /// [`Settled::RetryAt`] now, or [`Settled::SupersededBy`].
    pub next: Settled,
}

pub fn recover(
    attempts_before: i32,
    now: Timestamp,
    unique: bool,
    newer: Option<CallId>,
) -> Recovered {
    Recovered {
        attempts: attempts_before + 1,
        next: settle(Next::RetryAt(now), unique, newer),
    }
}

/// A pending call a claim may take, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub id: CallId,
    pub priority: i32,
    pub due: Timestamp,
    pub host: &'a str,
    /// An earlier unfinished call of its ordered key exists.
    pub blocked: bool,
}

/// Which candidates a claim takes: due and not blocked, highest priority first, then the
/// longest due, then the oldest; each endpoint (host) at most `room(host)`; at most `limit`.
/// Storage's claim statement implements this rule in SQL.
pub fn claim<'a>(
    candidates: &[Candidate<'a>],
    now: Timestamp,
    limit: usize,
    room: impl Fn(&str) -> usize,
) -> Vec<CallId> {
    let mut due: Vec<&Candidate<'a>> = candidates
        .iter()
        .filter(|c| c.due <= now && !c.blocked)
        .collect();
    due.sort_by_key(|c| (-c.priority, c.due, c.id));
    let mut taken: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for c in due {
        if out.len() == limit {
            break;
        }
        let n = taken.entry(c.host).or_default();
        if *n < room(c.host) {
            *n += 1;
            out.push(c.id);
        }
    }
    out
}

#[cfg(test)]
mod tests;
