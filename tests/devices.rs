//! Remembered devices: a verified device skips the challenge until it expires
//! or is revoked; tokens are bound to their subject and checked in constant
//! time; nothing secret is stored.

mod common;

use common::*;
use time::Duration;
use vericode::{DeviceError, DeviceToken, Subject};

fn verified_device(f: &Fixture, subject: &str) -> DeviceToken {
    let t = block_on(f.verifier.issue(&login(subject))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let verified = f.check(&t, &code).unwrap();
    let device = block_on(f.verifier.remember_device(&verified)).unwrap();
    assert_eq!(device.expires_at(), start() + Duration::days(30));
    DeviceToken::parse(&device.token().expose()).unwrap()
}

fn trusted(f: &Fixture, subject: &str, token: &DeviceToken) -> bool {
    match block_on(
        f.verifier
            .check_device(&Subject::new(subject).unwrap(), token),
    ) {
        Ok(()) => true,
        Err(DeviceError::NotRemembered) => false,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn a_remembered_device_is_trusted_until_it_expires() {
    let f = fixture();
    let token = verified_device(&f, "u1");
    assert!(trusted(&f, "u1", &token));
    f.clock
        .advance(Duration::days(30) - Duration::milliseconds(1));
    assert!(trusted(&f, "u1", &token));
    f.clock.advance(Duration::milliseconds(1));
    assert!(!trusted(&f, "u1", &token));
}

#[test]
fn tokens_are_bound_to_their_subject_and_secret() {
    let f = fixture();
    let token = verified_device(&f, "u1");
    assert!(!trusted(&f, "u2", &token));
    // Flip one bit of the secret part: same record, wrong secret.
    let mut text = token.expose().into_bytes();
    let last = text.len() - 2;
    text[last] = if text[last] == b'A' { b'B' } else { b'A' };
    let forged = DeviceToken::parse(std::str::from_utf8(&text).unwrap()).unwrap();
    assert!(!trusted(&f, "u1", &forged));
    assert!(trusted(&f, "u1", &token));
    assert_eq!(format!("{token:?}"), "DeviceToken(<redacted>)");
}

#[test]
fn forget_one_and_forget_all() {
    let f = fixture();
    let laptop = verified_device(&f, "u1");
    let phone = verified_device(&f, "u1");
    let other = verified_device(&f, "u2");
    block_on(
        f.verifier
            .forget_device(&Subject::new("u1").unwrap(), &laptop),
    )
    .unwrap();
    assert!(!trusted(&f, "u1", &laptop));
    assert!(trusted(&f, "u1", &phone));
    block_on(f.verifier.forget_all_devices(&Subject::new("u1").unwrap())).unwrap();
    assert!(!trusted(&f, "u1", &phone));
    assert!(trusted(&f, "u2", &other));
    // A device verified after the revocation is trusted, even once the
    // revocation's own record would have expired.
    let fresh = verified_device(&f, "u1");
    f.clock.advance(Duration::days(29));
    assert!(trusted(&f, "u1", &fresh));
    assert!(!trusted(&f, "u1", &phone));
}

#[test]
fn no_token_is_stored() {
    let f = fixture();
    let token = verified_device(&f, "u1");
    let raw = b64decode(&token.expose());
    assert_eq!(raw.len(), 48);
    let secret = &raw[24..];
    for w in f.store.writes() {
        assert!(
            !w.windows(secret.len()).any(|x| x == secret),
            "a token secret was stored"
        );
        assert!(!w.windows(8).any(|x| x == &secret[..8]));
    }
    assert!(DeviceToken::parse("").is_err());
    assert!(DeviceToken::parse(&"A".repeat(63)).is_err());
}

#[test]
fn a_revocation_outlives_the_tokens_it_revoked_even_after_a_shorter_lifetime() {
    use std::sync::Arc;
    use vericode::{KeyId, ManualClock, Policy, RecordingDelivery, Verifier};
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let make = |lifetime: Duration| {
        Verifier::builder()
            .store(store.clone())
            .delivery(RecordingDelivery::new())
            .clock(clock.clone())
            .policy(relaxed().device_lifetime(lifetime))
            .signing_key(KeyId::new(1), key(1))
            .lookup_key(key(200))
            .app_name("Acme")
            .build()
            .unwrap()
    };
    let long = make(Duration::days(30));
    let t = block_on(long.issue(&login("u1"))).unwrap();
    let code = long.delivery().last_code().unwrap();
    let verified = block_on(long.verify(t.purpose(), t.challenge_id(), &code)).unwrap();
    let token = block_on(long.remember_device(&verified))
        .unwrap()
        .token()
        .clone();
    let short = make(Duration::days(1));
    block_on(short.forget_all_devices(&Subject::new("u1").unwrap())).unwrap();
    clock.advance(Duration::days(2));
    let _ = Policy::default();
    assert!(block_on(long.check_device(&Subject::new("u1").unwrap(), &token)).is_err());
}

#[test]
fn only_a_fresh_verification_of_the_accounts_own_address_remembers_a_device() {
    // Found by an audit: any `Verified`, of any purpose and any age, minted
    // tokens, as many as asked; one kept from before a `forget_all_devices`
    // minted working tokens after it.
    let f = fixture();
    let verify = |purpose: vericode::Purpose, subject: &str| {
        let req = vericode::IssueRequest::new(
            purpose,
            Subject::new(subject).unwrap(),
            vericode::Destination::email("ana@example.com").unwrap(),
        );
        let t = block_on(f.verifier.issue(&req)).unwrap();
        let code = f.verifier.delivery().last_code().unwrap();
        f.check(&t, &code).unwrap()
    };
    // A code that proved a new address does not vouch for the account.
    let change = verify(vericode::Purpose::CredentialChange, "u1");
    assert!(matches!(
        block_on(f.verifier.remember_device(&change)),
        Err(DeviceError::NotEligible)
    ));
    // A login verification remembers within five minutes, not after.
    let login = verify(vericode::Purpose::LoginNewDevice, "u2");
    f.clock.advance(vericode::REMEMBER_WITHIN);
    assert!(block_on(f.verifier.remember_device(&login)).is_ok());
    f.clock.advance(Duration::seconds(1));
    let kept = block_on(f.verifier.remember_device(&login));
    assert!(matches!(kept, Err(DeviceError::NotEligible)), "{kept:?}");
    // So a verification kept past a revocation mints nothing.
    block_on(f.verifier.forget_all_devices(&Subject::new("u2").unwrap())).unwrap();
    assert!(matches!(
        block_on(f.verifier.remember_device(&login)),
        Err(DeviceError::NotEligible)
    ));
}
