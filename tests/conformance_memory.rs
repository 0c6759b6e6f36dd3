//! The store conformance suite (`vericode::testing`) on `MemoryStore`, in both
//! layouts: on tokio's multi-threaded runtime, and on plain threads without a
//! runtime.

mod common;

use std::sync::Arc;

use common::{Around, Wrapped, WriteAnswer};
use vericode::MemoryStore;
use vericode::testing::Conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_on_tokio_tasks() {
    let report = Conformance::new(MemoryStore::new, |task| {
        tokio::spawn(task);
    })
    .run()
    .await
    .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.checks(), Conformance::<MemoryStore>::CHECKS);
}

/// Runs the whole suite on stores made by `make`, one plain thread per task.
fn passes_on_threads(make: impl Fn() -> MemoryStore + Send + Sync + 'static) {
    let suite = Conformance::new(make, |task| {
        std::thread::spawn(move || pollster::block_on(task));
    })
    .tasks(32)
    .increments(50);
    let report = pollster::block_on(suite.run()).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(
        report.checks().len(),
        Conformance::<MemoryStore>::CHECKS.len()
    );
}

#[test]
fn memory_store_passes_on_threads() {
    passes_on_threads(MemoryStore::new);
}

#[test]
fn compact_memory_store_passes_on_threads() {
    passes_on_threads(|| MemoryStore::compact(MemoryStore::DEFAULT_CAPACITY));
}

/// One store shared by every check and both verifiers (as two processes
/// sharing a server would): fresh keys keep the checks apart.
#[test]
fn one_shared_memory_store_passes() {
    let shared = Arc::new(MemoryStore::new());
    let suite = Conformance::new(
        move || shared.clone(),
        |task| {
            std::thread::spawn(move || pollster::block_on(task));
        },
    )
    .second_handle(Arc::clone);
    pollster::block_on(suite.run()).unwrap_or_else(|f| panic!("{f}"));
}

/// The suite can fail: a store that loses writes is caught.
#[test]
fn a_store_that_ignores_versions_fails() {
    use vericode::{CodeStore, Timestamp, Write};

    /// Applies every write, whatever its expectation.
    struct Careless;

    impl Around for Careless {
        fn write(&self, store: &MemoryStore, writes: &[Write], now: Timestamp) -> WriteAnswer {
            // Re-read each key and write at whatever version it has now.
            let keys: Vec<_> = writes.iter().map(|w| *w.key()).collect();
            let current = pollster::block_on(store.get_many(&keys, now));
            let fixed: Vec<Write> = writes
                .iter()
                .zip(current.unwrap_or_default())
                .map(|(w, cur)| match w {
                    Write::Put {
                        key,
                        record,
                        version,
                        expires_at,
                        ..
                    } => Write::Put {
                        key: *key,
                        record: record.clone(),
                        expected: cur.map(|v| v.version),
                        version: *version,
                        expires_at: *expires_at,
                    },
                    other => other.clone(),
                })
                .collect();
            Some(pollster::block_on(store.commit(&fixed, now)))
        }
    }

    let suite = Conformance::new(
        || Wrapped::new(Careless),
        |task| {
            std::thread::spawn(move || pollster::block_on(task));
        },
    );
    let failure = pollster::block_on(suite.conditional_writes()).unwrap_err();
    assert_eq!(failure.check(), "conditional_writes");
}

/// A store in the process that makes up a new lookup key on every call fails
/// the suite (its verifiers would not find each other's records); the same
/// wrapper with one key passes.
#[test]
fn a_local_store_whose_lookup_key_changes_fails() {
    use vericode::SecretKey;

    /// A store in the process answering `fixed` as its lookup key, or a new
    /// one on every call.
    struct Keyed {
        fixed: Option<SecretKey>,
    }

    impl Around for Keyed {
        fn remote(&self) -> bool {
            false
        }

        fn lookup_key(&self) -> Option<SecretKey> {
            Some(self.fixed.clone().unwrap_or_else(SecretKey::generate))
        }
    }

    let suite = |fixed: Option<SecretKey>| {
        Conformance::new(
            move || {
                Wrapped::new(Keyed {
                    fixed: fixed.clone(),
                })
            },
            |task| {
                std::thread::spawn(move || pollster::block_on(task));
            },
        )
    };
    let fickle = suite(None);
    let failure = pollster::block_on(fickle.verifiers_share_state()).unwrap_err();
    assert_eq!(failure.check(), "verifiers_share_state");
    let steady = suite(Some(SecretKey::generate()));
    pollster::block_on(steady.verifiers_share_state()).unwrap_or_else(|f| panic!("{f}"));
}
