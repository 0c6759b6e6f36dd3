//! The lookup key: records are named by keyed hashes, so store keys and
//! challenge ids do not tell a subject or an address to someone who can guess
//! it; a shared store without a key is refused; verifiers sharing a
//! `MemoryStore` share its key.

mod common;

// The library's base64url (crate-private), to read a challenge id's bytes.
#[path = "../src/base64url.rs"]
#[allow(dead_code, unused_imports)]
mod base64url;

use std::sync::Arc;

use common::*;
use pollster::block_on;
use sha2::{Digest, Sha256};
use vericode::*;

/// A verifier on `store` (a `SpyStore`: like a store shared between
/// processes, it supplies no lookup key).
fn on_shared(
    store: Arc<SpyStore>,
    lookup: Option<SecretKey>,
    policy: Policy,
) -> Result<Verifier<Arc<SpyStore>, RecordingDelivery, ManualClock>, ConfigError> {
    let mut builder = Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .clock(ManualClock::new(start()))
        .policy(policy)
        .signing_key(KeyId::new(1), key(1))
        .app_name("Acme");
    if let Some(lookup) = lookup {
        builder = builder.lookup_key(lookup);
    }
    builder.build()
}

/// The unkeyed hash that named records before the lookup key: a
/// domain-separated SHA-256, cut to 16 bytes.
fn plain(domain: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(domain);
    for p in parts {
        h.update(p);
    }
    h.finalize()[..16].try_into().unwrap()
}

/// What the verifier could hash in the clear for this flow: the subject, the
/// destination, its prefix (for the prefix limit and the conversion guard),
/// the client (for both client limits) and the global limit's value.
fn plain_hashes() -> Vec<[u8; 16]> {
    let limit = |id: u8, value: &[u8]| plain(b"vericode/v1/limit", &[&[id], value]);
    vec![
        plain(b"vericode/v1/subject", &[b"ana"]),
        limit(1, b"sms:+14155550123"),
        limit(2, b"+1"),
        limit(4, b"ip:203.0.113.7"),
        limit(5, b"global"),
        limit(6, b"ip:203.0.113.7"),
        limit(7, b"+1"),
        // The prefix as the verifier spells it, and the guard's number range.
        limit(2, b"tel:+1"),
        limit(7, b"tel:+1"),
        limit(7, b"tel:+1:415"),
    ]
}

/// Every limit on, roomy enough for the flow.
fn every_limit() -> Policy {
    let roomy = RateLimit::new(1000, time::Duration::hours(1)).unwrap();
    Policy::default()
        .limit(Limit::DestinationPrefix, roomy)
        .limit(Limit::Global, roomy)
}

/// The bytes of a text in base64url.
fn raw<const N: usize>(text: &str) -> [u8; N] {
    let mut raw = [0u8; N];
    base64url::decode(text, &mut raw).unwrap();
    raw
}

/// Issues and verifies one code for subject "ana" to +1 415 555 0123 from a
/// client, with every limit on, and remembers the device; answers the groups
/// of the store keys used, the id's subject group (an id is 16 bytes of
/// subject group, 8 of purpose, 16 of nonce, 16 of hint) and the device
/// token's (16 bytes of subject group, 8 of id, 24 of secret).
fn groups_of_one_flow(lookup: SecretKey) -> (Vec<[u8; 16]>, [u8; 16], [u8; 16]) {
    let store = Arc::new(SpyStore::default());
    let v = on_shared(store.clone(), Some(lookup), every_limit()).unwrap();
    let client = ClientKey::new("ip:203.0.113.7").unwrap();
    let t = block_on(v.issue(&login("ana").client(client.clone()))).unwrap();
    let code = v.delivery().last_code().unwrap();
    let attempt = Attempt::new(t.purpose(), t.challenge_id(), &code).client(&client);
    let verified = block_on(v.verify_attempt(attempt)).unwrap();
    let device = block_on(v.remember_device(&verified)).unwrap();
    let id: [u8; 56] = raw(&t.challenge_id().to_string());
    let token: [u8; 48] = raw(&device.token().expose());
    (
        store.groups(),
        id[..16].try_into().unwrap(),
        token[..16].try_into().unwrap(),
    )
}

