//! The queue's invariants as properties: random interleavings of ingest, claim, completion,
//! failure, crash and restart run on [`Model`], a queue in memory that makes every decision
//! through the policy functions of this module, as storage does, and reads what storage's
//! statements read. After every step the invariants of the module documentation are checked.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::*;
use crate::model::TriggerId;

/// Actions of the model: 0 unique and ordered (the default for unique items), 1 ordered only,
/// 2 neither. Each sends to its own endpoint.
const ACTIONS: i32 = 3;
const ENTITIES: [&str; 3] = ["a", "b", "c"];
const HOSTS: [&str; 3] = ["h0", "h1", "h2"];
/// Slots per endpoint and process.
const SLOTS: usize = 2;
/// The lease a claim takes, and the longest retry delay of the model's policy.
const LEASE: i64 = 50;
const MAX_DELAY: i64 = 40;
const WORKERS: usize = 2;

/// Every call of the model belongs to trigger 1.
fn action_ref(action: i32) -> ActionRef {
    ActionRef::new(TriggerId(1), action as u16)
}

fn unique(action: i32) -> bool {
    action == 0
}

fn ordered(action: i32) -> bool {
    action <= 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending { due: i64 },
    InFlight { worker: usize, lease_until: i64 },
    Succeeded,
    Failed,
    Superseded(CallId),
}

#[derive(Debug, Clone)]
struct Call {
    id: CallId,
    action: i32,
    entity: &'static str,
    /// The event it carries (the newest payload has the highest).
    event: u32,
    status: Status,
    attempts: i32,
    coalesced: i32,
}

impl Call {
    fn key(&self) -> EntityKey<'static> {
        (action_ref(self.action), self.entity)
    }
    fn unfinished(&self) -> bool {
        matches!(
            self.status,
            Status::Pending { .. } | Status::InFlight { .. }
        )
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// One ingest transaction: events as (action, entity index).
    Ingest(Vec<(i32, usize)>),
    /// A worker claims up to this many calls.
    Claim(usize, usize),
    /// A worker finishes its oldest call on the wire: 0 delivered, 1 retry, 2 failed for good.
    Finish(usize, u8),
    /// Time passes.
    Tick(i64),
    /// A worker dies with its calls on the wire (they stay leased).
    Crash(usize),
    /// SQLite start: every call left in flight is recovered.
    Restart,
    /// PostgreSQL lease sweep: calls whose lease ran out are recovered.
    Sweep,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::collection::vec((0..ACTIONS, 0..ENTITIES.len()), 1..5).prop_map(Step::Ingest),
        3 => (0..WORKERS, 1..6usize).prop_map(|(w, n)| Step::Claim(w, n)),
        4 => (0..WORKERS, 0..3u8).prop_map(|(w, o)| Step::Finish(w, o)),
        2 => (1..30i64).prop_map(Step::Tick),
        1 => (0..WORKERS).prop_map(Step::Crash),
        1 => Just(Step::Restart),
        1 => Just(Step::Sweep),
    ]
}

#[derive(Default)]
struct Model {
    calls: Vec<Call>,
    now: i64,
    next_event: u32,
    /// Per key: the events delivered, in delivery order.
    delivered: HashMap<EntityKey<'static>, Vec<u32>>,
    /// Per key: the newest event queued.
    newest: HashMap<EntityKey<'static>, u32>,
}

impl Model {
    fn call_mut(&mut self, id: CallId) -> &mut Call {
        &mut self.calls[(id.0 - 1) as usize]
    }

    fn ingest(&mut self, events: &[(i32, usize)]) {
        let fresh: Vec<(i32, &'static str, u32)> = events
            .iter()
            .map(|&(a, e)| {
                self.next_event += 1;
                (a, ENTITIES[e], self.next_event)
            })
            .collect();
        let policy_fresh: Vec<FreshCall<'static>> = fresh
            .iter()
            .map(|&(a, e, _)| FreshCall {
                key: (action_ref(a), e),
                unique: unique(a),
                ordered: ordered(a),
                queued: true,
                coalesced: 0,
            })
            .collect();
        // What storage reads: the unfinished calls of the keys involved.
        let unfinished: Vec<Unfinished<'static>> = self
            .calls
            .iter()
            .filter(|c| c.unfinished() && policy_fresh.iter().any(|f| f.key == c.key()))
            .map(|c| Unfinished {
                id: c.id,
                key: c.key(),
                pending: matches!(c.status, Status::Pending { .. }),
                unique: unique(c.action),
                coalesced: c.coalesced,
            })
            .collect();
        let plan = plan_ingest(&policy_fresh, &unfinished);
        assert_eq!(plan.placements.len(), fresh.len());
        let first = self.calls.len() as i64 + 1;
        for (i, (&(action, entity, event), placement)) in
            fresh.iter().zip(&plan.placements).enumerate()
        {
            let (status, coalesced) = match *placement {
                Placement::Queue { coalesced, .. } => {
                    (Status::Pending { due: self.now }, coalesced)
                }
                Placement::SupersededBy(j) => {
                    assert!(j > i, "a call is superseded by a later one of its batch");
                    (Status::Superseded(CallId(first + j as i64)), 0)
                }
            };
            self.calls.push(Call {
                id: CallId(first + i as i64),
                action,
                entity,
                event,
                status,
                attempts: 0,
                coalesced,
            });
            self.newest.insert((action_ref(action), entity), event);
        }
        for (old, j) in plan.supersede {
            let by = CallId(first + j as i64);
            let call = self.call_mut(old);
            assert!(
                matches!(call.status, Status::Pending { .. }),
                "only a waiting call is superseded, not {:?}",
                call.status
            );
            call.status = Status::Superseded(by);
        }
    }

    /// What storage's claim reads: pending calls, and whether an earlier unfinished call of
    /// their ordered key exists.
    fn candidates(&self) -> Vec<Candidate<'static>> {
        self.calls
            .iter()
            .filter_map(|c| match c.status {
                Status::Pending { due } => Some(Candidate {
                    id: c.id,
                    priority: 5,
                    due: Timestamp(due),
                    host: HOSTS[c.action as usize],
                    blocked: ordered(c.action)
                        && self
                            .calls
                            .iter()
                            .any(|e| e.id < c.id && e.key() == c.key() && e.unfinished()),
                }),
                _ => None,
            })
            .collect()
    }

