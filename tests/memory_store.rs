//! The in-memory store's own contract: conditional writes, all-or-none
//! commits, versions never reused, expiry, capacity.

mod common;

use std::sync::Arc;

use common::*;
use time::Duration;
use vericode::{
    CodeStore, Commit, IssueError, KeyId, KeyKind, ManualClock, MemoryStore, MemoryStoreError,
    Record, RecordingDelivery, StoreError, StoreKey, Timestamp, Verifier, Write,
};

/// Distinct keys in distinct groups, and a record (a subject's failure count,
/// in its byte form).
fn sample() -> (Vec<StoreKey>, Vec<Record>) {
    let keys = (0..8u8)
        .map(|i| StoreKey::new(KeyKind::Challenge, [i; 16], [i; 8]))
        .collect();
    // Format 3, kind 2: failures, last failure, no lock, none forgiven.
    let mut bytes = vec![3u8, 2, 0, 0, 0, 3];
    bytes.extend_from_slice(&5i64.to_be_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&0i64.to_be_bytes());
    bytes.extend_from_slice(&[0; 12]);
    (keys, vec![Record::decode(&bytes).unwrap()])
}

#[test]
fn conditional_writes_and_versions() {
    let (keys, records) = sample();
    for store in [MemoryStore::new(), MemoryStore::compact(1_000_000)] {
        let now = Timestamp::from_millis(0);
        let later = Timestamp::from_millis(1_000_000);
        let k = keys[0];
        let put = |expected| Write::Put {
            key: k,
            record: records[0].clone(),
            expected,
            version: vericode::Version::fresh(),
            expires_at: later,
        };
        assert_eq!(
            block_on(store.commit(&[put(None)], now)).unwrap(),
            Commit::Applied
        );
        // Create-only refuses an existing key.
        assert_eq!(
            block_on(store.commit(&[put(None)], now)).unwrap(),
            Commit::Conflict
        );
        let v1 = block_on(store.get_many(&[k], now)).unwrap()[0]
            .clone()
            .unwrap()
            .version;
        assert_eq!(
            block_on(store.commit(&[put(Some(v1))], now)).unwrap(),
            Commit::Applied
        );
        // A stale version is refused.
        assert_eq!(
            block_on(store.commit(&[put(Some(v1))], now)).unwrap(),
            Commit::Conflict
        );
        let v2 = block_on(store.get_many(&[k], now)).unwrap()[0]
            .clone()
            .unwrap()
            .version;
        assert_ne!(v1, v2);
        // Delete, recreate: the new version is neither of the old ones (no ABA).
        assert_eq!(
            block_on(store.commit(
                &[Write::Delete {
                    key: k,
                    expected: v2
                }],
                now
            ))
            .unwrap(),
            Commit::Applied
        );
        assert!(block_on(store.get_many(&[k], now)).unwrap()[0].is_none());
        assert_eq!(
            block_on(store.commit(&[put(None)], now)).unwrap(),
            Commit::Applied
        );
        let v3 = block_on(store.get_many(&[k], now)).unwrap()[0]
            .clone()
            .unwrap()
            .version;
        assert!(v3 != v1 && v3 != v2);
        assert_eq!(
            block_on(store.commit(&[put(Some(v2))], now)).unwrap(),
            Commit::Conflict
        );
    }
}

#[test]
fn commits_are_all_or_none() {
    let (keys, records) = sample();
    for store in [MemoryStore::new(), MemoryStore::compact(1_000_000)] {
        let now = Timestamp::from_millis(0);
        let exp = Timestamp::from_millis(1_000_000);
        let put = |k, expected| Write::Put {
            key: k,
            record: records[0].clone(),
            expected,
            version: vericode::Version::fresh(),
            expires_at: exp,
        };
        assert_eq!(
            block_on(store.commit(&[put(keys[0], None)], now)).unwrap(),
            Commit::Applied
        );
        // The second write's expectation fails, so the first must not happen either.
        let r = block_on(store.commit(&[put(keys[1], None), put(keys[0], None)], now)).unwrap();
        assert_eq!(r, Commit::Conflict);
        assert!(block_on(store.get_many(&[keys[1]], now)).unwrap()[0].is_none());
        assert_eq!(store.len(), 1);
    }
}

