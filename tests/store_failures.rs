//! Stores that fail or lie: every failure is typed, none is a success, and
//! the store is left as it was.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use vericode::{
    CodeStore, Commit, DecodeError, IssueError, ManualClock, Record, RecordingDelivery, StoreError,
    StoreKey, Timestamp, Verifier, VerifyError, Version, Versioned, Write,
};

/// A store that keeps records as bytes, the way a remote store does, so tests
/// can corrupt them.
#[derive(Default)]
struct BytesStore {
    map: Mutex<HashMap<StoreKey, (u64, Vec<u8>)>>,
}

#[derive(Debug, thiserror::Error)]
enum BytesError {
    #[error("corrupt record")]
    Corrupt(#[from] DecodeError),
}

impl CodeStore for BytesStore {
    type Error = BytesError;

    fn get_many(
        &self,
        keys: &[StoreKey],
        _now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, BytesError>> + Send {
        let map = self.map.lock().unwrap();
        let r = keys
            .iter()
            .map(|k| match map.get(k) {
                None => Ok(None),
                Some((v, b)) => Ok(Some(Versioned {
                    version: Version(*v),
                    record: Record::decode(b)?,
                })),
            })
            .collect();
        std::future::ready(r)
    }

    fn commit(
        &self,
        writes: &[Write],
        _now: Timestamp,
    ) -> impl Future<Output = Result<Commit, BytesError>> + Send {
        let mut map = self.map.lock().unwrap();
        let ok = writes
            .iter()
            .all(|w| map.get(w.key()).map(|(v, _)| Version(*v)) == w.expected());
        if ok {
            for w in writes {
                match w {
                    Write::Put {
                        key,
                        record,
                        version,
                        ..
                    } => {
                        map.insert(*key, (version.0, record.encode()));
                    }
                    Write::Delete { key, .. } => {
                        map.remove(key);
                    }
                    _ => unreachable!(),
                }
            }
        }
        std::future::ready(Ok(if ok {
            Commit::Applied
        } else {
            Commit::Conflict
        }))
    }
}

fn verifier(store: Arc<BytesStore>) -> Verifier<Arc<BytesStore>, RecordingDelivery, ManualClock> {
    verifier_on(store)
}

#[test]
fn a_corrupted_record_is_a_typed_error_and_is_left_alone() {
    let store = Arc::new(BytesStore::default());
    let v = verifier(store.clone());
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    let snapshot = store.map.lock().unwrap().clone();
    for (cut, flip) in [
        (Some(10), None),
        (None, Some(0)),
        (None, Some(1)),
        // The purpose's length byte.
        (None, Some(45)),
    ] {
        {
            let mut map = store.map.lock().unwrap();
            *map = snapshot.clone();
            for (_, (_, bytes)) in map.iter_mut() {
                if let Some(n) = cut {
                    bytes.truncate(n);
                }
                if let Some(i) = flip {
                    bytes[i] ^= 0xff;
                }
            }
        }
        let before = store.map.lock().unwrap().clone();
        let r = block_on(v.verify(t.purpose(), t.challenge_id(), &code));
        assert!(
            matches!(r, Err(VerifyError::Store(StoreError::Backend(_)))),
            "{r:?}"
        );
        let r = block_on(v.resend(t.challenge_id()));
        assert!(matches!(r, Err(IssueError::Store(_))), "{r:?}");
        assert_eq!(
            *store.map.lock().unwrap(),
            before,
            "a failed operation changed the store"
        );
    }
}

#[test]
fn a_record_of_the_wrong_kind_is_refused() {
    let store = Arc::new(BytesStore::default());
    let v = verifier(store.clone());
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    let _ = block_on(v.verify(t.purpose(), t.challenge_id(), &wrong(&code)));
    // Swap the challenge and subject records.
    {
        let mut map = store.map.lock().unwrap();
        let mut entries: Vec<_> = map.drain().collect();
        assert_eq!(entries.len(), 2);
        let (k0, v0) = entries.remove(0);
        let (k1, v1) = entries.remove(0);
        map.insert(k0, v1);
        map.insert(k1, v0);
    }
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &code));
    assert!(
        matches!(
            r,
            Err(VerifyError::Store(StoreError::Corrupt(
                DecodeError::WrongKind
            )))
        ),
        "{r:?}"
    );
}