    fn on_the_wire(&self, worker: usize, host: &str) -> usize {
        self.calls
            .iter()
            .filter(|c| {
                matches!(c.status, Status::InFlight { worker: w, .. } if w == worker)
                    && HOSTS[c.action as usize] == host
            })
            .count()
    }

    fn claim(&mut self, worker: usize, limit: usize, live: &[bool]) {
        if !live[worker] {
            return;
        }
        let candidates = self.candidates();
        let room = |host: &str| SLOTS.saturating_sub(self.on_the_wire(worker, host));
        let taken = claim(&candidates, Timestamp(self.now), limit, room);
        // A backlog is claimed as far as slots allow, never left for a later poll.
        let mut claimable: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &candidates {
            if c.due.0 <= self.now && !c.blocked {
                *claimable.entry(c.host).or_default() += 1;
            }
        }
        if taken.len() < limit {
            for (host, n) in claimable {
                let got = taken
                    .iter()
                    .filter(|id| HOSTS[self.calls[(id.0 - 1) as usize].action as usize] == host)
                    .count();
                assert_eq!(
                    got,
                    n.min(room(host)),
                    "{host}: slots left free with calls due"
                );
            }
        }
        for id in taken {
            let now = self.now;
            let call = self.call_mut(id);
            assert!(
                matches!(call.status, Status::Pending { .. }),
                "handed out twice: {call:?}"
            );
            call.status = Status::InFlight {
                worker,
                lease_until: now + LEASE,
            };
        }
    }

    fn finish(&mut self, worker: usize, outcome: u8) {
        let Some(call) = self
            .calls
            .iter()
            .find(|c| matches!(c.status, Status::InFlight { worker: w, .. } if w == worker))
            .cloned()
        else {
            return;
        };
        let next = match outcome {
            0 => Next::Succeeded,
            1 => Next::RetryAt(Timestamp(
                self.now + MAX_DELAY / 2 + call.id.0 % (MAX_DELAY / 2),
            )),
            _ => Next::Failed,
        };
        // What storage's completion reads for a unique item: its oldest successor.
        let newer = self.newer(&call);
        let settled = settle(next, unique(call.action), newer);
        if settled == Settled::Succeeded {
            let delivered = self.delivered.entry(call.key()).or_default();
            delivered.push(call.event);
        }
        let c = self.call_mut(call.id);
        c.attempts += 1;
        c.status = match settled {
            Settled::Succeeded => Status::Succeeded,
            Settled::RetryAt(at) => Status::Pending { due: at.0 },
            Settled::Failed => Status::Failed,
            Settled::SupersededBy(by) => Status::Superseded(by),
        };
    }

    /// The newest successor storage reads for a unique item (see `finish`).
    fn newer(&self, call: &Call) -> Option<CallId> {
        self.calls
            .iter()
            .filter(|n| {
                n.id > call.id
                    && n.key() == call.key()
                    && matches!(
                        n.status,
                        Status::Pending { .. } | Status::InFlight { .. } | Status::Succeeded
                    )
            })
            .map(|n| n.id)
            .min()
    }

    fn recover(&mut self, only_expired: bool) {
        let now = self.now;
        // In id order, as storage's statement goes; each sees the ones before it recovered.
        for i in 0..self.calls.len() {
            let c = self.calls[i].clone();
            if let Status::InFlight { lease_until, .. } = c.status {
                if !only_expired || lease_until < now {
                    let r = super::recover(
                        c.attempts,
                        Timestamp(now),
                        unique(c.action),
                        self.newer(&c),
                    );
                    let c = &mut self.calls[i];
                    c.attempts = r.attempts;
                    c.status = match r.next {
                        Settled::RetryAt(at) => Status::Pending { due: at.0 },
                        Settled::SupersededBy(by) => Status::Superseded(by),
                        other => panic!("recovery settled as {other:?}"),
                    };
                }
            }
        }
    }

