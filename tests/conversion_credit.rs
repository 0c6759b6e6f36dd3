//! A success is counted for its destination's prefix (the conversion guard)
//! in the verification's own round trips, exactly once, whatever races it:
//! read where the challenge id's hint says, credited in the same batch of
//! commits as the outcome, taken back when the outcome lost its race, and
//! never where a forged hint points.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use common::*;
use time::Duration;
use vericode::{
    ChallengeId, CodeStore, Commit, ConversionGuard, Destination, IssueRequest, KeyKind,
    MemoryStore, Policy, Purpose, StoreKey, Subject, Timestamp, VerifyError, Versioned, Write,
};

/// The guard on, with a threshold no test here reaches.
fn guarded() -> Policy {
    relaxed().conversion_guard(ConversionGuard::new(Duration::hours(1), 10_000, 0.2).unwrap())
}

fn request(subject: &str, phone: &str) -> IssueRequest {
    IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new(subject).unwrap(),
        Destination::sms(phone).unwrap(),
    )
}

fn counts<S: CodeStore, C: vericode::Clock>(
    v: &vericode::Verifier<S, vericode::RecordingDelivery, C>,
    phone: &str,
) -> (f64, f64) {
    let seen = block_on(v.prefix_conversion(&Destination::sms(phone).unwrap()))
        .unwrap()
        .unwrap();
    (seen.sends, seen.verified)
}

/// A store that counts calls: each is one round trip on a remote store.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    reads: AtomicUsize,
    commits: AtomicUsize,
}

impl CodeStore for Counting {
    type Error = vericode::MemoryStoreError;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_many(keys, now)
    }

    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(writes, now)
    }

    fn commit_batches(
        &self,
        batches: &[&[Write]],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Commit>, Self::Error>> + Send {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit_batches(batches, now)
    }
}

#[test]
fn a_success_is_credited_in_one_read_and_one_batch_of_commits() {
    let store = Arc::new(Counting::default());
    let v = verifier_with(store.clone(), guarded());
    let t = block_on(v.issue(&request("u1", "+447700900001"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    store.reads.store(0, Ordering::SeqCst);
    store.commits.store(0, Ordering::SeqCst);
    block_on(v.verify(t.challenge_id(), &code)).unwrap();
    assert_eq!(
        (
            store.reads.load(Ordering::SeqCst),
            store.commits.load(Ordering::SeqCst)
        ),
        (1, 1),
        "a successful verify: one read, one batch of commits"
    );
    assert_eq!(counts(&v, "+447700900002"), (1.0, 1.0));
}

#[test]
fn a_forged_hint_credits_the_real_prefix_not_the_named_one() {
    let f = fixture_with(guarded());
    let pumped = block_on(f.verifier.issue(&request("p1", "+882160000001"))).unwrap();
    let t = block_on(f.verifier.issue(&request("u1", "+447700900001"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    // The UK challenge's id with the pumped prefix's hint (bytes 40..56).
    let mut raw = b64decode(&t.challenge_id().to_string());
    let other = b64decode(&pumped.challenge_id().to_string());
    assert_eq!(raw.len(), 56);
    assert_ne!(raw[40..], other[40..], "the hints name the two prefixes");
    raw[40..].copy_from_slice(&other[40..]);
    let forged: ChallengeId = b64encode(&raw).parse().unwrap();
    // The hint is not bound into the code digest: the code still verifies...
    block_on(f.verifier.verify(&forged, &code)).unwrap();
    // ...and the success counts for the UK, where the code went.
    assert_eq!(counts(&f.verifier, "+447700900009"), (1.0, 1.0));
    assert_eq!(counts(&f.verifier, "+882160000009"), (1.0, 0.0));
}

#[test]
fn a_credit_whose_success_lost_its_race_is_taken_back() {
    // The first commit that consumes a challenge finds it already consumed by
    // someone else (the hook deletes it and answers a conflict); the credit
    // sent in the same round trip is applied all the same.
    let raced = Arc::new(AtomicBool::new(false));
    let flag = raced.clone();
    let store = HookedStore::new(move |inner: &MemoryStore, writes: &[Write]| {
        let consumes = writes
            .iter()
            .find(|w| matches!(w, Write::Delete { .. }) && w.key().kind() == KeyKind::Challenge)?;
        if flag.swap(true, Ordering::SeqCst) {
            return None;
        }
        let gone = Write::Delete {
            key: *consumes.key(),
            expected: consumes.expected().unwrap(),
        };
        let now = Timestamp::from_datetime(start());
        assert_eq!(
            block_on(inner.commit(&[gone], now)).unwrap(),
            Commit::Applied
        );
        Some(Commit::Conflict)
    });
    let v = verifier_with(store, guarded());
    let t = block_on(v.issue(&request("u1", "+447700900001"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    assert!(matches!(
        block_on(v.verify(t.challenge_id(), &code)),
        Err(VerifyError::UnknownChallenge)
    ));
    assert!(raced.load(Ordering::SeqCst));
    assert_eq!(
        counts(&v, "+447700900002"),
        (1.0, 0.0),
        "the lost success is not counted"
    );
}

#[test]
fn racing_right_answers_and_sends_count_each_success_once() {
    const CHALLENGES: usize = 24;
    const RACERS: usize = 4;
    const SENDERS: usize = 2;
    const SENDS_EACH: usize = 15;
    let v = Arc::new(verifier_with(MemoryStore::new(), guarded()));
    let mut issued = Vec::new();
    for i in 0..CHALLENGES {
        let t = block_on(v.issue(&request(&format!("u{i}"), &format!("+4477009{i:05}")))).unwrap();
        issued.push((*t.challenge_id(), v.delivery().last_code().unwrap()));
    }
    let successes = AtomicUsize::new(0);
    let barrier = Barrier::new(CHALLENGES * RACERS + SENDERS);
    std::thread::scope(|s| {
        for (id, code) in &issued {
            for _ in 0..RACERS {
                s.spawn(|| {
                    barrier.wait();
                    match block_on(v.verify(id, code)) {
                        Ok(_) => {
                            successes.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(VerifyError::UnknownChallenge) => {}
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                });
            }
        }
        for sender in 0..SENDERS {
            let v = &v;
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for j in 0..SENDS_EACH {
                    let phone = format!("+4478{sender}{j:07}");
                    block_on(v.issue(&request(&format!("s{sender}-{j}"), &phone))).unwrap();
                }
            });
        }
    });
    assert_eq!(successes.load(Ordering::SeqCst), CHALLENGES);
    assert_eq!(
        counts(&v, "+447700999999"),
        (
            (CHALLENGES + SENDERS * SENDS_EACH) as f64,
            CHALLENGES as f64
        )
    );
}