#[test]
fn a_store_that_always_conflicts_fails_closed() {
    // Let the issue's writes through, then conflict forever.
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on = armed.clone();
    let v = verifier_on(hooked(move |_: &vericode::MemoryStore, _: &[Write]| {
        on.load(std::sync::atomic::Ordering::SeqCst)
            .then_some(Commit::Conflict)
    }));
    let t = block_on(v.issue(&login("u1"))).unwrap();
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let code = v.delivery().last_code().unwrap();
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &code));
    assert!(
        matches!(r, Err(VerifyError::Store(StoreError::Contention(_)))),
        "{r:?}"
    );
    let r = block_on(v.cancel(t.challenge_id()));
    assert!(
        matches!(
            r,
            Err(vericode::CancelError::Store(StoreError::Contention(_)))
        ),
        "{r:?}"
    );
}

/// A store that refuses every new record (full disk, memory limit) must not
/// become an oracle: right and wrong codes both get a store error, and no
/// guess goes uncounted while the right code would still succeed.
#[test]
fn a_store_that_refuses_new_records_refuses_right_and_wrong_alike() {
    let v = verifier_on(vericode::MemoryStore::with_capacity(1));
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    for _ in 0..20 {
        let r = block_on(v.verify(t.purpose(), t.challenge_id(), &wrong(&code)));
        assert!(matches!(r, Err(VerifyError::Store(_))), "{r:?}");
    }
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &code));
    assert!(matches!(r, Err(VerifyError::Store(_))), "{r:?}");
}

/// A verifier with a per-client verify limit of `per_hour`, whose store
/// answers `Conflict`, without writing, to the next batch of writes that
/// holds a key of `kind` once the flag is set; and the flag.
fn conflicting_once_on(
    kind: vericode::KeyKind,
    per_hour: u32,
) -> (
    Verifier<impl vericode::CodeStore, vericode::RecordingDelivery, vericode::ManualClock>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let armed = Arc::new(AtomicBool::new(false));
    let flag = armed.clone();
    let v = verifier_with(
        hooked(move |_: &vericode::MemoryStore, writes: &[Write]| {
            let hit = writes.iter().any(|w| w.key().kind() == kind);
            (hit && flag.swap(false, Ordering::SeqCst)).then_some(Commit::Conflict)
        }),
        relaxed().limit(
            vericode::Limit::VerifyClient,
            vericode::RateLimit::new(per_hour, time::Duration::hours(1)).unwrap(),
        ),
    );
    (v, armed)
}

/// The client's attempt charge loses a race while the challenge write is
/// applied: the recorded outcome stands (a right code is a success, a wrong
/// one counted once), never an "unknown" for a consumed code.
#[test]
fn a_lost_client_charge_does_not_undo_a_recorded_outcome() {
    use std::sync::atomic::Ordering;
    let (v, conflict_next_rate_write) = conflicting_once_on(vericode::KeyKind::Rate, 50);
    let ip = vericode::ClientKey::new("ip:1").unwrap();
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    conflict_next_rate_write.store(true, Ordering::SeqCst);
    let r = block_on(v.verify_attempt(
        vericode::Attempt::new(t.purpose(), t.challenge_id(), &wrong(&code)).client(&ip),
    ));
    assert!(
        matches!(r, Err(VerifyError::WrongCode { attempts_left: 4 })),
        "{r:?}"
    );
    conflict_next_rate_write.store(true, Ordering::SeqCst);
    let r = block_on(
        v.verify_attempt(vericode::Attempt::new(t.purpose(), t.challenge_id(), &code).client(&ip)),
    );
    assert!(r.is_ok(), "{r:?}");
}

/// The converse: when the guess's outcome loses a race but the client's
/// charge went through, the retry does not charge the client again (found
/// by a mutation test: with a limit of 1, the second charge answered
/// `RateLimited` for a guess that was answered no other way).
#[test]
fn a_charge_that_went_through_is_not_made_again_when_the_outcome_retries() {
    use std::sync::atomic::Ordering;
    let (v, conflict_next_outcome) = conflicting_once_on(vericode::KeyKind::Challenge, 1);
    let ip = vericode::ClientKey::new("ip:1").unwrap();
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    conflict_next_outcome.store(true, Ordering::SeqCst);
    let r = block_on(v.verify_attempt(
        vericode::Attempt::new(t.purpose(), t.challenge_id(), &wrong(&code)).client(&ip),
    ));
    assert!(
        matches!(r, Err(VerifyError::WrongCode { attempts_left: 4 })),
        "{r:?}"
    );
    assert!(
        !conflict_next_outcome.load(Ordering::SeqCst),
        "the conflict was met"
    );
}