#[test]
fn expired_records_read_as_absent_and_are_purged() {
    let (keys, records) = sample();
    for store in [MemoryStore::new(), MemoryStore::compact(1_000_000)] {
        let exp = Timestamp::from_millis(1_000);
        for k in &keys[..3] {
            let w = Write::Put {
                key: *k,
                record: records[0].clone(),
                expected: None,
                version: vericode::Version::fresh(),
                expires_at: exp,
            };
            assert_eq!(
                block_on(store.commit(&[w], Timestamp::from_millis(0))).unwrap(),
                Commit::Applied
            );
        }
        assert!(
            block_on(store.get_many(&keys[..1], Timestamp::from_millis(999))).unwrap()[0].is_some()
        );
        assert!(block_on(store.get_many(&keys[..1], exp)).unwrap()[0].is_none());
        // An expired key counts as absent for create-only writes.
        let w = Write::Put {
            key: keys[1],
            record: records[0].clone(),
            expected: None,
            version: vericode::Version::fresh(),
            expires_at: Timestamp::from_millis(5_000),
        };
        assert_eq!(block_on(store.commit(&[w], exp)).unwrap(), Commit::Applied);
        assert_eq!(store.purge_expired(exp), 1);
        assert_eq!(store.len(), 1);
    }
}

#[test]
fn a_full_store_refuses_new_challenges_with_a_typed_error() {
    let clock = ManualClock::new(start());
    let v = Verifier::builder()
        .store(MemoryStore::with_capacity(2))
        .delivery(RecordingDelivery::new())
        .clock(clock.clone())
        .policy(relaxed())
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap();
    block_on(v.issue(&login("a"))).unwrap();
    block_on(v.issue(&login("b"))).unwrap();
    match block_on(v.issue(&login("c"))) {
        Err(IssueError::Store(StoreError::Backend(e))) => {
            let e = e.downcast_ref::<MemoryStoreError>().unwrap();
            assert_eq!(e, &MemoryStoreError::Full { capacity: 2 });
        }
        r => panic!("{r:?}"),
    }
    // Once the old challenges expire (plus the retention), there is room again.
    clock.advance(Duration::minutes(21));
    assert!(block_on(v.issue(&login("c"))).is_ok());
}

#[test]
fn many_threads_on_distinct_subjects() {
    let f = Arc::new(fixture());
    std::thread::scope(|s| {
        for th in 0..8 {
            let f = f.clone();
            s.spawn(move || {
                for i in 0..200 {
                    let t = block_on(f.verifier.issue(&login(&format!("t{th}-{i}")))).unwrap();
                    let _ = t;
                }
            });
        }
    });
    assert_eq!(f.store.inner.len(), 1600);
}

#[test]
fn a_commit_across_shards_is_refused_whole_when_full_and_sweeps_for_room() {
    // `sample`'s keys lie in distinct groups, so each of these commits locks
    // two shards.
    let (keys, records) = sample();
    for store in [MemoryStore::with_capacity(2), MemoryStore::compact(2)] {
        let put = |k: StoreKey, expires_at: i64| Write::Put {
            key: k,
            record: records[0].clone(),
            expected: None,
            version: vericode::Version::fresh(),
            expires_at: Timestamp::from_millis(expires_at),
        };
        let early = Timestamp::from_millis(0);
        let first = [put(keys[0], 1_000), put(keys[1], 1_000)];
        assert_eq!(
            block_on(store.commit(&first, early)).unwrap(),
            Commit::Applied
        );
        let second = [put(keys[2], 5_000), put(keys[3], 5_000)];
        let e = block_on(store.commit(&second, early)).unwrap_err();
        assert_eq!(e, MemoryStoreError::Full { capacity: 2 });
        assert!(
            block_on(store.get_many(&keys[2..4], early))
                .unwrap()
                .iter()
                .all(Option::is_none),
            "a refused commit writes nothing"
        );
        // Once the first two expire, the store sweeps them out and the commit fits.
        let later = Timestamp::from_millis(1_000);
        assert_eq!(
            block_on(store.commit(&second, later)).unwrap(),
            Commit::Applied
        );
        assert_eq!(store.len(), 2);
    }
}

/// A key of its own for each `n`, spread over the shards (the shard is chosen
/// by the group's first byte).
fn spread_key(n: u32) -> StoreKey {
    let mut group = [0u8; 16];
    group[0] = n as u8;
    group[1..5].copy_from_slice(&n.to_le_bytes());
    StoreKey::new(KeyKind::Challenge, group, [7; 8])
}

