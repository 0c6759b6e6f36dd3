//! One test per invariant of the design notes (shared/design.md, "Invariants").
//! Each fails if its invariant breaks.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use common::*;
use time::Duration;
use vericode::{
    CodeFormat, Context, Destination, IssueError, IssueRequest, KeyId, ManualClock, MemoryStore,
    Purpose, Subject, Verifier, VerifyError,
};

/// Invariant 1: Codes come from a CSPRNG, uniformly over the alphabet, 6 digits by default.
///
/// 20 000 codes give 20 000 digits per position; a chi-square test per position
/// over the 10 digits at p = 6e-7 (critical value 46 for 9 degrees of freedom)
/// fails a skewed or stuck generator, while a uniform one fails it about once in
/// 300 000 runs. The rejection sampling that removes modulo bias is tested
/// exactly, with a scripted generator, in `code.rs`.
#[test]
fn invariant_1_codes_are_uniform_six_digits() {
    let f = fixture_with(
        relaxed()
            .max_sends(20)
            .resend_cooldown(Duration::ZERO, Duration::ZERO),
    );
    let mut counts = [[0u32; 10]; 6];
    let mut seen = HashMap::new();
    let n = 20_000;
    for i in 0..n {
        let t = block_on(f.verifier.issue(&login(&format!("u{i}")))).unwrap();
        let _ = t;
        let code = f.verifier.delivery().last_code().unwrap();
        assert_eq!(code.len(), 6);
        for (pos, b) in code.bytes().enumerate() {
            counts[pos][usize::from(b - b'0')] += 1;
        }
        *seen.entry(code).or_insert(0u32) += 1;
    }
    let expected = f64::from(n) / 10.0;
    for (pos, c) in counts.iter().enumerate() {
        let chi2: f64 = c
            .iter()
            .map(|&o| (f64::from(o) - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 46.0, "position {pos}: chi2 = {chi2}, counts {c:?}");
    }
    // 20 000 draws from a million: about 200 repeated pairs expected; far more means little entropy.
    let repeats: u32 = seen.values().map(|&k| k - 1).sum();
    assert!(repeats < 400, "{repeats} repeats");
}

/// Invariant 2: Only digests at rest: no record ever written holds the plaintext code.
#[test]
fn invariant_2_no_plaintext_code_at_rest() {
    // 12-character codes: an accidental 12-byte match in a record is impossible in practice.
    let f = fixture_with(
        relaxed()
            .code_format(CodeFormat::unambiguous(12).unwrap())
            .resend_cooldown(Duration::ZERO, Duration::ZERO),
    );
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let mut codes = vec![f.verifier.delivery().last_code().unwrap()];
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    codes.push(f.verifier.delivery().last_code().unwrap());
    let _ = f.check(&t, &wrong(&codes[0]));
    let writes = f.store.writes();
    assert!(writes.len() >= 3);
    for code in &codes {
        for bytes in &writes {
            let hay = String::from_utf8_lossy(bytes).to_uppercase();
            assert!(!hay.contains(code.as_str()), "a stored record holds a code");
        }
    }
    // Nor does anything vericode formats for logs.
    let dbg = format!("{:?} {:?}", f.verifier, t);
    for code in &codes {
        assert!(!dbg.contains(code.as_str()));
    }
}

/// Invariant 3: Input is normalised and capped before hashing; comparison covers every
/// live code (it does not stop at the first).
#[test]
fn invariant_3_normalised_capped_input_and_full_comparison() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    let newest = f.verifier.delivery().last_code().unwrap();
    // A megabyte of digits is refused unread, and not counted.
    let huge = "1".repeat(1 << 20);
    let r = f.check(&t, &huge);
    assert!(
        matches!(
            r,
            Err(VerifyError::Malformed(vericode::InputError::CodeTooLong))
        ),
        "{r:?}"
    );
    // The newest of three live codes matches, written the way people type.
    let typed = format!("  {} {}\t", &newest[..3], &newest[3..]);
    assert!(f.check(&t, &typed).is_ok());
}