/// A challenge of another purpose under a purpose's key (two custom
/// purposes whose 62-bit key bytes collide, or a store that mixed records
/// up) is neither resent nor replaced by an issue: it fails closed. The
/// record's purpose is compared, as its subject is.
#[test]
fn an_issue_refuses_another_purposes_challenge_under_its_key() {
    let store = Arc::new(BytesStore::default());
    let v = verifier_with(
        store.clone(),
        relaxed().resend_cooldown(time::Duration::ZERO, time::Duration::ZERO),
    );
    let request = |purpose: &str| {
        vericode::IssueRequest::new(
            vericode::Purpose::custom(purpose).unwrap(),
            vericode::Subject::new("u1").unwrap(),
            vericode::Destination::sms("+14155550123").unwrap(),
        )
    };
    let challenge_keys = || -> Vec<StoreKey> {
        let map = store.map.lock().unwrap();
        map.keys()
            .filter(|k| k.kind() == vericode::KeyKind::Challenge)
            .copied()
            .collect()
    };
    block_on(v.issue(&request("approve_a"))).unwrap();
    let [a] = challenge_keys()[..] else { panic!() };
    block_on(v.issue(&request("approve_b"))).unwrap();
    let [b] = challenge_keys()
        .into_iter()
        .filter(|k| *k != a)
        .collect::<Vec<_>>()[..]
    else {
        panic!()
    };
    // b's key now holds a's challenge.
    {
        let mut map = store.map.lock().unwrap();
        let bytes = map[&a].1.clone();
        map.get_mut(&b).unwrap().1 = bytes;
    }
    let sent = v.delivery().sent().len();
    let r = block_on(v.issue(&request("approve_b")));
    assert!(
        matches!(
            r,
            Err(IssueError::Store(StoreError::Corrupt(
                DecodeError::WrongKind
            )))
        ),
        "{r:?}"
    );
    assert_eq!(v.delivery().sent().len(), sent, "nothing sent");
}

type CommitHook = Box<dyn Fn(&vericode::MemoryStore, &[Write]) -> Option<Commit> + Send + Sync>;
type HookedVerifier = Verifier<HookedStore<CommitHook>, RecordingDelivery, ManualClock>;

/// Counts commits, and just before the fourth (a resend's code, after the
/// issue's claim and code and the resend's claim) applies the write
/// `meanwhile` makes of the challenge as it is.
fn before_fourth_commit(
    meanwhile: impl Fn(StoreKey, Versioned) -> Write + Send + Sync + 'static,
) -> (Arc<std::sync::atomic::AtomicUsize>, HookedVerifier) {
    let commits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = commits.clone();
    let hook: CommitHook = Box::new(move |store, writes| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 3 {
            let key = *writes[0].key();
            let current = block_on(store.get_many(&[key], at_start())).unwrap()[0]
                .clone()
                .unwrap();
            let write = meanwhile(key, current);
            assert_eq!(
                block_on(store.commit(&[write], at_start())).unwrap(),
                Commit::Applied
            );
        }
        None
    });
    let v = verifier_with(
        hooked(hook),
        relaxed().resend_cooldown(time::Duration::ZERO, time::Duration::ZERO),
    );
    (commits, v)
}

fn at_start() -> Timestamp {
    Timestamp::from_datetime(start())
}

/// A resend's code write that loses a race (a guess counted meanwhile: the
/// challenge's version moved) is written again on the challenge as it now
/// is: the code that went out works.
#[test]
fn a_resend_whose_code_write_loses_a_race_still_stores_its_code() {
    let (commits, v) = before_fourth_commit(|key, current| {
        let later = at_start().saturating_add(time::Duration::days(1));
        Write::put(key, current.record, Some(current.version), later)
    });
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let r = block_on(v.resend(t.challenge_id()));
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(commits.load(std::sync::atomic::Ordering::SeqCst), 5);
    let resent = v.delivery().last_code().unwrap();
    let ok = block_on(v.verify(t.purpose(), t.challenge_id(), &resent));
    assert!(ok.is_ok(), "{ok:?}");
}

/// A challenge used up (or cancelled) while a resend's code was out is not
/// brought back by that code: the resend fails closed.
#[test]
fn a_resend_whose_challenge_is_used_meanwhile_fails_closed() {
    let (_, v) = before_fourth_commit(|key, current| Write::Delete {
        key,
        expected: current.version,
    });
    let t = block_on(v.issue(&login("u1"))).unwrap();
    let r = block_on(v.resend(t.challenge_id()));
    assert!(
        matches!(r, Err(IssueError::Store(StoreError::Contention(_)))),
        "{r:?}"
    );
    let resent = v.delivery().last_code().unwrap();
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &resent));
    assert!(matches!(r, Err(VerifyError::UnknownChallenge)), "{r:?}");
}
