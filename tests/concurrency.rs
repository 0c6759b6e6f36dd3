//! Races with real threads: verifications of one code, wrong guesses on one
//! challenge, guesses spread over a subject's challenges, resends, guesses
//! from one client racing its verify limit.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use common::*;
use time::Duration;
use vericode::store::KeyKind;
use vericode::{
    Attempt, ClientKey, IssueError, Limit, Lockout, ManualClock, RateLimit, RecordingDelivery,
    VerifyError,
};

fn race<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn sixty_four_right_answers_one_success() {
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let results = race(64, |_| f.check(&t, &code));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
}

#[test]
fn sixty_four_wrong_guesses_never_exceed_the_cap() {
    for _ in 0..5 {
        let f = fixture();
        let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
        let code = f.verifier.delivery().last_code().unwrap();
        let bad = wrong(&code);
        let results = race(64, |_| f.check(&t, &bad));
        let counted = results
            .iter()
            .filter(|r| matches!(r, Err(e) if e.counted()))
            .count();
        assert_eq!(counted, 5, "{results:?}");
        let mut lefts: Vec<u32> = results
            .iter()
            .filter_map(|r| match r {
                Err(VerifyError::WrongCode { attempts_left }) => Some(*attempts_left),
                _ => None,
            })
            .collect();
        lefts.sort_unstable();
        assert_eq!(
            lefts,
            [0, 1, 2, 3, 4],
            "each attempt was counted exactly once"
        );
        assert!(results.iter().all(|r| matches!(
            r,
            Err(VerifyError::WrongCode { .. } | VerifyError::TooManyAttempts)
        )));
        assert!(matches!(
            f.check(&t, &code),
            Err(VerifyError::TooManyAttempts)
        ));
    }
}

#[test]
fn guesses_spread_over_challenges_are_held_by_the_subject_budget() {
    // Ten challenges of one subject (one per custom purpose), 5 attempts each:
    // 50 guesses would be possible per challenge, but the subject allows 12.
    let f = fixture_with(relaxed().max_failures(12).lockout(Lockout::UntilUnlocked));
    let mut targets = Vec::new();
    for i in 0..10 {
        let req = vericode::IssueRequest::new(
            vericode::Purpose::custom(&format!("action{i}")).unwrap(),
            vericode::Subject::new("victim").unwrap(),
            vericode::Destination::sms("+14155550123").unwrap(),
        );
        let t = block_on(f.verifier.issue(&req)).unwrap();
        targets.push((t, f.verifier.delivery().last_code().unwrap()));
    }
    let results = race(50, |i| {
        let (t, code) = &targets[i % 10];
        f.check(t, &wrong(code))
    });
    let counted = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.counted()))
        .count();
    assert_eq!(counted, 12, "{results:?}");
    for r in &results {
        assert!(
            matches!(
                r,
                Err(VerifyError::WrongCode { .. }
                    | VerifyError::Locked { .. }
                    | VerifyError::Store(_))
            ),
            "{r:?}"
        );
    }
    // Locked now: even a right code fails everywhere.
    let (t, code) = &targets[0];
    assert!(matches!(f.check(t, code), Err(VerifyError::Locked { .. })));
}

type Gated = Arc<Wrapped<ReadsMeet>>;

/// A verifier over a store whose first `n` reads of a challenge meet (armed
/// by setting `waiting`), on `clock`.
fn gated(
    n: usize,
    clock: &ManualClock,
) -> (
    Gated,
    vericode::Verifier<Gated, RecordingDelivery, ManualClock>,
) {
    let store = Arc::new(Wrapped::new(ReadsMeet::new(KeyKind::Challenge, n)));
    store.around.waiting.store(0, Ordering::SeqCst);
    let v = verifier_at(store.clone(), relaxed(), clock);
    (store, v)
}

/// Racing resends, all of which read the challenge before any writes: one
/// message goes out for the cooldown, the others meet the cooldown the
/// winner claimed. (Found by a review: each racer delivered, then one
/// stored its code; the others' codes were sent and dead, so the cooldown
/// and the send limit held only for what was stored.)
#[test]
fn racing_resends_deliver_one_message_per_cooldown() {
    const N: usize = 8;
    let clock = ManualClock::new(start());
    let (store, v) = gated(N, &clock);
    let t = block_on(v.issue(&login("u1"))).unwrap();
    clock.advance(Duration::seconds(30));
    store.around.waiting.store(N, Ordering::SeqCst);
    let results = race(N, |_| block_on(v.resend(t.challenge_id())));
    assert_eq!(store.around.waiting.load(Ordering::SeqCst), 0, "all met");
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert_eq!(v.delivery().sent().len(), 2, "the issue's and one resend's");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r, IssueError::ResendTooSoon { .. }), "{r:?}");
    }
    // Both codes sent work (the first is still live).
    let codes: Vec<String> = v.delivery().sent().iter().map(|m| m.code.clone()).collect();
    let ok = block_on(v.verify(t.purpose(), t.challenge_id(), &codes[0]));
    assert!(ok.is_ok(), "{ok:?}");
}