    fn check(&self) {
        let mut pending: HashMap<EntityKey<'static>, usize> = HashMap::new();
        for c in &self.calls {
            match c.status {
                Status::Pending { due } => {
                    // Nothing stranded: every waiting call is due within the longest delay.
                    assert!(
                        due <= self.now + MAX_DELAY,
                        "stranded: {c:?} at {}",
                        self.now
                    );
                    if unique(c.action) {
                        *pending.entry(c.key()).or_default() += 1;
                    }
                }
                Status::InFlight { lease_until, .. } => {
                    assert!(
                        lease_until <= self.now + LEASE,
                        "lease past its bound: {c:?}"
                    );
                }
                Status::Superseded(by) => {
                    let by = &self.calls[(by.0 - 1) as usize];
                    assert!(
                        by.id > c.id && by.key() == c.key(),
                        "{c:?} superseded by {by:?}"
                    );
                }
                Status::Succeeded | Status::Failed => {}
            }
        }
        for (key, n) in pending {
            assert!(n <= 1, "{n} pending calls for unique key {key:?}");
        }
        // Calls of one ordered key are delivered in the order of their events (so a unique
        // item's receiver never gets an older payload after a newer one).
        for (key, events) in &self.delivered {
            if ordered(i32::from(key.0.index)) {
                assert!(
                    events.windows(2).all(|w| w[0] < w[1]),
                    "{key:?} delivered out of order: {events:?}"
                );
            }
        }
    }

    /// Every worker back, the receiver healthy: the queue drains.
    fn drain(&mut self) {
        self.recover(false);
        for _ in 0..10_000 {
            if !self.calls.iter().any(Call::unfinished) {
                return;
            }
            self.now += MAX_DELAY;
            self.claim(0, 64, &[true, true]);
            while self
                .calls
                .iter()
                .any(|c| matches!(c.status, Status::InFlight { .. }))
            {
                self.finish(0, 0);
            }
            self.check();
        }
        panic!("the queue did not drain: {:#?}", self.calls);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_queue_keeps_its_invariants(steps in prop::collection::vec(step(), 1..80)) {
        let mut m = Model::default();
        let mut live = [true; WORKERS];
        for step in steps {
            match step {
                Step::Ingest(events) => m.ingest(&events),
                Step::Claim(w, n) => m.claim(w, n, &live),
                Step::Finish(w, o) => {
                    if live[w] {
                        m.finish(w, o)
                    }
                }
                Step::Tick(t) => m.now += t,
                Step::Crash(w) => live[w] = false,
                Step::Restart => {
                    m.recover(false);
                    live = [true; WORKERS];
                }
                Step::Sweep => m.recover(true),
            }
            m.check();
        }
        m.drain();
        // Unique items: the newest payload of every key was never superseded; it was the last
        // one delivered, unless its call failed for good.
        for (key, newest) in &m.newest {
            if unique(i32::from(key.0.index)) {
                let call = m.calls.iter().find(|c| c.event == *newest).unwrap();
                let delivered = m.delivered.get(key).map(Vec::as_slice).unwrap_or_default();
                match call.status {
                    Status::Succeeded => prop_assert_eq!(delivered.last(), Some(newest)),
                    Status::Failed => {}
                    other => prop_assert!(false, "the newest call of {:?} ended {:?}", key, other),
                }
            }
        }
    }
}

#[test]
fn a_batch_of_unique_calls_keeps_the_newest_and_counts_the_rest() {
    let key = (action_ref(0), "a");
    let fresh = |coalesced| FreshCall {
        key,
        unique: true,
        ordered: true,
        queued: true,
        coalesced,
    };
    let stored = [
        Unfinished {
            id: CallId(7),
            key,
            pending: false,
            unique: true,
            coalesced: 0,
        },
        Unfinished {
            id: CallId(8),
            key,
            pending: true,
            unique: true,
            coalesced: 2,
        },
    ];
    let plan = plan_ingest(&[fresh(0), fresh(1), fresh(0)], &stored);
    assert_eq!(
        plan.placements,
        [
            Placement::SupersededBy(2),
            Placement::SupersededBy(2),
            // Behind the call on the wire; replaced the two of its batch and the stored pending
            // one, which had replaced two itself.
            Placement::Queue {
                blocked: true,
                coalesced: 1 + (1 + 1) + (1 + 2)
            },
        ]
    );
    assert_eq!(plan.supersede, [(CallId(8), 2)]);
}

#[test]
fn a_failed_unique_call_with_a_newer_one_is_superseded_not_retried() {
    let at = Timestamp(10);
    assert_eq!(
        settle(Next::RetryAt(at), true, Some(CallId(9))),
        Settled::SupersededBy(CallId(9))
    );
    assert_eq!(
        settle(Next::RetryAt(at), false, Some(CallId(9))),
        Settled::RetryAt(at)
    );
    assert_eq!(settle(Next::RetryAt(at), true, None), Settled::RetryAt(at));
    assert_eq!(settle(Next::Failed, true, Some(CallId(9))), Settled::Failed);
}