/// Invariant 4: An attempt is recorded before its result is known; at the cap even the
/// right code fails.
#[test]
fn invariant_4_attempt_recorded_before_result() {
    let f = fixture_with(relaxed().max_attempts(3));
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let before = f.store.writes().len();
    let r = f.check(&t, &wrong(&code));
    assert!(matches!(
        r,
        Err(VerifyError::WrongCode { attempts_left: 2 })
    ));
    // The answer came after both the challenge and the subject were written.
    assert_eq!(f.store.writes().len(), before + 2);
    let _ = f.check(&t, &wrong(&code));
    let _ = f.check(&t, &wrong(&code));
    let r = f.check(&t, &code);
    assert!(matches!(r, Err(VerifyError::TooManyAttempts)), "{r:?}");
}

/// Invariant 5: Of N concurrent verifications with the right code, exactly one succeeds.
#[test]
fn invariant_5_exactly_one_of_many_concurrent_right_answers() {
    for _round in 0..5 {
        let f = fixture();
        let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
        let code = f.verifier.delivery().last_code().unwrap();
        let n = 64;
        let barrier = Barrier::new(n);
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        f.check(&t, &code)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1);
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| matches!(e, VerifyError::UnknownChallenge))
        );
    }
}

/// Invariant 6: Resend and re-issue never refill attempts, never extend expiry, never
/// reset the subject's failure count.
#[test]
fn invariant_6_resend_and_reissue_refill_nothing() {
    let f = fixture_with(
        relaxed()
            .max_failures(11)
            .lockout(vericode::Lockout::UntilUnlocked),
    );
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    for _ in 0..3 {
        let _ = f.check(&t, &wrong(&code));
    }
    f.clock.advance(Duration::seconds(30));
    let resent = block_on(f.verifier.resend(t.challenge_id())).unwrap();
    assert_eq!(resent.attempts_left(), 2);
    assert_eq!(resent.expires_at(), t.expires_at());
    f.clock.advance(Duration::seconds(60));
    let reissued = block_on(f.verifier.issue(&login("u1"))).unwrap();
    assert_eq!(reissued.attempts_left(), 2);
    assert_eq!(reissued.expires_at(), t.expires_at());
    // Use up the challenge, start another: the subject's count carries on.
    for _ in 0..2 {
        let _ = f.check(&t, &wrong(&code));
    }
    f.clock.advance(Duration::minutes(10));
    let t2 = block_on(f.verifier.issue(&login("u1"))).unwrap();
    assert_eq!(t2.attempts_left(), 5);
    let c2 = f.verifier.delivery().last_code().unwrap();
    // 9 failures counted so far (3 guesses against one live code, 2 against
    // three: each guess counts once per code it was compared with); 2 more
    // reach the subject's limit of 11.
    for _ in 0..2 {
        let _ = f.check(&t2, &wrong(&c2));
    }
    let r = f.check(&t2, &c2);
    assert!(
        matches!(r, Err(VerifyError::Locked { until: None })),
        "{r:?}"
    );
}

/// Invariant 7: A code verifies only for its own challenge, purpose and context.
#[test]
fn invariant_7_codes_are_bound_to_challenge_purpose_context() {
    // 12-digit codes so that two challenges never share a code by chance.
    let f = fixture_with(relaxed().code_format(CodeFormat::digits(12).unwrap()));
    let ta = block_on(f.verifier.issue(&login("alice"))).unwrap();
    let ca = f.verifier.delivery().last_code().unwrap();
    let tb = block_on(f.verifier.issue(&login("bob"))).unwrap();
    let cb = f.verifier.delivery().last_code().unwrap();
    let reset = IssueRequest::new(
        Purpose::PasswordReset,
        Subject::new("alice").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    );
    let tr = block_on(f.verifier.issue(&reset)).unwrap();
    let cr = f.verifier.delivery().last_code().unwrap();
    // Alice's login code does not open Bob's challenge nor her own password reset.
    assert!(matches!(
        f.check(&tb, &ca),
        Err(VerifyError::WrongCode { .. })
    ));
    assert!(matches!(
        f.check(&tr, &ca),
        Err(VerifyError::WrongCode { .. })
    ));
    // Context: see also lifecycle::bound_context_must_match_exactly.
    let bound = IssueRequest::new(
        Purpose::CredentialChange,
        Subject::new("alice").unwrap(),
        Destination::email("a@example.com").unwrap(),
    )
    .bind(Context::new("new-email:a@example.com").unwrap());
    let tc = block_on(f.verifier.issue(&bound)).unwrap();
    let cc = f.verifier.delivery().last_code().unwrap();
    let other = Context::new("new-email:b@example.com").unwrap();
    assert!(
        block_on(
            f.verifier
                .verify_bound(tc.purpose(), tc.challenge_id(), &cc, &other)
        )
        .is_err()
    );
    // Each works for its own.
    assert!(f.check(&ta, &ca).is_ok());
    assert!(f.check(&tb, &cb).is_ok());
    assert!(f.check(&tr, &cr).is_ok());
}