/// A double-clicked "send me a code", and more: racing first issues for one
/// subject make one challenge and send one message, so no code goes out
/// that would fail (and count a failure) when typed.
#[test]
fn racing_first_issues_send_one_code() {
    const N: usize = 8;
    let clock = ManualClock::new(start());
    let (store, v) = gated(N, &clock);
    store.around.waiting.store(N, Ordering::SeqCst);
    let results = race(N, |_| block_on(v.issue(&login("u1"))));
    assert_eq!(store.around.waiting.load(Ordering::SeqCst), 0, "all met");
    let tickets: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(tickets.len(), 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r, IssueError::ResendTooSoon { .. }), "{r:?}");
    }
    let sent = v.delivery().sent();
    assert_eq!(sent.len(), 1, "one message for one challenge");
    assert_eq!(store.inner.len(), 1);
    let t = tickets[0];
    let ok = block_on(v.verify(t.purpose(), t.challenge_id(), &sent[0].code));
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn concurrent_first_issues_make_one_challenge() {
    let f = fixture();
    let results = race(16, |_| block_on(f.verifier.issue(&login("u1"))));
    let ids: std::collections::HashSet<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|t| t.challenge_id().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(f.store.inner.len(), 1);
    assert_eq!(f.verifier.delivery().sent().len(), 1);
}

#[test]
fn guesses_racing_from_one_client_are_answered_within_its_limit() {
    // Found by an audit: each guess's client charge went with its outcome,
    // and one that lost the race was made again with its answer ignored, so
    // eight racing guesses were all answered on one charge.
    const N: usize = 8;
    // Every guess reads the limit before any charge is written.
    let store = Wrapped::new(ReadsMeet::new(KeyKind::Rate, N));
    let one_an_hour = RateLimit::new(1, Duration::hours(1)).unwrap();
    let v = verifier_with(store, relaxed().limit(Limit::VerifyClient, one_an_hour));
    let tickets: Vec<_> = (0..N)
        .map(|i| {
            let t = block_on(v.issue(&login(&format!("victim-{i}")))).unwrap();
            (t, v.delivery().last_code().unwrap())
        })
        .collect();
    let ip = ClientKey::new("ip:203.0.113.7").unwrap();
    let answers = race(N, |i| {
        let (t, code) = &tickets[i];
        block_on(
            v.verify_attempt(Attempt::new(t.purpose(), t.challenge_id(), &wrong(code)).client(&ip)),
        )
    });
    let answered = answers
        .iter()
        .filter(|r| matches!(r, Err(VerifyError::WrongCode { .. })))
        .count();
    let limited = answers
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(VerifyError::RateLimited {
                    limit: Limit::VerifyClient,
                    ..
                })
            )
        })
        .count();
    assert_eq!((answered, limited), (1, N - 1), "{answers:?}");
    // Every guess read the limit before any charge was written.
    assert_eq!(v.store().waiting.load(Ordering::SeqCst), 0);
}

/// Two sends race for the last unit of the global limit: each claims its own
/// challenge with its charge, the loser's charge is refused when decided
/// again, and its claim is given back (nothing of it stays in the store).
#[test]
fn a_send_refused_by_a_limit_after_its_claim_gives_the_claim_back() {
    let store = Arc::new(Wrapped::new(ReadsMeet::new(KeyKind::Rate, 2)));
    let one = RateLimit::new(1, Duration::hours(1)).unwrap();
    let v = verifier_with(store.clone(), relaxed().limit(Limit::Global, one));
    let results = race(2, |i| block_on(v.issue(&login(&format!("u{i}")))));
    assert_eq!(store.around.waiting.load(Ordering::SeqCst), 0, "both met");
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| matches!(
            r,
            Err(IssueError::RateLimited {
                limit: Limit::Global,
                ..
            })
        )),
        "{results:?}"
    );
    assert_eq!(v.delivery().sent().len(), 1);
    // The winner's challenge and the limit's state; the loser's claim is gone.
    assert_eq!(store.inner.len(), 2);
}

/// [`ReadsMeet`], on a store whose commit round trips land whole, one at a
/// time (one pipeline is never interleaved with another's).
struct MeetSerially {
    meet: ReadsMeet,
    pipelines: std::sync::Mutex<()>,
}

impl Around for MeetSerially {
    fn read(&self, keys: &[vericode::StoreKey]) {
        self.meet.read(keys);
    }
    fn serial(&self) -> Option<&std::sync::Mutex<()>> {
        Some(&self.pipelines)
    }
}

