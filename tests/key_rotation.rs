//! Keys rotate without invalidating live codes; a removed key's codes fail.

mod common;

use std::sync::Arc;

use common::*;
use time::Duration;
use vericode::{ConfigError, KeyId, ManualClock, RecordingDelivery, Verifier, VerifyError};

/// A verifier holding key `n`'s secret (`key(n)`) under each id `n`.
fn verifier(store: Arc<SpyStore>, clock: ManualClock, signing: u32, older: &[u32]) -> TestVerifier {
    let older: Vec<(u32, u8)> = older.iter().map(|&k| (k, k as u8)).collect();
    holding(store, clock, (signing, signing as u8), &older)
}

/// A verifier holding the secret `key(secret)` under each `(id, secret)`.
fn holding(
    store: Arc<SpyStore>,
    clock: ManualClock,
    (signing, secret): (u32, u8),
    older: &[(u32, u8)],
) -> TestVerifier {
    let mut b = Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .clock(clock)
        .policy(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO))
        .signing_key(KeyId::new(signing), key(secret))
        .lookup_key(key(200))
        .app_name("Acme");
    for &(k, secret) in older {
        b = b.verification_key(KeyId::new(k), key(secret));
    }
    b.build().unwrap()
}

#[test]
fn codes_made_under_the_old_key_verify_after_rotation() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let old = verifier(store.clone(), clock.clone(), 1, &[]);
    let t = block_on(old.issue(&login("u1"))).unwrap();
    let old_code = old.delivery().last_code().unwrap();

    let rotated = verifier(store.clone(), clock.clone(), 2, &[1]);
    // A resend under the new key: both codes live, under different keys.
    block_on(rotated.resend(t.challenge_id())).unwrap();
    let new_code = rotated.delivery().last_code().unwrap();
    if new_code != old_code {
        assert!(block_on(rotated.verify(t.purpose(), t.challenge_id(), &old_code)).is_ok());
    }
    let t = block_on(rotated.issue(&login("u2"))).unwrap();
    let code = rotated.delivery().last_code().unwrap();
    assert!(block_on(rotated.verify(t.purpose(), t.challenge_id(), &code)).is_ok());
    let _ = new_code;
}

/// A code under a key the verifier does not hold cannot be checked: it fails,
/// and, nothing having been compared, nothing is counted or used up. So
/// during a rolling rotation, a server not yet given the new key answers
/// `KeyNotHeld` for a right code another server signed, and the person's
/// attempts and failure budget are untouched (a review found them spent on
/// a `WrongCode`).
#[test]
fn codes_under_a_key_not_held_fail_uncounted() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let updated = verifier(store.clone(), clock.clone(), 2, &[1]);
    let t = block_on(updated.issue(&login("u1"))).unwrap();
    let code = updated.delivery().last_code().unwrap();
    let behind = verifier(store.clone(), clock.clone(), 1, &[]);
    for _ in 0..6 {
        let r = block_on(behind.verify(t.purpose(), t.challenge_id(), &code));
        match r {
            Err(ref e @ VerifyError::KeyNotHeld { key }) => {
                assert_eq!(key, KeyId::new(2));
                assert!(!e.counted());
            }
            other => panic!("{other:?}"),
        }
    }
    // Six refusals, more than the challenge's 5 attempts: none was counted.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    match block_on(updated.verify(t.purpose(), t.challenge_id(), wrong)) {
        Err(VerifyError::WrongCode { attempts_left }) => assert_eq!(attempts_left, 4),
        other => panic!("{other:?}"),
    }
    assert!(block_on(updated.verify(t.purpose(), t.challenge_id(), &code)).is_ok());

    // Once the old key is dropped, its codes fail the same way.
    let old = verifier(store.clone(), clock.clone(), 1, &[]);
    let t = block_on(old.issue(&login("u2"))).unwrap();
    let code = old.delivery().last_code().unwrap();
    let dropped = verifier(store, clock, 2, &[]);
    let r = block_on(dropped.verify(t.purpose(), t.challenge_id(), &code));
    assert!(
        matches!(r, Err(VerifyError::KeyNotHeld { key }) if key == KeyId::new(1)),
        "{r:?}"
    );
}

