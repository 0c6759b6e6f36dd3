//! Fault injection: a store that fails at a chosen call (an error, a storm of
//! conflicts, a write that succeeded but reported failure) and a delivery that
//! fails. Every schedule is swept; after each, the verifier must have failed
//! closed, and must work normally once the faults stop.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use common::*;
use time::Duration;
use vericode::{
    CodeStore, Commit, IssueError, KeyId, Limit, ManualClock, MemoryStore, RateLimit,
    RecordingDelivery, StoreKey, Timestamp, Verifier, VerifyError, Versioned, Write,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The call fails with an error; nothing happens.
    Error,
    /// This commit and the next 40 answer "conflict" without writing.
    ConflictStorm,
    /// The commit is applied, then reported as failed.
    LostAck,
}

struct FaultyStore {
    inner: MemoryStore,
    calls: AtomicUsize,
    at: AtomicUsize,
    fault: Fault,
    storm: AtomicU32,
}

#[derive(Debug, thiserror::Error)]
#[error("injected fault")]
struct InjectedFault;

impl FaultyStore {
    fn new(fault: Fault, at: usize) -> Self {
        FaultyStore {
            inner: MemoryStore::new(),
            calls: AtomicUsize::new(0),
            at: AtomicUsize::new(at),
            fault,
            storm: AtomicU32::new(0),
        }
    }
    fn heal(&self) {
        self.at.store(usize::MAX, Ordering::SeqCst);
        self.storm.store(0, Ordering::SeqCst);
    }
    fn hit(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst) == self.at.load(Ordering::SeqCst)
    }
}

impl CodeStore for FaultyStore {
    type Error = InjectedFault;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, InjectedFault>> + Send {
        let r = if self.hit() && self.fault == Fault::Error {
            Err(InjectedFault)
        } else {
            Ok(block_on(self.inner.get_many(keys, now)).unwrap())
        };
        std::future::ready(r)
    }

    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, InjectedFault>> + Send {
        if self.hit() {
            match self.fault {
                Fault::Error => return std::future::ready(Err(InjectedFault)),
                Fault::ConflictStorm => self.storm.store(41, Ordering::SeqCst),
                Fault::LostAck => {
                    let _ = block_on(self.inner.commit(writes, now));
                    return std::future::ready(Err(InjectedFault));
                }
            }
        }
        if self.storm.load(Ordering::SeqCst) > 0 {
            self.storm.fetch_sub(1, Ordering::SeqCst);
            return std::future::ready(Ok(Commit::Conflict));
        }
        std::future::ready(Ok(block_on(self.inner.commit(writes, now)).unwrap()))
    }
}

fn verifier(store: Arc<FaultyStore>) -> Verifier<Arc<FaultyStore>, RecordingDelivery, ManualClock> {
    Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .clock(ManualClock::new(start()))
        .policy(
            relaxed()
                .resend_cooldown(Duration::ZERO, Duration::ZERO)
                .max_sends(20)
                .limit(
                    Limit::Destination,
                    RateLimit::new(4, Duration::hours(1)).unwrap(),
                ),
        )
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap()
}

/// Issue, then spray wrong guesses and resends, then the right code, with one
/// fault somewhere; check the outcome fails closed.
fn scenario(fault: Fault, at: usize) {
    let store = Arc::new(FaultyStore::new(fault, at));
    let v = verifier(store.clone());
    let Ok(t) = block_on(v.issue(&login("u1"))) else {
        // The fault hit the issue: whatever was delivered must not verify
        // through a challenge we never got; start over once healed.
        store.heal();
        let t = block_on(v.issue(&login("u1")));
        assert!(
            matches!(
                t,
                Ok(_) | Err(IssueError::ResendTooSoon { .. } | IssueError::Store(_))
            ),
            "{t:?}"
        );
        return;
    };
    let mut codes = vec![v.delivery().last_code().unwrap()];
    let mut wrong_answers = 0;
    for round in 0..8 {
        if round % 3 == 2 && block_on(v.resend(t.challenge_id())).is_ok() {
            codes.push(v.delivery().last_code().unwrap());
        }
        let guess = (0..6)
            .map(|i| char::from(b'0' + ((round + i) % 10) as u8))
            .collect::<String>();
        if codes.contains(&guess) {
            continue;
        }
        match block_on(v.verify(t.purpose(), t.challenge_id(), &guess)) {
            Ok(_) => panic!("{fault:?}@{at}: a wrong code succeeded"),
            Err(VerifyError::WrongCode { .. }) => wrong_answers += 1,
            Err(_) => {}
        }
    }
    // No refilled attempts: never more wrong answers than the cap.
    assert!(
        wrong_answers <= 5,
        "{fault:?}@{at}: {wrong_answers} wrong answers"
    );
    // No lost rate-limit count: never more deliveries than the destination allows.
    assert!(
        v.delivery().sent().len() <= 4,
        "{fault:?}@{at}: {} sends",
        v.delivery().sent().len()
    );
    store.heal();
    // Healed: the challenge behaves normally (it may have used its attempts).
    let last = codes.last().unwrap();
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), last));
    assert!(
        matches!(
            r,
            Ok(_) | Err(VerifyError::TooManyAttempts | VerifyError::UnknownChallenge)
        ),
        "{fault:?}@{at}: {r:?}"
    );
    // And a new subject works end to end.
    let t2 = block_on(v.issue(&login("u2"))).unwrap();
    let c2 = v.delivery().last_code().unwrap();
    assert!(
        block_on(v.verify(t2.purpose(), t2.challenge_id(), &c2)).is_ok(),
        "{fault:?}@{at}"
    );
}

#[test]
fn every_single_fault_fails_closed() {
    for fault in [Fault::Error, Fault::ConflictStorm, Fault::LostAck] {
        for at in 0..40 {
            scenario(fault, at);
        }
    }
}

#[test]
fn a_lost_ack_on_a_wrong_guess_still_counts_the_attempt() {
    let store = Arc::new(FaultyStore::new(Fault::LostAck, usize::MAX));
    let v = verifier(store.clone());
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    // The next store call is the verify's read, then its commit.
    store
        .at
        .store(store.calls.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &wrong(&code)));
    assert!(matches!(r, Err(VerifyError::Store(_))), "{r:?}");
    store.heal();
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &wrong(&code)));
    assert!(
        matches!(r, Err(VerifyError::WrongCode { attempts_left: 3 })),
        "{r:?}"
    );
}

#[test]
fn a_lost_ack_on_the_right_code_consumes_it_without_saying_so() {
    let store = Arc::new(FaultyStore::new(Fault::LostAck, usize::MAX));
    let v = verifier(store.clone());
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    store
        .at
        .store(store.calls.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
    assert!(matches!(
        block_on(v.verify(t.purpose(), t.challenge_id(), &code)),
        Err(VerifyError::Store(_))
    ));
    store.heal();
    // Fail closed: the code is spent; the person asks for a new one.
    assert!(matches!(
        block_on(v.verify(t.purpose(), t.challenge_id(), &code)),
        Err(VerifyError::UnknownChallenge)
    ));
}