/// A double-clicked "send me a code" is one send to the destination's limit:
/// the racers that lose the claim deliver nothing, and take back the
/// charges they wrote. (Found by a review: each racer stayed charged, so a
/// person who double-clicked twice had spent four of the destination's
/// sends on two messages.) The store lands each round trip whole: where
/// another racer's charge lands on top of a loser's between them, the
/// loser's refund meets it and the charge stays (fail closed).
#[test]
fn racers_that_lose_the_claim_take_their_charges_back() {
    const N: usize = 4;
    let clock = ManualClock::new(start());
    let store = Arc::new(Wrapped::new(MeetSerially {
        meet: ReadsMeet::new(KeyKind::Challenge, N),
        pipelines: std::sync::Mutex::new(()),
    }));
    let two = RateLimit::new(2, Duration::hours(1)).unwrap();
    let v = verifier_at(
        store.clone(),
        relaxed().limit(Limit::Destination, two),
        &clock,
    );
    let results = race(N, |_| block_on(v.issue(&login("u1"))));
    assert_eq!(
        store.around.meet.waiting.load(Ordering::SeqCst),
        0,
        "all met"
    );
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(v.delivery().sent().len(), 1);
    // One message, one charge: the second of the two an hour goes through
    // once the cooldown is over, and the limit still holds after it.
    clock.advance(Duration::seconds(30));
    let again = block_on(v.issue(&login("u1")));
    assert!(again.is_ok(), "{again:?}");
    clock.advance(Duration::seconds(60));
    let third = block_on(v.issue(&login("u1")));
    assert!(
        matches!(
            third,
            Err(IssueError::RateLimited {
                limit: Limit::Destination,
                ..
            })
        ),
        "{third:?}"
    );
    assert_eq!(v.delivery().sent().len(), 2);
}

/// A send whose delivery failed held its claim: its charges stand (a review
/// found no test failed when every failed send was refunded).
#[test]
fn a_failed_delivery_stays_charged() {
    let store = Arc::new(SpyStore::default());
    let one = RateLimit::new(1, Duration::hours(1)).unwrap();
    let policy = relaxed().limit(Limit::Destination, one);
    let failing = failing_on(store.clone(), policy.clone());
    let r = block_on(failing.issue(&login("u1")));
    assert!(matches!(r, Err(IssueError::Delivery(_))), "{r:?}");
    let v = verifier_with(store.clone(), policy);
    let r = block_on(v.issue(&login("u2")));
    assert!(
        matches!(
            r,
            Err(IssueError::RateLimited {
                limit: Limit::Destination,
                ..
            })
        ),
        "the failed delivery's charge was taken back: {r:?}"
    );
}

/// A send whose claims all lose while another charge lands on its limit
/// after its own: its refund leaves that later charge alone (a review).
#[test]
fn a_refund_never_undoes_a_later_charge() {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use vericode::{CodeStore, Commit, Timestamp, Version, Write};
    let claims = Arc::new(AtomicUsize::new(0));
    let rate_key = Arc::new(Mutex::new(None));
    let (c2, k2) = (claims.clone(), rate_key.clone());
    let store = Arc::new(hooked(
        move |mem: &vericode::MemoryStore, writes: &[Write]| {
            let w = &writes[0];
            let now = Timestamp::from_datetime(start());
            match w.key().kind() {
                KeyKind::Challenge => {
                    if c2.fetch_add(1, Ordering::SeqCst) == 1 {
                        // Another send charges the limit on top of this one's.
                        let key = k2.lock().unwrap().expect("charged first");
                        let cur = block_on(mem.get_many(&[key], now)).unwrap()[0]
                            .clone()
                            .expect("the charge");
                        let bump = Write::Put {
                            key,
                            record: cur.record.clone(),
                            expected: Some(cur.version),
                            version: Version::fresh(),
                            expires_at: now.saturating_add(Duration::hours(2)),
                        };
                        assert_eq!(block_on(mem.commit(&[bump], now)).unwrap(), Commit::Applied);
                    }
                    Some(Commit::Conflict)
                }
                KeyKind::Rate => {
                    k2.lock().unwrap().get_or_insert(*w.key());
                    None
                }
                _ => None,
            }
        },
    ));
    let two = RateLimit::new(2, Duration::hours(1)).unwrap();
    let v = verifier_with(store.clone(), relaxed().limit(Limit::Destination, two));
    let r = block_on(v.issue(&login("u1")));
    assert!(r.is_err(), "{r:?}");
    assert!(v.delivery().sent().is_empty());
    assert!(claims.load(Ordering::SeqCst) >= 2);
    // The limit keeps the later charge (one record: the limit's state).
    assert_eq!(store.inner.len(), 1, "the refund undid a later charge");
}