#[test]
fn a_shared_store_without_a_lookup_key_is_refused_at_build() {
    let store = Arc::new(SpyStore::default());
    let err = on_shared(store.clone(), None, relaxed()).unwrap_err();
    assert_eq!(err, ConfigError::MissingLookupKey);
    assert!(err.to_string().contains("lookup_key"));
    assert!(on_shared(store, Some(key(200)), relaxed()).is_ok());
    // A shared store is not asked for one: a key it made up would differ from
    // process to process.
    let offering = Arc::new(SpyStore::new(Spy {
        offers: Some(key(9)),
        ..Spy::default()
    }));
    assert_eq!(
        on_shared(offering, None, relaxed()).unwrap_err(),
        ConfigError::MissingLookupKey
    );
}

#[test]
fn store_keys_ids_and_device_tokens_carry_keyed_hashes_never_plain_ones() {
    let (groups, id_group, token_group) = groups_of_one_flow(key(200));
    // The flow touched the subject's records (challenge, failures, devices,
    // the per-subject limit), the destination's, client's, global and
    // verifying client's limits, the prefix's limit and the number range's
    // conversion counts.
    let distinct: std::collections::HashSet<_> = groups.iter().collect();
    assert_eq!(distinct.len(), 7);
    assert!(
        groups.contains(&id_group),
        "the id names the subject's group"
    );
    assert_eq!(token_group, id_group, "the token names the subject's group");
    for plain in plain_hashes() {
        assert!(!groups.contains(&plain), "a plain hash named a record");
        assert_ne!(id_group, plain, "the id carries a plain hash");
    }

    // Under another lookup key every group differs: they depend on the key.
    let (other, other_id_group, _) = groups_of_one_flow(key(201));
    assert_ne!(id_group, other_id_group);
    for g in &distinct {
        assert!(!other.contains(g), "a group did not depend on the key");
    }
    // And under the same key they are the same (records are found again).
    let (again, again_id_group, _) = groups_of_one_flow(key(200));
    assert_eq!(again_id_group, id_group);
    assert_eq!(
        again.iter().collect::<std::collections::HashSet<_>>(),
        distinct
    );
}

#[test]
fn verifiers_sharing_a_memory_store_find_each_others_records() {
    // Neither is given a lookup key: both take the store's.
    let store = Arc::new(MemoryStore::new());
    let build = |signing: u32, older: Option<u32>| {
        let mut b = Verifier::builder()
            .store(store.clone())
            .delivery(RecordingDelivery::new())
            .clock(ManualClock::new(start()))
            .policy(relaxed())
            .signing_key(KeyId::new(signing), key(signing as u8))
            .app_name("Acme");
        if let Some(k) = older {
            b = b.verification_key(KeyId::new(k), key(k as u8));
        }
        b.build().unwrap()
    };
    let (a, b) = (build(1, None), build(1, None));
    let t = block_on(a.issue(&login("ana"))).unwrap();
    let code = a.delivery().last_code().unwrap();
    // A wrong guess through B counts against the challenge A issued, and the
    // next through A sees it.
    let left = |r: Result<Verified, VerifyError>| match r {
        Err(VerifyError::WrongCode { attempts_left }) => attempts_left,
        other => panic!("expected a wrong code, got {other:?}"),
    };
    let after_b = left(block_on(b.verify(
        t.purpose(),
        t.challenge_id(),
        &wrong(&code),
    )));
    let after_a = left(block_on(a.verify(
        t.purpose(),
        t.challenge_id(),
        &wrong(&code),
    )));
    assert_eq!(after_a + 1, after_b);
    // A verifier with a new signing key on the same store still finds it:
    // the store's lookup key does not change with the signing keys.
    let rotated = build(2, Some(1));
    block_on(rotated.verify(t.purpose(), t.challenge_id(), &code)).unwrap();

    // Both name the subject alike: an id from B for another purpose carries
    // the same group. A verifier on another MemoryStore takes that store's
    // key, made at random: the same subject gets another group there.
    let step_up = IssueRequest::new(
        Purpose::StepUp,
        Subject::new("ana").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    );
    let from_b = block_on(b.issue(&step_up)).unwrap();
    let elsewhere = Verifier::builder()
        .store(MemoryStore::new())
        .delivery(RecordingDelivery::new())
        .clock(ManualClock::new(start()))
        .policy(relaxed())
        .signing_key(KeyId::new(1), key(1))
        .app_name("Acme")
        .build()
        .unwrap();
    let from_elsewhere = block_on(elsewhere.issue(&step_up)).unwrap();
    let group = |t: &Ticket| -> [u8; 16] {
        raw::<56>(&t.challenge_id().to_string())[..16]
            .try_into()
            .unwrap()
    };
    assert_eq!(group(&from_b), group(&t));
    assert_ne!(group(&from_elsewhere), group(&t));
}

