//! Races with real threads: verifications of one code, wrong guesses on one
//! challenge, guesses spread over a subject's challenges, resends, guesses
//! from one client racing its verify limit.

mod common;

use std::sync::Barrier;
use std::sync::atomic::Ordering;

use common::*;
use time::Duration;
use vericode::store::KeyKind;
use vericode::{Attempt, ClientKey, IssueError, Limit, Lockout, RateLimit, VerifyError};

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

#[test]
fn concurrent_resends_send_one_code_per_cooldown() {
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    f.clock.advance(Duration::seconds(30));
    let results = race(16, |_| block_on(f.verifier.resend(t.challenge_id())));
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        // Losers either saw the winner's cooldown, or lost the write after delivering
        // (their code is bound to nothing stored and never verifies).
        assert!(
            matches!(r, IssueError::ResendTooSoon { .. } | IssueError::Store(_)),
            "{r:?}"
        );
    }
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