/// With one of a challenge's codes under a held key, that one is checked and
/// a wrong guess counted as usual; only a challenge with no code under a
/// held key answers `KeyNotHeld`.
#[test]
fn a_challenge_with_some_code_under_a_held_key_is_checked_as_usual() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let old = verifier(store.clone(), clock.clone(), 1, &[]);
    let t = block_on(old.issue(&login("u1"))).unwrap();
    let old_code = old.delivery().last_code().unwrap();
    // Key 1 dropped; a resend under key 2.
    let new = verifier(store, clock, 2, &[]);
    block_on(new.resend(t.challenge_id())).unwrap();
    let new_code = new.delivery().last_code().unwrap();
    if new_code == old_code {
        return; // one chance in a million: nothing to tell apart
    }
    match block_on(new.verify(t.purpose(), t.challenge_id(), &old_code)) {
        Err(VerifyError::WrongCode { attempts_left }) => assert_eq!(attempts_left, 4),
        other => panic!("{other:?}"),
    }
    assert!(block_on(new.verify(t.purpose(), t.challenge_id(), &new_code)).is_ok());
}

/// `check_signing_keys` tells servers that hold another secret under one key
/// id apart, through a rotation, before any code is counted wrong.
#[test]
fn servers_with_another_secret_under_a_key_id_fail_the_check() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let check = |v: &TestVerifier| block_on(v.check_signing_keys());
    let old = verifier(store.clone(), clock.clone(), 1, &[]);
    check(&old).unwrap();
    // Mid-rotation: key 2 added, then signing with it; key 1 kept.
    check(&verifier(store.clone(), clock.clone(), 1, &[2])).unwrap();
    check(&verifier(store.clone(), clock.clone(), 2, &[1])).unwrap();
    // A server given another secret under id 2.
    let stray = holding(store.clone(), clock.clone(), (2, 9), &[(1, 1)]);
    match check(&stray) {
        Err(vericode::SigningKeyError::Mismatch { key }) => assert_eq!(key, KeyId::new(2)),
        other => panic!("{other:?}"),
    }
    // Fingerprints outlive their 400 days while checks renew them.
    clock.advance(Duration::days(200));
    check(&verifier(store.clone(), clock.clone(), 2, &[1])).unwrap();
    clock.advance(Duration::days(250));
    assert!(check(&stray).is_err());

    // Another secret under a verification key is caught too.
    let other_old = holding(store.clone(), clock.clone(), (2, 2), &[(1, 8)]);
    match check(&other_old) {
        Err(vericode::SigningKeyError::Mismatch { key }) => assert_eq!(key, KeyId::new(1)),
        other => panic!("{other:?}"),
    }

    // A server that fails leaves nothing behind: a stray signing with a new
    // id 3 and holding another secret under 2 is refused, and the fleet's
    // own id 3 still passes afterwards.
    let stray3 = holding(store.clone(), clock.clone(), (3, 33), &[(2, 9)]);
    assert!(check(&stray3).is_err());
    check(&verifier(store.clone(), clock.clone(), 3, &[2])).unwrap();
}

#[test]
fn another_secret_under_the_same_id_does_not_verify() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let a = verifier(store.clone(), clock.clone(), 1, &[]);
    let t = block_on(a.issue(&login("u1"))).unwrap();
    let code = a.delivery().last_code().unwrap();
    let b = Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .clock(clock)
        .signing_key(KeyId::new(1), key(9))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap();
    assert!(matches!(
        block_on(b.verify(t.purpose(), t.challenge_id(), &code)),
        Err(VerifyError::WrongCode { .. })
    ));
}

#[test]
fn build_refuses_bad_key_sets() {
    let base = || {
        Verifier::builder()
            .store(vericode::MemoryStore::new())
            .delivery(RecordingDelivery::new())
            .app_name("Acme")
    };
    assert_eq!(base().build().unwrap_err(), ConfigError::MissingSigningKey);
    let e = base()
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .verification_key(KeyId::new(1), key(2))
        .build()
        .unwrap_err();
    assert_eq!(e, ConfigError::DuplicateKeyId(KeyId::new(1)));
    let e = Verifier::builder()
        .store(vericode::MemoryStore::new())
        .delivery(RecordingDelivery::new())
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .build()
        .unwrap_err();
    assert_eq!(e, ConfigError::AppName);
    let e = base()
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .policy(relaxed().max_attempts(0))
        .build()
        .unwrap_err();
    assert!(matches!(e, ConfigError::Policy(_)));
}

#[test]
fn secrets_never_print() {
    let v = verifier(
        Arc::new(SpyStore::default()),
        ManualClock::new(start()),
        1,
        &[7],
    );
    let dbg = format!("{v:?}");
    assert!(dbg.contains("KeyRing"));
    // key(1) is 32 bytes of 0x01: no run of its bytes may appear in any form.
    assert!(!dbg.contains("[1, 1, 1"));
    assert!(!dbg.contains("0101"));
}