/// Invariant 8: After expiry every code of the challenge fails.
#[test]
fn invariant_8_after_expiry_every_code_fails() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let mut codes = vec![f.verifier.delivery().last_code().unwrap()];
    f.clock.advance(Duration::minutes(9));
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    codes.push(f.verifier.delivery().last_code().unwrap());
    f.clock.advance(Duration::minutes(1));
    for code in &codes {
        let r = f.check(&t, code);
        assert!(matches!(r, Err(VerifyError::Expired)), "{r:?}");
    }
    // Long after, the record is gone; still a failure.
    f.clock.advance(Duration::hours(2));
    assert!(matches!(
        f.check(&t, &codes[1]),
        Err(VerifyError::UnknownChallenge)
    ));
    assert!(matches!(
        block_on(f.verifier.resend(t.challenge_id())),
        Err(IssueError::UnknownChallenge)
    ));
}

/// Invariant 9: A store or delivery error never turns into success and never widens an
/// attacker's budget; it is returned typed. (More in `store_failures.rs`.)
#[test]
fn invariant_9_errors_never_become_success() {
    let clock = ManualClock::new(start());
    let store = Arc::new(common::FlakyStore::new(MemoryStore::new()));
    let v = Verifier::builder()
        .store(store.clone())
        .delivery(vericode::RecordingDelivery::new())
        .clock(clock)
        .policy(relaxed())
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap();
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    store.fail_commits(true);
    // A wrong guess whose count cannot be written is not answered "wrong".
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &wrong(&code)));
    assert!(matches!(r, Err(VerifyError::Store(_))), "{r:?}");
    // The right code cannot be consumed, so it is not a success.
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &code));
    assert!(matches!(r, Err(VerifyError::Store(_))), "{r:?}");
    store.fail_commits(false);
    store.fail_reads(true);
    assert!(matches!(
        block_on(v.verify(t.purpose(), t.challenge_id(), &code)),
        Err(VerifyError::Store(_))
    ));
    store.fail_reads(false);
    // Nothing was counted while the store failed; the right code now works once.
    assert!(block_on(v.verify(t.purpose(), t.challenge_id(), &code)).is_ok());
}

/// Invariant 10: No code is valid that was never handed to `Delivery`: a failed delivery
/// leaves nothing verifiable.
#[test]
fn invariant_10_failed_delivery_leaves_nothing_verifiable() {
    let store = Arc::new(SpyStore::default());
    let policy = relaxed()
        .code_format(CodeFormat::digits(12).unwrap())
        .resend_cooldown(Duration::ZERO, Duration::ZERO);
    let failing = failing_on(store.clone(), policy.clone());
    let r = block_on(failing.issue(&login("u1")));
    assert!(matches!(r, Err(IssueError::Delivery(_))), "{r:?}");
    // The send's claim (no code in it) was given back: nothing is left.
    assert!(store.inner.is_empty());

    // A working verifier on the same store and keys issues a challenge; a resend
    // through the failing one must not add its code.
    let working = Verifier::builder()
        .store(store.clone())
        .delivery(vericode::RecordingDelivery::new())
        .clock(ManualClock::new(start()))
        .policy(policy)
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap();
    let t = block_on(working.issue(&login("u1"))).unwrap();
    let before = store.writes().last().cloned();
    assert!(matches!(
        block_on(failing.resend(t.challenge_id())),
        Err(IssueError::Delivery(_))
    ));
    // The resend's claim was given back: the challenge as it was.
    assert_eq!(store.writes().last().cloned(), before);
    let undelivered = failing
        .delivery()
        .seen
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    let r = block_on(working.verify(t.purpose(), t.challenge_id(), &undelivered));
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
}