/// A server on `store` with lookup key `key(lookup)` and `clock`.
fn server_on<S: CodeStore>(
    store: S,
    lookup: u8,
    clock: &ManualClock,
) -> Verifier<S, RecordingDelivery, ManualClock> {
    Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .clock(clock.clone())
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(lookup))
        .app_name("Acme")
        .build()
        .unwrap()
}

#[test]
fn servers_on_one_store_must_hold_the_same_lookup_key() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let server = |lookup: u8| server_on(store.clone(), lookup, &clock);
    let (a, b, stray) = (server(200), server(200), server(201));
    block_on(a.check_lookup_key()).unwrap();
    // What is kept tells nothing of the key: a fingerprint and a time.
    let kept = store.writes().last().unwrap().clone();
    assert_eq!(kept.len(), 2 + 16 + 8);
    assert!(!kept.windows(16).any(|w| w == &[200u8; 16][..]));
    // A check that agrees writes nothing until the fingerprint is a day old,
    // so servers starting together do not contend for it.
    let writes = store.writes().len();
    block_on(b.check_lookup_key()).unwrap();
    clock.advance(time::Duration::hours(23));
    block_on(a.check_lookup_key()).unwrap();
    assert_eq!(store.writes().len(), writes);
    clock.advance(time::Duration::hours(2));
    block_on(b.check_lookup_key()).unwrap();
    assert_eq!(store.writes().len(), writes + 1, "renewed");
    // A server given another key is told, and changes nothing.
    assert!(matches!(
        block_on(stray.check_lookup_key()),
        Err(LookupKeyError::Mismatch)
    ));
    assert_eq!(store.writes().len(), writes + 1);
}

#[test]
fn a_lost_fingerprint_is_written_back_by_a_server_that_checks_again() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let a = server_on(store.clone(), 200, &clock);
    block_on(a.check_lookup_key()).unwrap();
    // The store loses it (a Redis restarted without persistence).
    let at = StoreKey::new(KeyKind::LookupKey, [0; 16], [0; 8]);
    let now = Timestamp::from_datetime(start());
    let kept = block_on(store.inner.get_many(&[at], now)).unwrap()[0]
        .clone()
        .unwrap();
    let lost = Write::Delete {
        key: at,
        expected: kept.version,
    };
    assert_eq!(
        block_on(store.inner.commit(&[lost], now)).unwrap(),
        Commit::Applied
    );
    // A running server's periodic check puts it back; a stray is told.
    block_on(a.check_lookup_key()).unwrap();
    let stray = server_on(store.clone(), 201, &clock);
    assert!(matches!(
        block_on(stray.check_lookup_key()),
        Err(LookupKeyError::Mismatch)
    ));
}

