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
) -> Result<Verifier<Arc<SpyStore>, RecordingDelivery, ManualClock>, ConfigError> {
    let mut builder = Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .clock(ManualClock::new(start()))
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
/// destination, its prefix (for the prefix limit and the conversion guard)
/// and the client.
fn plain_hashes() -> Vec<[u8; 16]> {
    let limit = |id: u8, value: &[u8]| plain(b"vericode/v1/limit", &[&[id], value]);
    vec![
        plain(b"vericode/v1/subject", &[b"ana"]),
        limit(1, b"sms:+14155550123"),
        limit(2, b"+1"),
        limit(4, b"ip:203.0.113.7"),
        limit(7, b"+1"),
    ]
}

/// Issues and verifies one code for subject "ana" to +1 415 555 0123, with
/// every default limit and a client key; answers the groups of the store keys
/// used and the id's subject group.
fn groups_of_one_flow(lookup: SecretKey) -> (Vec<[u8; 16]>, [u8; 16]) {
    let store = Arc::new(SpyStore::default());
    let v = on_shared(store.clone(), Some(lookup)).unwrap();
    let client = ClientKey::new("ip:203.0.113.7").unwrap();
    let t = block_on(v.issue(&login("ana").client(client))).unwrap();
    let code = v.delivery().last_code().unwrap();
    block_on(v.verify(t.challenge_id(), &code)).unwrap();
    // 16 bytes of subject group, 8 of purpose, 16 of nonce, 16 of hint.
    let mut raw = [0u8; 56];
    base64url::decode(&t.challenge_id().to_string(), &mut raw).unwrap();
    (store.groups(), raw[..16].try_into().unwrap())
}

#[test]
fn a_shared_store_without_a_lookup_key_is_refused_at_build() {
    let store = Arc::new(SpyStore::default());
    let err = on_shared(store.clone(), None).unwrap_err();
    assert_eq!(err, ConfigError::MissingLookupKey);
    assert!(err.to_string().contains("lookup_key"));
    assert!(on_shared(store, Some(key(200))).is_ok());
}

#[test]
fn store_keys_and_ids_carry_keyed_hashes_never_plain_ones() {
    let (groups, id_group) = groups_of_one_flow(key(200));
    // The flow touched the subject's records, the destination's and the
    // client's limits and the conversion guard's counts (the default policy).
    let distinct: std::collections::HashSet<_> = groups.iter().collect();
    assert_eq!(distinct.len(), 4);
    assert!(
        groups.contains(&id_group),
        "the id names the subject's group"
    );
    for plain in plain_hashes() {
        assert!(!groups.contains(&plain), "a plain hash named a record");
        assert_ne!(id_group, plain, "the id carries a plain hash");
    }

    // Under another lookup key every group differs: they depend on the key.
    let (other, other_id_group) = groups_of_one_flow(key(201));
    assert_ne!(id_group, other_id_group);
    for g in &distinct {
        assert!(!other.contains(g), "a group did not depend on the key");
    }
    // And under the same key they are the same (records are found again).
    let (again, again_id_group) = groups_of_one_flow(key(200));
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
    let after_b = left(block_on(b.verify(t.challenge_id(), &wrong(&code))));
    let after_a = left(block_on(a.verify(t.challenge_id(), &wrong(&code))));
    assert_eq!(after_a + 1, after_b);
    // A verifier with a new signing key on the same store still finds it:
    // the store's lookup key does not change with the signing keys.
    let rotated = build(2, Some(1));
    block_on(rotated.verify(t.challenge_id(), &code)).unwrap();

    // A verifier on another MemoryStore has another key, and another
    // store: it finds nothing of the first.
    let elsewhere = Verifier::builder()
        .store(MemoryStore::new())
        .delivery(RecordingDelivery::new())
        .clock(ManualClock::new(start()))
        .signing_key(KeyId::new(1), key(1))
        .app_name("Acme")
        .build()
        .unwrap();
    assert!(block_on(elsewhere.verify(t.challenge_id(), &code)).is_err());
}