/// Puts a new record under `key`, for an hour.
fn put_new(
    store: &MemoryStore,
    key: StoreKey,
    record: &Record,
) -> Result<Commit, MemoryStoreError> {
    let write = Write::Put {
        key,
        record: record.clone(),
        expected: None,
        version: vericode::Version::fresh(),
        expires_at: Timestamp::from_millis(3_600_000),
    };
    block_on(store.commit(&[write], Timestamp::from_millis(0)))
}

#[test]
fn threads_racing_for_the_last_places_never_pass_the_capacity_and_leave_none_unusable() {
    // Large enough that shards take capacity in grants of several records.
    const CAPACITY: usize = 50_000;
    let (_, records) = sample();
    let record = &records[0];
    for store in [
        MemoryStore::with_capacity(CAPACITY),
        MemoryStore::compact(CAPACITY),
    ] {
        // Four threads try 80,000 new records in all, racing for 50,000 places.
        let applied: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4u32)
                .map(|t| {
                    let store = &store;
                    s.spawn(move || {
                        (0..20_000u32)
                            .filter(
                                |i| match put_new(store, spread_key(t * 20_000 + i), record) {
                                    Ok(c) => {
                                        assert_eq!(c, Commit::Applied);
                                        true
                                    }
                                    Err(e) => {
                                        assert_eq!(
                                            e,
                                            MemoryStoreError::Full { capacity: CAPACITY }
                                        );
                                        false
                                    }
                                },
                            )
                            .count()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert!(
            applied <= CAPACITY,
            "{applied} records in {CAPACITY} places"
        );
        assert_eq!(store.len(), applied);
        // Whatever the race left (capacity granted to a shard and not used)
        // is there to take: one thread now fills the store exactly.
        let mut more = 0;
        while put_new(&store, spread_key(100_000 + more), record).is_ok() {
            more += 1;
        }
        assert_eq!(applied + more as usize, CAPACITY);
        assert_eq!(store.len(), CAPACITY);
    }
}

#[test]
fn capacity_freed_in_one_shard_can_be_used_in_another() {
    const CAPACITY: usize = 40_000;
    let (_, records) = sample();
    let record = &records[0];
    let store = MemoryStore::with_capacity(CAPACITY);
    // Fill the store through shard 0 alone.
    let in_shard_0 = |n: u32| spread_key(n * 256);
    for n in 0..CAPACITY as u32 {
        assert_eq!(put_new(&store, in_shard_0(n), record), Ok(Commit::Applied));
    }
    assert_eq!(
        put_new(&store, spread_key(5), record),
        Err(MemoryStoreError::Full { capacity: CAPACITY })
    );
    // Free 100 places there; exactly 100 fit in shard 5.
    for n in 0..100 {
        let delete = Write::Delete {
            key: in_shard_0(n),
            expected: block_on(store.get_many(&[in_shard_0(n)], Timestamp::from_millis(0)))
                .unwrap()[0]
                .as_ref()
                .map(|v| v.version)
                .unwrap(),
        };
        assert_eq!(
            block_on(store.commit(&[delete], Timestamp::from_millis(0))),
            Ok(Commit::Applied)
        );
    }
    for n in 0..100 {
        assert_eq!(
            put_new(&store, spread_key(5 + n * 256), record),
            Ok(Commit::Applied)
        );
    }
    assert_eq!(
        put_new(&store, spread_key(5 + 100 * 256), record),
        Err(MemoryStoreError::Full { capacity: CAPACITY })
    );
    assert_eq!(store.len(), CAPACITY);
}

/// Runs 3,000 random steps (new records, replacements, removals, clock
/// moves, purges) on `store` over `keys` keys spread on 4 shards, checking
/// each against a model of the records: every write is applied or refused
/// exactly when the model says (a put that adds a record is refused as full
/// exactly when the live records fill the capacity), and a purge leaves
/// exactly the live records. Puts of keys the model holds as absent or
/// expired do not read first, so they land on expired records still in the
/// map as well as on absent keys.
fn check_against_model(store: &MemoryStore, keys: u32, seed: u64) {
    let (_, records) = sample();
    let mut state = seed;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    // key number -> its expiry
    let mut model: std::collections::BTreeMap<u32, i64> = Default::default();
    let key = |n: u32| spread_key((n % 4) + 256 * (n / 4));
    let mut now = 0i64;
    for _ in 0..3_000 {
        let n = next(u64::from(keys)) as u32;
        let at = Timestamp::from_millis(now);
        let live_in_model = model.get(&n).is_some_and(|e| *e > now);
        let live_count = model.values().filter(|e| **e > now).count();
        let version = || {
            block_on(store.get_many(&[key(n)], at)).unwrap()[0]
                .as_ref()
                .map(|v| v.version)
        };
        match next(10) {
            0..=5 => {
                let expected = if live_in_model { version() } else { None };
                assert_eq!(expected.is_some(), live_in_model);
                let expires_at = now + 1 + next(500) as i64;
                let put = Write::Put {
                    key: key(n),
                    record: records[0].clone(),
                    expected,
                    version: vericode::Version::fresh(),
                    expires_at: Timestamp::from_millis(expires_at),
                };
                let done = block_on(store.commit(&[put], at));
                if !live_in_model && live_count >= store.capacity() {
                    let full = MemoryStoreError::Full {
                        capacity: store.capacity(),
                    };
                    assert_eq!(done, Err(full), "at {now}");
                } else {
                    assert_eq!(done, Ok(Commit::Applied), "at {now}");
                    model.insert(n, expires_at);
                }
            }
            6 => {
                if let Some(expected) = version() {
                    let delete = Write::Delete {
                        key: key(n),
                        expected,
                    };
                    assert_eq!(block_on(store.commit(&[delete], at)), Ok(Commit::Applied));
                    model.remove(&n);
                }
            }
            7 => now += next(200) as i64,
            _ => {
                store.purge_expired(at);
                model.retain(|_, e| *e > now);
                assert_eq!(store.len(), model.len(), "at {now}");
            }
        }
        assert!(store.len() <= store.capacity());
    }
}

#[test]
fn a_purge_drops_exactly_the_expired_records_whatever_was_written_since_the_last() {
    // Shards skip their scan until their earliest expiry. 400 keys put about
    // 100 in a shard, past the size at which writes sweep on their own.
    for store in [MemoryStore::new(), MemoryStore::compact(1_000_000)] {
        check_against_model(&store, 400, 0x2545_F491_4F6C_DD1D);
    }
}

#[test]
fn a_full_store_refuses_exactly_the_writes_that_would_pass_its_capacity() {
    // 40 keys for 12 places: the store is often full, with expired records
    // in it that writes land on.
    for seed in [1u64, 0x9E37_79B9_7F4A_7C15, 0xDEAD_BEEF_CAFE_F00D] {
        for store in [MemoryStore::with_capacity(12), MemoryStore::compact(12)] {
            check_against_model(&store, 40, seed);
        }
    }
}

#[test]
fn a_put_over_an_expired_record_counts_against_the_capacity() {
    let (_, records) = sample();
    let group = [9u8; 16];
    let k = StoreKey::new(KeyKind::Challenge, group, [1; 8]);
    let l = StoreKey::new(KeyKind::Challenge, group, [2; 8]);
    let put = |key, expected, expires_at| Write::Put {
        key,
        record: records[0].clone(),
        expected,
        version: vericode::Version::fresh(),
        expires_at: Timestamp::from_millis(expires_at),
    };
    for store in [MemoryStore::with_capacity(1), MemoryStore::compact(1)] {
        let at = Timestamp::from_millis;
        assert_eq!(
            block_on(store.commit(&[put(k, None, 100)], at(0))),
            Ok(Commit::Applied)
        );
        // K has expired but is still held: putting it again and L adds two
        // records to a store of one place.
        let both = [put(k, None, 1_000), put(l, None, 1_000)];
        assert_eq!(
            block_on(store.commit(&both, at(200))),
            Err(MemoryStoreError::Full { capacity: 1 })
        );
        assert!(store.len() <= 1);
        // One fits; it can be replaced and removed while the store is full.
        assert_eq!(
            block_on(store.commit(&[put(l, None, 1_000)], at(200))),
            Ok(Commit::Applied)
        );
        let v = block_on(store.get_many(&[l], at(200))).unwrap()[0]
            .as_ref()
            .unwrap()
            .version;
        assert_eq!(
            block_on(store.commit(&[put(l, Some(v), 2_000)], at(200))),
            Ok(Commit::Applied)
        );
        let v = block_on(store.get_many(&[l], at(200))).unwrap()[0]
            .as_ref()
            .unwrap()
            .version;
        let delete = Write::Delete {
            key: l,
            expected: v,
        };
        assert_eq!(
            block_on(store.commit(&[delete], at(200))),
            Ok(Commit::Applied)
        );
        assert_eq!(store.len(), 0);
    }
}