#[test]
fn a_lookup_key_replaced_on_purpose_is_handed_over_once() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let old = server_on(store.clone(), 200, &clock);
    block_on(old.check_lookup_key()).unwrap();
    // Before the rollout: one call on the new key, naming the old one.
    let new = server_on(store.clone(), 201, &clock);
    assert!(matches!(
        block_on(new.check_lookup_key()),
        Err(LookupKeyError::Mismatch)
    ));
    block_on(new.replace_lookup_key_check(&key(200))).unwrap();
    block_on(new.replace_lookup_key_check(&key(200))).unwrap();
    block_on(server_on(store.clone(), 201, &clock).check_lookup_key()).unwrap();
    // An old server that restarts afterwards is told.
    assert!(matches!(
        block_on(old.check_lookup_key()),
        Err(LookupKeyError::Mismatch)
    ));
    // Naming a key that is not the store's changes nothing.
    let third = server_on(store.clone(), 202, &clock);
    let writes = store.writes().len();
    assert!(matches!(
        block_on(third.replace_lookup_key_check(&key(200))),
        Err(LookupKeyError::Mismatch)
    ));
    assert_eq!(store.writes().len(), writes);
    block_on(new.check_lookup_key()).unwrap();
}

#[test]
fn servers_with_the_same_key_do_not_contend_when_a_peer_renews_in_between() {
    /// A peer with the same key writes the same fingerprint just before each
    /// of this server's writes of it.
    struct PeerRenews;
    impl Around for PeerRenews {
        fn write(&self, store: &MemoryStore, writes: &[Write], now: Timestamp) -> WriteAnswer {
            if let [
                Write::Put {
                    key,
                    record,
                    expires_at,
                    ..
                },
            ] = writes
                && key.kind() == KeyKind::LookupKey
            {
                let current = block_on(store.get_many(&[*key], now)).unwrap()[0].clone();
                let peer = Write::Put {
                    key: *key,
                    record: record.clone(),
                    expected: current.map(|v| v.version),
                    version: vericode::Version::fresh(),
                    expires_at: *expires_at,
                };
                assert_eq!(
                    block_on(store.commit(&[peer], now)).unwrap(),
                    Commit::Applied
                );
            }
            None
        }
    }
    let clock = ManualClock::new(start());
    let v = server_on(Arc::new(Wrapped::new(PeerRenews)), 200, &clock);
    block_on(v.check_lookup_key()).unwrap();
    clock.advance(time::Duration::days(2));
    block_on(v.check_lookup_key()).unwrap();
}

#[test]
fn two_servers_with_different_keys_starting_together_are_told_apart() {
    use std::sync::atomic::Ordering;
    // Both servers read an empty store before either writes.
    let store = Arc::new(Wrapped::new(ReadsMeet::new(KeyKind::LookupKey, 2)));
    let clock = ManualClock::new(start());
    let servers = [200, 201].map(|lookup| server_on(store.clone(), lookup, &clock));
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = servers
            .iter()
            .map(|v| s.spawn(move || block_on(v.check_lookup_key())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(store.waiting.load(Ordering::SeqCst), 0, "both read first");
    let ok = answers.iter().filter(|r| r.is_ok()).count();
    let told = answers
        .iter()
        .filter(|r| matches!(r, Err(LookupKeyError::Mismatch)))
        .count();
    assert_eq!((ok, told), (1, 1), "{answers:?}");
}

#[test]
fn a_corrupt_fingerprint_fails_the_check_closed() {
    let store = Arc::new(SpyStore::default());
    let v = on_shared(store.clone(), Some(key(200)), relaxed()).unwrap();
    // A record of another kind where the fingerprint belongs.
    let epoch = Record::decode(&[3, 6, 0, 0, 0, 1]).unwrap();
    let put = Write::Put {
        key: StoreKey::new(KeyKind::LookupKey, [0; 16], [0; 8]),
        record: epoch,
        expected: None,
        version: vericode::Version::fresh(),
        expires_at: Timestamp::from_datetime(start()).saturating_add(time::Duration::days(1)),
    };
    let written = block_on(
        store
            .inner
            .commit(&[put], Timestamp::from_datetime(start())),
    );
    assert_eq!(written.unwrap(), Commit::Applied);
    assert!(matches!(
        block_on(v.check_lookup_key()),
        Err(LookupKeyError::Store(StoreError::Corrupt(_)))
    ));
}
