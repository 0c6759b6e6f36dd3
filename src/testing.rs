//! A conformance suite that every [`CodeStore`] must pass, and the
//! [`Verifier`] invariants checked over that store (cargo feature `testing`).
//!
//! Add `vericode = { version = "…", features = ["testing"] }` to a store
//! crate's `[dev-dependencies]` and run [`Conformance::run`] in one test:
//!
//! ```
//! use vericode::MemoryStore;
//! use vericode::testing::Conformance;
//!
//! # pollster::block_on(async {
//! // Real parallelism without a runtime: one thread per task.
//! let suite = Conformance::new(MemoryStore::new, |task| {
//!     std::thread::spawn(move || pollster::block_on(task));
//! });
//! let report = suite.run().await?;
//! assert!(report.checks().contains(&"linearizable_increments"));
//! # Ok::<(), vericode::testing::Failure>(())
//! # }).unwrap();
//! ```
//!
//! On tokio, pass `|task| { tokio::spawn(task); }` from a multi-threaded
//! runtime (`#[tokio::test(flavor = "multi_thread")]`).
//!
//! # What it checks
//!
//! Store contract (see the [`store`](crate::store) module docs):
//!
//! - `conditional_writes`: create-if-absent, replace-at-version,
//!   delete-at-version; a stale or made-up version conflicts and writes
//!   nothing; `get_many` answers in order, `None` for absent keys.
//! - `versions_never_reused`: across replaces and delete-then-create cycles no
//!   version comes back, and a version from an earlier life of the key never
//!   matches again.
//! - `distinct_keys`: kind, group and item each tell keys apart.
//! - `all_or_none`: a commit of several writes in one group applies every
//!   write or none.
//! - `batches_equal_plain_commits`: [`CodeStore::commit_batches`] gives the
//!   same answers and the same final state as one [`CodeStore::commit`] per
//!   batch, each batch atomic on its own and later batches seeing earlier ones.
//! - `expiry`: a record reads absent once `now` is past its `expires_at`, and
//!   counts as absent for the expectations of later writes.
//! - `record_round_trips`: challenge and subject records, with binary digests,
//!   the longest strings and extreme times, read back equal.
//! - `linearizable_increments`: many tasks racing read-modify-conditional-write
//!   increments on one key lose no update, no two writes succeed from the same
//!   version, and a read after a write sees it.
//! - `atomic_transfers`: racing two-key commits conserve a sum.
//!
//! Verifier invariants, with two [`Verifier`]s over the store (two "servers"):
//!
//! - `one_success`: of N concurrent verifications with the right code through
//!   both verifiers, exactly one succeeds.
//! - `attempts_capped`: N concurrent wrong guesses count at most the policy's
//!   attempts, each with a distinct number of attempts left; then even the
//!   right code fails.
//! - `verifiers_share_state`: a challenge issued by one verifier is verified by
//!   the other, the attempt count and the resend cooldown are shared, and a
//!   code used on one is refused on the other.
//! - `rate_limits_shared`: a per-subject send limit holds across both
//!   verifiers.
//!
//! # Time and server-side expiry
//!
//! Every check takes its `now` from the system clock at the time it runs and
//! writes records that expire an hour or more later, so a store that also
//! drops records on its own clock (Redis `PEXPIREAT`) keeps them while they
//! are checked. The `expiry` check then reads with a `now` *past* a record's
//! `expires_at`, without waiting: the contract asks a store to honour the
//! `now` it is given (the verifier's clock decides), so a store that relies on
//! its own clock alone fails it. Nothing sleeps.
//!
//! # Isolation
//!
//! Every check uses fresh random groups, subjects and destinations, so the
//! suite can run against a shared server that holds other data, and several
//! runs may share one store. `make` is called once per check.
//!
//! Failure messages never contain codes, digests or keys.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll, Waker};

use rand::Rng;
use time::{Duration, OffsetDateTime};

use crate::clock::{ManualClock, Timestamp};
use crate::delivery::RecordingDelivery;
use crate::destination::{Channel, Destination};
use crate::error::{IssueError, StoreError, VerifyError};
use crate::gcra::RateLimit;
use crate::keys::{KeyId, SecretKey};
use crate::limits::Limit;
use crate::policy::Policy;
use crate::purpose::Purpose;
use crate::record::{ChallengeRecord, Lock, Record, StoredTag, SubjectRecord};
use crate::store::{CodeStore, Commit, KeyKind, StoreKey, Version, Versioned, Write};
use crate::subject::Subject;
use crate::verifier::{IssueRequest, Verifier};

/// A unit of work the suite hands to the caller's executor to run
/// concurrently with others (see [`Conformance::new`]).
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A check that did not hold: which one, and what was seen.
///
/// ```
/// let f = vericode::testing::Failure::new("expiry", "an expired record was read");
/// assert_eq!(f.check(), "expiry");
/// assert_eq!(f.to_string(), "conformance check `expiry` failed: an expired record was read");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    check: &'static str,
    message: String,
}

impl Failure {
    /// A failure of `check`.
    pub fn new(check: &'static str, message: impl Into<String>) -> Self {
        Failure {
            check,
            message: message.into(),
        }
    }

    /// The name of the check that failed.
    pub fn check(&self) -> &'static str {
        self.check
    }

    /// What was seen.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance check `{}` failed: {}",
            self.check, self.message
        )
    }
}

impl std::error::Error for Failure {}

/// The checks that passed, in the order they ran.
///
/// ```
/// # use vericode::{MemoryStore, testing::Conformance};
/// # pollster::block_on(async {
/// let suite = Conformance::new(MemoryStore::new, |task| {
///     std::thread::spawn(move || pollster::block_on(task));
/// });
/// let report = suite.run().await.unwrap();
/// assert_eq!(report.checks().len(), Conformance::<MemoryStore>::CHECKS.len());
/// # });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    checks: Vec<&'static str>,
}

impl Report {
    /// The names of the checks that passed.
    pub fn checks(&self) -> &[&'static str] {
        &self.checks
    }
}

macro_rules! ensure {
    ($check:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failure::new($check, format!($($fmt)+)));
        }
    };
}

type Make<S> = Arc<dyn Fn() -> S + Send + Sync>;
type Second<S> = Arc<dyn Fn(&S) -> S + Send + Sync>;
type Spawn = Arc<dyn Fn(Task) + Send + Sync>;

/// The conformance suite over stores made by a function.
///
/// Built from `make`, which returns a store (a fresh one, or a handle on a
/// shared one: the checks use fresh keys either way), and `spawn`, which runs
/// a [`Task`] concurrently with the caller, on any executor: the suite itself
/// needs no runtime. Give it real parallelism (threads, or a multi-threaded
/// runtime), or the concurrency checks race nothing.
pub struct Conformance<S> {
    make: Make<S>,
    second: Option<Second<S>>,
    spawn: Spawn,
    tasks: usize,
    increments: usize,
}

impl<S> fmt::Debug for Conformance<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conformance")
            .field("tasks", &self.tasks)
            .field("increments", &self.increments)
            .field("second_handle", &self.second.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: CodeStore + 'static> Conformance<S> {
    /// The names of every check, in the order [`Conformance::run`] runs them.
    pub const CHECKS: &'static [&'static str] = &[
        "conditional_writes",
        "versions_never_reused",
        "distinct_keys",
        "all_or_none",
        "batches_equal_plain_commits",
        "expiry",
        "record_round_trips",
        "linearizable_increments",
        "atomic_transfers",
        "one_success",
        "attempts_capped",
        "verifiers_share_state",
        "rate_limits_shared",
    ];

    /// A suite over stores from `make`, running concurrent work with `spawn`.
    /// Defaults: 16 concurrent tasks, 20 increments each.
    ///
    /// ```
    /// use vericode::{MemoryStore, testing::Conformance};
    /// let suite = Conformance::new(MemoryStore::new, |task| {
    ///     std::thread::spawn(move || pollster::block_on(task));
    /// })
    /// .tasks(8)
    /// .increments(10);
    /// # let _ = suite;
    /// ```
    pub fn new(
        make: impl Fn() -> S + Send + Sync + 'static,
        spawn: impl Fn(Task) + Send + Sync + 'static,
    ) -> Self {
        Conformance {
            make: Arc::new(make),
            second: None,
            spawn: Arc::new(spawn),
            tasks: 16,
            increments: 20,
        }
    }

    /// How many tasks race in the concurrency checks (at least 2).
    pub fn tasks(mut self, n: usize) -> Self {
        self.tasks = n.max(2);
        self
    }

    /// How many increments each task makes in `linearizable_increments` (at
    /// least 1; `atomic_transfers` makes half as many transfers).
    pub fn increments(mut self, n: usize) -> Self {
        self.increments = n.max(1);
        self
    }

    /// Makes the second verifier's store with `handle` from the first one's,
    /// instead of sharing one store value: for example a store on a second
    /// connection to the same server, so that the verifier checks run as two
    /// processes would.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use vericode::{MemoryStore, testing::Conformance};
    /// let shared = Arc::new(MemoryStore::new());
    /// let suite = Conformance::new(move || shared.clone(), |task| {
    ///     std::thread::spawn(move || pollster::block_on(task));
    /// })
    /// .second_handle(|first: &Arc<MemoryStore>| first.clone());
    /// # let _ = suite;
    /// ```
    pub fn second_handle(mut self, handle: impl Fn(&S) -> S + Send + Sync + 'static) -> Self {
        self.second = Some(Arc::new(handle));
        self
    }

    /// Runs every check in [`Conformance::CHECKS`] order and stops at the
    /// first failure.
    pub async fn run(&self) -> Result<Report, Failure> {
        let mut report = Report::default();
        self.conditional_writes().await?;
        report.checks.push("conditional_writes");
        self.versions_never_reused().await?;
        report.checks.push("versions_never_reused");
        self.distinct_keys().await?;
        report.checks.push("distinct_keys");
        self.all_or_none().await?;
        report.checks.push("all_or_none");
        self.batches_equal_plain_commits().await?;
        report.checks.push("batches_equal_plain_commits");
        self.expiry().await?;
        report.checks.push("expiry");
        self.record_round_trips().await?;
        report.checks.push("record_round_trips");
        self.linearizable_increments().await?;
        report.checks.push("linearizable_increments");
        self.atomic_transfers().await?;
        report.checks.push("atomic_transfers");
        self.one_success().await?;
        report.checks.push("one_success");
        self.attempts_capped().await?;
        report.checks.push("attempts_capped");
        self.verifiers_share_state().await?;
        report.checks.push("verifiers_share_state");
        self.rate_limits_shared().await?;
        report.checks.push("rate_limits_shared");
        Ok(report)
    }

    fn store(&self) -> Arc<S> {
        Arc::new((self.make)())
    }

    fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        let slot = Arc::new(Mutex::new(SlotState {
            done: None,
            waker: None,
        }));
        let mut completer = Completer {
            slot: slot.clone(),
            value: None,
        };
        (self.spawn)(Box::pin(async move {
            completer.value = Some(work.await);
            drop(completer);
        }));
        JoinHandle { slot }
    }

    /// Create-if-absent, replace-at-version and delete-at-version, with stale
    /// and made-up versions refused; `get_many` order and absent keys.
    pub async fn conditional_writes(&self) -> Result<(), Failure> {
        const C: &str = "conditional_writes";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let g = random_group();
        let a = StoreKey::new(KeyKind::Subject, g, [1; 8]);
        let b = StoreKey::new(KeyKind::Subject, g, [2; 8]);
        let missing = StoreKey::new(KeyKind::Subject, g, [3; 8]);
        let made_up = Version(u64::MAX - 12_345);

        ensure!(
            C,
            get(C, &*store, &[], now).await?.is_empty(),
            "get_many of no keys answered values"
        );
        ensure!(
            C,
            get1(C, &*store, a, now).await?.is_none(),
            "a fresh key reads present"
        );
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(1), Some(made_up), exp)], now).await?
                == Commit::Conflict,
            "a put expecting a version applied on an absent key"
        );
        ensure!(
            C,
            commit(C, &*store, &[del(a, made_up)], now).await? == Commit::Conflict,
            "a delete applied on an absent key"
        );
        ensure!(
            C,
            get1(C, &*store, a, now).await?.is_none(),
            "a refused write left a record"
        );

        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(1), None, exp)], now).await? == Commit::Applied,
            "create-if-absent on an absent key conflicted"
        );
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(99), None, exp)], now).await? == Commit::Conflict,
            "create-if-absent on a present key applied"
        );
        let v1 = get1(C, &*store, a, now)
            .await?
            .ok_or_else(|| Failure::new(C, "a created record reads absent"))?;
        ensure!(
            C,
            v1.record == counter(1),
            "the record read back is not the one written"
        );

        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(2), Some(made_up), exp)], now).await?
                == Commit::Conflict,
            "a put at a made-up version applied"
        );
        ensure!(
            C,
            commit(
                C,
                &*store,
                &[put(a, counter(2), Some(v1.version), exp)],
                now
            )
            .await?
                == Commit::Applied,
            "replace-at-version at the current version conflicted"
        );
        let v2 = get1(C, &*store, a, now)
            .await?
            .ok_or_else(|| Failure::new(C, "a replaced record reads absent"))?;
        ensure!(
            C,
            v2.record == counter(2),
            "a replace did not store the new record"
        );
        ensure!(C, v2.version != v1.version, "a replace kept the version");

        ensure!(
            C,
            commit(
                C,
                &*store,
                &[put(a, counter(3), Some(v1.version), exp)],
                now
            )
            .await?
                == Commit::Conflict,
            "a put at a stale version applied"
        );
        ensure!(
            C,
            commit(C, &*store, &[del(a, v1.version)], now).await? == Commit::Conflict,
            "a delete at a stale version applied"
        );
        let still = get1(C, &*store, a, now).await?;
        ensure!(
            C,
            still.as_ref().map(|v| (v.version, &v.record)) == Some((v2.version, &counter(2))),
            "a refused write changed the record"
        );

        ensure!(
            C,
            commit(C, &*store, &[put(b, counter(7), None, exp)], now).await? == Commit::Applied,
            "create-if-absent of a second key conflicted"
        );
        let got = get(C, &*store, &[b, missing, a], now).await?;
        ensure!(
            C,
            got[0].as_ref().map(|v| &v.record) == Some(&counter(7))
                && got[1].is_none()
                && got[2].as_ref().map(|v| &v.record) == Some(&counter(2)),
            "get_many did not answer in the order of the keys"
        );

        ensure!(
            C,
            commit(C, &*store, &[del(a, v2.version)], now).await? == Commit::Applied,
            "delete-at-version at the current version conflicted"
        );
        ensure!(
            C,
            get1(C, &*store, a, now).await?.is_none(),
            "a deleted record reads present"
        );
        ensure!(
            C,
            commit(C, &*store, &[del(a, v2.version)], now).await? == Commit::Conflict,
            "a second delete of a deleted key applied"
        );
        Ok(())
    }

    /// Versions are never reused for a key, not even after delete and
    /// create; a version from an earlier life of the key never matches.
    pub async fn versions_never_reused(&self) -> Result<(), Failure> {
        const C: &str = "versions_never_reused";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let a = StoreKey::new(KeyKind::Challenge, random_group(), [9; 8]);
        let mut seen: Vec<Version> = Vec::new();
        for round in 0..20u32 {
            ensure!(
                C,
                commit(C, &*store, &[put(a, counter(round), None, exp)], now).await?
                    == Commit::Applied,
                "create {round} conflicted"
            );
            let v = read_version(C, &*store, a, now).await?;
            ensure!(
                C,
                !seen.contains(&v),
                "version reused after {round} delete-and-create cycles"
            );
            seen.push(v);
            ensure!(
                C,
                commit(C, &*store, &[put(a, counter(round + 1), Some(v), exp)], now).await?
                    == Commit::Applied,
                "replace {round} conflicted"
            );
            let w = read_version(C, &*store, a, now).await?;
            ensure!(
                C,
                !seen.contains(&w),
                "version reused by a replace in round {round}"
            );
            seen.push(w);
            ensure!(
                C,
                commit(C, &*store, &[del(a, w)], now).await? == Commit::Applied,
                "delete {round} conflicted"
            );
        }
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(0), None, exp)], now).await? == Commit::Applied,
            "the last create conflicted"
        );
        let live = read_version(C, &*store, a, now).await?;
        ensure!(C, !seen.contains(&live), "the last create reused a version");
        for old in &seen {
            ensure!(
                C,
                commit(C, &*store, &[put(a, counter(1), Some(*old), exp)], now).await?
                    == Commit::Conflict,
                "a version from an earlier life of the key matched a put"
            );
            ensure!(
                C,
                commit(C, &*store, &[del(a, *old)], now).await? == Commit::Conflict,
                "a version from an earlier life of the key matched a delete"
            );
        }
        ensure!(
            C,
            read_version(C, &*store, a, now).await? == live,
            "a refused write changed the version"
        );
        Ok(())
    }

    /// Keys differing only in kind, item or group are distinct.
    pub async fn distinct_keys(&self) -> Result<(), Failure> {
        const C: &str = "distinct_keys";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let (g, h) = (random_group(), random_group());
        let keys = [
            StoreKey::new(KeyKind::Subject, g, [5; 8]),
            StoreKey::new(KeyKind::Challenge, g, [5; 8]),
            StoreKey::new(KeyKind::Subject, g, [6; 8]),
            StoreKey::new(KeyKind::Subject, h, [5; 8]),
        ];
        for (i, k) in (0u32..).zip(keys) {
            ensure!(
                C,
                commit(C, &*store, &[put(k, counter(100 + i), None, exp)], now).await?
                    == Commit::Applied,
                "key {i} of 4 was not absent: keys collide"
            );
        }
        let got = get(C, &*store, &keys, now).await?;
        for (i, v) in (0u32..).zip(&got) {
            ensure!(
                C,
                v.as_ref().map(|v| &v.record) == Some(&counter(100 + i)),
                "key {i} of 4 reads another key's record"
            );
        }
        Ok(())
    }

    /// A commit of several writes in one group applies all or none.
    pub async fn all_or_none(&self) -> Result<(), Failure> {
        const C: &str = "all_or_none";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let g = random_group();
        let a = StoreKey::new(KeyKind::Subject, g, [1; 8]);
        let b = StoreKey::new(KeyKind::Subject, g, [2; 8]);
        let c = StoreKey::new(KeyKind::Challenge, g, [1; 8]);
        let made_up = Version(u64::MAX - 54_321);

        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(1), None, exp)], now).await? == Commit::Applied,
            "create conflicted"
        );
        let va = read_version(C, &*store, a, now).await?;
        // The failing expectation last, then first.
        ensure!(
            C,
            commit(
                C,
                &*store,
                &[put(b, counter(2), None, exp), put(a, counter(2), None, exp)],
                now
            )
            .await?
                == Commit::Conflict,
            "a commit with a failed expectation applied"
        );
        ensure!(
            C,
            commit(
                C,
                &*store,
                &[del(a, made_up), put(b, counter(2), None, exp)],
                now
            )
            .await?
                == Commit::Conflict,
            "a commit with a failed expectation applied"
        );
        let got = get(C, &*store, &[a, b], now).await?;
        ensure!(
            C,
            got[1].is_none(),
            "a refused commit wrote one of its keys"
        );
        ensure!(
            C,
            got[0].as_ref().map(|v| v.version) == Some(va),
            "a refused commit changed a key"
        );

        let writes = [
            put(b, counter(20), None, exp),
            put(c, counter(30), None, exp),
            put(a, counter(10), Some(va), exp),
        ];
        ensure!(
            C,
            commit(C, &*store, &writes, now).await? == Commit::Applied,
            "a commit whose expectations all held conflicted"
        );
        let got = get(C, &*store, &[a, b, c], now).await?;
        let (Some(a1), Some(b1), Some(c1)) = (&got[0], &got[1], &got[2]) else {
            return Err(Failure::new(C, "an applied commit left a key unwritten"));
        };
        ensure!(
            C,
            a1.record == counter(10) && b1.record == counter(20) && c1.record == counter(30),
            "an applied commit wrote the wrong records"
        );

        let refused = [
            del(a, a1.version),
            put(c, counter(31), Some(c1.version), exp),
            put(b, counter(21), Some(va), exp),
        ];
        ensure!(
            C,
            commit(C, &*store, &refused, now).await? == Commit::Conflict,
            "a commit with a stale version applied"
        );
        let got = get(C, &*store, &[a, b, c], now).await?;
        ensure!(
            C,
            got[0].as_ref().map(|v| v.version) == Some(a1.version)
                && got[1].as_ref().map(|v| v.version) == Some(b1.version)
                && got[2].as_ref().map(|v| v.version) == Some(c1.version),
            "a refused commit of deletes and puts changed a key"
        );

        let mixed = [
            del(a, a1.version),
            del(b, b1.version),
            put(c, counter(32), Some(c1.version), exp),
        ];
        ensure!(
            C,
            commit(C, &*store, &mixed, now).await? == Commit::Applied,
            "a commit of deletes and a put conflicted"
        );
        let got = get(C, &*store, &[a, b, c], now).await?;
        ensure!(
            C,
            got[0].is_none()
                && got[1].is_none()
                && got[2].as_ref().map(|v| &v.record) == Some(&counter(32)),
            "an applied commit of deletes and a put left the wrong state"
        );
        Ok(())
    }

    /// `commit_batches` equals one `commit` per batch: same answers, same
    /// final records, each batch atomic on its own.
    pub async fn batches_equal_plain_commits(&self) -> Result<(), Failure> {
        const C: &str = "batches_equal_plain_commits";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let made_up = Version(u64::MAX - 777);

        // The same script on two sets of fresh keys: batched, then plain.
        let mut outcomes: Vec<(Vec<Commit>, Vec<Option<Record>>)> = Vec::new();
        for batched in [true, false] {
            let (g, h) = (random_group(), random_group());
            let a = StoreKey::new(KeyKind::Subject, g, [1; 8]);
            let a2 = StoreKey::new(KeyKind::Challenge, g, [1; 8]);
            let b = StoreKey::new(KeyKind::Subject, h, [1; 8]);
            let round1: Vec<Vec<Write>> = vec![
                vec![
                    put(a, counter(1), None, exp),
                    put(a2, counter(2), None, exp),
                ],
                vec![put(b, counter(3), Some(made_up), exp)],
                vec![put(b, counter(4), None, exp)],
                // Sees the batch before it: b is present now.
                vec![put(b, counter(5), None, exp)],
            ];
            let mut answers = run_batches(C, &*store, &round1, now, batched).await?;
            let va = read_version(C, &*store, a, now).await?;
            let vb = read_version(C, &*store, b, now).await?;
            let round2: Vec<Vec<Write>> = vec![
                vec![put(a, counter(6), Some(va), exp)],
                // Stale after the batch before it.
                vec![put(a, counter(7), Some(va), exp)],
                // All or none inside one batch of a commit of several.
                vec![del(b, vb), put(b, counter(8), None, exp)],
                vec![del(b, vb)],
                vec![del(a2, made_up), put(b, counter(9), None, exp)],
            ];
            answers.extend(run_batches(C, &*store, &round2, now, batched).await?);
            let finals = get(C, &*store, &[a, a2, b], now).await?;
            outcomes.push((
                answers,
                finals.into_iter().map(|v| v.map(|v| v.record)).collect(),
            ));
        }
        let expected_answers = [
            Commit::Applied,
            Commit::Conflict,
            Commit::Applied,
            Commit::Conflict,
            Commit::Applied,
            Commit::Conflict,
            Commit::Conflict,
            Commit::Applied,
            Commit::Conflict,
        ];
        ensure!(
            C,
            outcomes[1].0 == expected_answers,
            "plain commits answered {:?}, expected {:?}",
            outcomes[1].0,
            expected_answers
        );
        ensure!(
            C,
            outcomes[0].0 == outcomes[1].0,
            "commit_batches answered {:?}, plain commits {:?}",
            outcomes[0].0,
            outcomes[1].0
        );
        ensure!(
            C,
            outcomes[0].1 == outcomes[1].1,
            "commit_batches left other records than plain commits"
        );
        ensure!(
            C,
            outcomes[1].1 == [Some(counter(6)), Some(counter(2)), None],
            "plain commits left the wrong records"
        );
        ensure!(
            C,
            store
                .commit_batches(&[], now)
                .await
                .map_err(|e| backend(C, "commit_batches", &e))?
                .is_empty(),
            "commit_batches of no batches answered something"
        );
        Ok(())
    }

    /// A record past its `expires_at` reads absent and counts as absent for
    /// later writes' expectations.
    pub async fn expiry(&self) -> Result<(), Failure> {
        const C: &str = "expiry";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let just_before = exp.saturating_add(Duration::milliseconds(-1));
        let past = exp.saturating_add(Duration::milliseconds(1));
        let g = random_group();
        let a = StoreKey::new(KeyKind::Subject, g, [1; 8]);
        let b = StoreKey::new(KeyKind::Subject, g, [2; 8]);

        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(1), None, exp)], now).await? == Commit::Applied,
            "create conflicted"
        );
        let va = read_version(C, &*store, a, now).await?;
        ensure!(
            C,
            get1(C, &*store, a, just_before).await?.is_some(),
            "a record read absent before its expiry"
        );
        ensure!(
            C,
            get1(C, &*store, a, past).await?.is_none(),
            "a record read present after its expires_at"
        );
        ensure!(
            C,
            get(C, &*store, &[a], exp.saturating_add(Duration::days(30))).await?[0].is_none(),
            "a record read present a month after its expires_at"
        );
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(2), Some(va), exp)], past).await?
                == Commit::Conflict,
            "a put at the version of an expired record applied"
        );
        ensure!(
            C,
            commit(C, &*store, &[del(a, va)], past).await? == Commit::Conflict,
            "a delete at the version of an expired record applied"
        );
        let later = past.saturating_add(Duration::hours(1));
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(3), None, later)], past).await? == Commit::Applied,
            "create-if-absent over an expired record conflicted"
        );
        let again = get1(C, &*store, a, past)
            .await?
            .ok_or_else(|| Failure::new(C, "a record created over an expired one reads absent"))?;
        ensure!(
            C,
            again.record == counter(3) && again.version != va,
            "a record created over an expired one reads wrong"
        );

        // Born expired: whatever the commit answers, it never reads present.
        let _ = commit(
            C,
            &*store,
            &[put(
                b,
                counter(4),
                None,
                now.saturating_add(Duration::milliseconds(-1)),
            )],
            now,
        )
        .await?;
        ensure!(
            C,
            get1(C, &*store, b, now).await?.is_none(),
            "a record written already expired reads present"
        );
        Ok(())
    }

    /// Records of every kind the verifier writes read back equal, with binary
    /// digests, the longest strings and extreme times.
    pub async fn record_round_trips(&self) -> Result<(), Failure> {
        const C: &str = "record_round_trips";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let g = random_group();
        let records = sample_records().map_err(|m| Failure::new(C, m))?;
        let keys: Vec<StoreKey> = (0u8..)
            .zip(&records)
            .map(|(i, r)| {
                let kind = if r.as_challenge().is_ok() {
                    KeyKind::Challenge
                } else {
                    KeyKind::Subject
                };
                StoreKey::new(kind, g, [i; 8])
            })
            .collect();
        let writes: Vec<Write> = keys
            .iter()
            .zip(&records)
            .map(|(k, r)| put(*k, r.clone(), None, exp))
            .collect();
        ensure!(
            C,
            commit(C, &*store, &writes, now).await? == Commit::Applied,
            "writing the sample records conflicted"
        );
        let got = get(C, &*store, &keys, now).await?;
        for (i, (got, want)) in got.iter().zip(&records).enumerate() {
            ensure!(
                C,
                got.as_ref().map(|v| &v.record) == Some(want),
                "sample record {i} did not read back equal"
            );
            ensure!(
                C,
                Record::decode(&want.encode()).as_ref() == Ok(want),
                "sample record {i} does not survive encode and decode"
            );
        }
        Ok(())
    }

    /// Many tasks race read-modify-conditional-write increments on one key:
    /// no update is lost, no two writes succeed from one version, and a read
    /// after a write sees it.
    pub async fn linearizable_increments(&self) -> Result<(), Failure> {
        const C: &str = "linearizable_increments";
        let store = self.store();
        let key = StoreKey::new(KeyKind::Subject, random_group(), [7; 8]);
        let increments = self.increments;
        let handles: Vec<_> = (0..self.tasks)
            .map(|_| {
                let store = store.clone();
                self.spawn(async move { increment_task(&*store, key, increments).await })
            })
            .collect();
        let mut from: Vec<Option<Version>> = Vec::new();
        for h in handles {
            from.extend(joined(C, h.await)??);
        }
        let total = self.tasks * increments;
        let end = get1(C, &*store, key, real_now()).await?;
        let count = count_of(C, end.as_ref())?;
        ensure!(
            C,
            usize::try_from(count).ok() == Some(total),
            "{total} increments applied, the key counts {count}: updates were lost or duplicated"
        );
        ensure!(
            C,
            from.len() == total,
            "{} writes applied for {total} increments",
            from.len()
        );
        from.sort_unstable_by_key(|v| v.map(|v| v.0));
        let before = from.len();
        from.dedup();
        ensure!(
            C,
            from.len() == before,
            "two conditional writes succeeded from the same version"
        );
        Ok(())
    }

    /// Racing two-key commits in one group conserve a sum.
    pub async fn atomic_transfers(&self) -> Result<(), Failure> {
        const C: &str = "atomic_transfers";
        let store = self.store();
        let g = random_group();
        let from = StoreKey::new(KeyKind::Subject, g, [1; 8]);
        let to = StoreKey::new(KeyKind::Subject, g, [2; 8]);
        let per_task = self.increments.div_ceil(2);
        let total = u32::try_from(self.tasks * per_task)
            .map_err(|_| Failure::new(C, "too many transfers"))?;
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(2));
        ensure!(
            C,
            commit(C, &*store, &[put(from, counter(total), None, exp)], now).await?
                == Commit::Applied,
            "create conflicted"
        );
        let handles: Vec<_> = (0..self.tasks)
            .map(|_| {
                let store = store.clone();
                self.spawn(async move { transfer_task(&*store, from, to, per_task).await })
            })
            .collect();
        for h in handles {
            joined(C, h.await)??;
        }
        let got = get(C, &*store, &[from, to], real_now()).await?;
        let (left, moved) = (count_of(C, got[0].as_ref())?, count_of(C, got[1].as_ref())?);
        ensure!(
            C,
            left == 0 && moved == total,
            "after {total} transfers the keys hold {left} and {moved}"
        );
        Ok(())
    }

    fn verifier_pair(&self, policy: Policy) -> Result<VerifierPair<S>, Failure> {
        let a = self.store();
        let b = match &self.second {
            Some(second) => Arc::new(second(&a)),
            None => a.clone(),
        };
        pair(a, b, policy)
    }

    /// Of N concurrent verifications of the right code through two verifiers,
    /// exactly one succeeds.
    pub async fn one_success(&self) -> Result<(), Failure> {
        const C: &str = "one_success";
        let (va, vb) = self.verifier_pair(lenient_policy())?;
        let request = request(C, Purpose::LoginNewDevice)?;
        let ticket = va
            .issue(&request)
            .await
            .map_err(|e| Failure::new(C, format!("issue failed: {e}")))?;
        let id = *ticket.challenge_id();
        let code = va
            .delivery()
            .last_code()
            .ok_or_else(|| Failure::new(C, "nothing was delivered"))?;
        let handles: Vec<_> = (0..self.tasks)
            .map(|i| {
                let v = if i % 2 == 0 { va.clone() } else { vb.clone() };
                let code = code.clone();
                self.spawn(async move { v.verify(&id, &code).await.map(|_| ()) })
            })
            .collect();
        let mut successes = 0;
        for h in handles {
            match joined(C, h.await)? {
                Ok(()) => successes += 1,
                Err(
                    VerifyError::UnknownChallenge | VerifyError::Store(StoreError::Contention(_)),
                ) => {}
                Err(e) => {
                    return Err(Failure::new(
                        C,
                        format!("a losing verification answered `{e}`"),
                    ));
                }
            }
        }
        ensure!(
            C,
            successes == 1,
            "{successes} of {} concurrent right answers succeeded",
            self.tasks
        );
        Ok(())
    }

    /// N concurrent wrong guesses through two verifiers count at most the
    /// policy's attempts, each with its own "attempts left"; then even the
    /// right code fails.
    pub async fn attempts_capped(&self) -> Result<(), Failure> {
        const C: &str = "attempts_capped";
        let (va, vb) = self.verifier_pair(lenient_policy())?;
        let cap = va.policy().attempts();
        let request = request(C, Purpose::PasswordReset)?;
        let ticket = va
            .issue(&request)
            .await
            .map_err(|e| Failure::new(C, format!("issue failed: {e}")))?;
        let id = *ticket.challenge_id();
        let code = va
            .delivery()
            .last_code()
            .ok_or_else(|| Failure::new(C, "nothing was delivered"))?;
        let wrong = wrong_code(&code);
        let handles: Vec<_> = (0..self.tasks)
            .map(|i| {
                let v = if i % 2 == 0 { va.clone() } else { vb.clone() };
                let wrong = wrong.clone();
                self.spawn(async move { v.verify(&id, &wrong).await.map(|_| ()) })
            })
            .collect();
        let mut left: Vec<u32> = Vec::new();
        for h in handles {
            match joined(C, h.await)? {
                Ok(()) => return Err(Failure::new(C, "a wrong code verified")),
                Err(VerifyError::WrongCode { attempts_left }) => left.push(attempts_left),
                Err(VerifyError::TooManyAttempts) => {}
                Err(e) => return Err(Failure::new(C, format!("a wrong guess answered `{e}`"))),
            }
        }
        let counted = left.len();
        let want = usize::try_from(cap).unwrap_or(usize::MAX).min(self.tasks);
        ensure!(
            C,
            counted == want,
            "{counted} wrong guesses were counted, the cap is {cap} and {} were made",
            self.tasks
        );
        left.sort_unstable();
        left.dedup();
        ensure!(
            C,
            left.len() == counted,
            "two wrong guesses were counted from the same attempt"
        );
        if self.tasks >= want {
            match vb.verify(&id, &code).await {
                Err(VerifyError::TooManyAttempts) => {}
                Ok(_) => {
                    return Err(Failure::new(
                        C,
                        "the right code verified after the attempts ran out",
                    ));
                }
                Err(e) => {
                    return Err(Failure::new(
                        C,
                        format!("the right code after the cap answered `{e}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Two verifiers over one store act as one: issued by one, verified by
    /// the other, attempts and cooldown shared, a used code refused by both.
    pub async fn verifiers_share_state(&self) -> Result<(), Failure> {
        const C: &str = "verifiers_share_state";
        let (va, vb) = self.verifier_pair(lenient_policy())?;
        let request = request(C, Purpose::CredentialChange)?;
        let ticket = va
            .issue(&request)
            .await
            .map_err(|e| Failure::new(C, format!("issue failed: {e}")))?;
        let id = *ticket.challenge_id();
        let code = va
            .delivery()
            .last_code()
            .ok_or_else(|| Failure::new(C, "nothing was delivered"))?;
        let wrong = wrong_code(&code);
        let cap = va.policy().attempts();
        match vb.verify(&id, &wrong).await {
            Err(VerifyError::WrongCode { attempts_left }) if attempts_left + 1 == cap => {}
            other => {
                return Err(Failure::new(
                    C,
                    format!(
                        "a wrong guess on the other verifier answered {}",
                        outcome(&other)
                    ),
                ));
            }
        }
        match va.verify(&id, &wrong).await {
            Err(VerifyError::WrongCode { attempts_left }) if attempts_left + 2 == cap => {}
            other => {
                return Err(Failure::new(
                    C,
                    format!(
                        "the attempt count is not shared: the second wrong guess answered {}",
                        outcome(&other)
                    ),
                ));
            }
        }
        match vb.issue(&request).await {
            Err(IssueError::ResendTooSoon { .. }) => {}
            Ok(_) => {
                return Err(Failure::new(
                    C,
                    "the other verifier sent again inside the cooldown",
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    C,
                    format!("issuing again on the other verifier answered `{e}`"),
                ));
            }
        }
        ensure!(
            C,
            vb.delivery().last_code().is_none(),
            "the other verifier delivered a code inside the cooldown"
        );
        match vb.verify(&id, &code).await {
            Ok(v) => ensure!(
                C,
                v.subject() == request.subject(),
                "the other verifier verified another subject"
            ),
            Err(e) => {
                return Err(Failure::new(
                    C,
                    format!("the other verifier refused the right code: `{e}`"),
                ));
            }
        }
        match va.verify(&id, &code).await {
            Err(VerifyError::UnknownChallenge) => {}
            other => {
                return Err(Failure::new(
                    C,
                    format!(
                        "a code used on one verifier answered {} on the other",
                        outcome(&other)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A per-subject send limit holds across two verifiers.
    pub async fn rate_limits_shared(&self) -> Result<(), Failure> {
        const C: &str = "rate_limits_shared";
        let limit =
            RateLimit::new(2, Duration::hours(1)).map_err(|e| Failure::new(C, e.to_string()))?;
        let (va, vb) = self.verifier_pair(lenient_policy().limit(Limit::Subject, limit))?;
        let first = request(C, Purpose::LoginNewDevice)?;
        let same_subject = |purpose: Purpose| {
            IssueRequest::new(
                purpose,
                first.subject().clone(),
                first.destination().clone(),
            )
        };
        va.issue(&first)
            .await
            .map_err(|e| Failure::new(C, format!("the first send failed: {e}")))?;
        vb.issue(&same_subject(Purpose::PasswordReset))
            .await
            .map_err(|e| Failure::new(C, format!("the second send failed: {e}")))?;
        for (name, v) in [("first", &va), ("second", &vb)] {
            match v.issue(&same_subject(Purpose::CredentialChange)).await {
                Err(IssueError::RateLimited {
                    limit: Limit::Subject,
                    ..
                }) => {}
                Ok(_) => {
                    return Err(Failure::new(
                        C,
                        format!("the {name} verifier sent a third code inside a limit of 2"),
                    ));
                }
                Err(e) => {
                    return Err(Failure::new(
                        C,
                        format!("a third send on the {name} verifier answered `{e}`"),
                    ));
                }
            }
        }
        Ok(())
    }
}

type TestVerifier<S> = Verifier<Arc<S>, RecordingDelivery, ManualClock>;
type VerifierPair<S> = (Arc<TestVerifier<S>>, Arc<TestVerifier<S>>);

fn pair<S: CodeStore + 'static>(
    a: Arc<S>,
    b: Arc<S>,
    policy: Policy,
) -> Result<VerifierPair<S>, Failure> {
    // One clock at the real time for both "servers", so a store's own expiry
    // (if any) never drops what the checks still read.
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let secret = SecretKey::generate();
    let build = |store: Arc<S>| {
        Verifier::builder()
            .store(store)
            .delivery(RecordingDelivery::new())
            .clock(clock.clone())
            .policy(policy.clone())
            .signing_key(KeyId::new(1), secret.clone())
            .app_name("Conformance")
            .build()
            .map(Arc::new)
            .map_err(|e| Failure::new("verifier", format!("building a verifier failed: {e}")))
    };
    Ok((build(a)?, build(b)?))
}

/// The default policy without the abuse limits (rate limits, failure delay,
/// conversion guard), which would otherwise stop the races early and tie
/// runs on a shared store to each other.
fn lenient_policy() -> Policy {
    Policy::default().without_abuse_limits()
}

fn request(check: &'static str, purpose: Purpose) -> Result<IssueRequest, Failure> {
    let tag = hex(&random_group()[..8]);
    let subject = Subject::new(&format!("conformance-{tag}"))
        .map_err(|e| Failure::new(check, e.to_string()))?;
    let destination = Destination::email(&format!("c-{tag}@example.com"))
        .map_err(|e| Failure::new(check, e.to_string()))?;
    Ok(IssueRequest::new(purpose, subject, destination))
}

/// The code with its last character changed to another of the same alphabet
/// (digits by default).
fn wrong_code(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = match *last {
            '0'..='8' => char::from(*last as u8 + 1),
            '9' => '0',
            'A' => 'B',
            _ => 'A',
        };
    }
    chars.into_iter().collect()
}

/// An outcome, for a failure message, without anything secret.
fn outcome<T>(r: &Result<T, VerifyError>) -> String {
    match r {
        Ok(_) => "success".to_owned(),
        Err(e) => format!("`{e}`"),
    }
}

async fn increment_task<S: CodeStore>(
    store: &S,
    key: StoreKey,
    increments: usize,
) -> Result<Vec<Option<Version>>, Failure> {
    const C: &str = "linearizable_increments";
    let mut applied_from = Vec::with_capacity(increments);
    for _ in 0..increments {
        let mut done = false;
        for _ in 0..100_000 {
            let now = real_now();
            let current = get1(C, store, key, now).await?;
            let n = count_of(C, current.as_ref())?;
            let expected = current.map(|v| v.version);
            let write = put(
                key,
                counter(n + 1),
                expected,
                now.saturating_add(Duration::hours(1)),
            );
            if commit(C, store, &[write], now).await? == Commit::Applied {
                applied_from.push(expected);
                let after = get1(C, store, key, real_now()).await?;
                let seen = count_of(C, after.as_ref())?;
                ensure!(
                    C,
                    seen > n,
                    "a read after an applied write to {} saw {seen}",
                    n + 1
                );
                done = true;
                break;
            }
        }
        ensure!(C, done, "an increment conflicted 100000 times in a row");
    }
    Ok(applied_from)
}

async fn transfer_task<S: CodeStore>(
    store: &S,
    from: StoreKey,
    to: StoreKey,
    transfers: usize,
) -> Result<(), Failure> {
    const C: &str = "atomic_transfers";
    for _ in 0..transfers {
        let mut done = false;
        for _ in 0..100_000 {
            let now = real_now();
            let exp = now.saturating_add(Duration::hours(1));
            let got = get(C, store, &[from, to], now).await?;
            let (left, moved) = (count_of(C, got[0].as_ref())?, count_of(C, got[1].as_ref())?);
            ensure!(
                C,
                left > 0,
                "the source ran dry early: a transfer was applied twice"
            );
            let writes = [
                put(
                    from,
                    counter(left - 1),
                    got[0].as_ref().map(|v| v.version),
                    exp,
                ),
                put(
                    to,
                    counter(moved + 1),
                    got[1].as_ref().map(|v| v.version),
                    exp,
                ),
            ];
            if commit(C, store, &writes, now).await? == Commit::Applied {
                done = true;
                break;
            }
        }
        ensure!(C, done, "a transfer conflicted 100000 times in a row");
    }
    Ok(())
}

async fn run_batches<S: CodeStore>(
    check: &'static str,
    store: &S,
    batches: &[Vec<Write>],
    now: Timestamp,
    batched: bool,
) -> Result<Vec<Commit>, Failure> {
    if batched {
        let refs: Vec<&[Write]> = batches.iter().map(Vec::as_slice).collect();
        let out = store
            .commit_batches(&refs, now)
            .await
            .map_err(|e| backend(check, "commit_batches", &e))?;
        ensure!(
            check,
            out.len() == batches.len(),
            "commit_batches answered {} results for {} batches",
            out.len(),
            batches.len()
        );
        Ok(out)
    } else {
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            out.push(commit(check, store, b, now).await?);
        }
        Ok(out)
    }
}

fn backend(check: &'static str, op: &str, e: &dyn std::error::Error) -> Failure {
    Failure::new(check, format!("{op} failed: {e}"))
}

async fn get<S: CodeStore + ?Sized>(
    check: &'static str,
    store: &S,
    keys: &[StoreKey],
    now: Timestamp,
) -> Result<Vec<Option<Versioned>>, Failure> {
    let got = store
        .get_many(keys, now)
        .await
        .map_err(|e| backend(check, "get_many", &e))?;
    ensure!(
        check,
        got.len() == keys.len(),
        "get_many answered {} values for {} keys",
        got.len(),
        keys.len()
    );
    Ok(got)
}

async fn get1<S: CodeStore + ?Sized>(
    check: &'static str,
    store: &S,
    key: StoreKey,
    now: Timestamp,
) -> Result<Option<Versioned>, Failure> {
    Ok(get(check, store, &[key], now).await?.pop().flatten())
}

async fn read_version<S: CodeStore + ?Sized>(
    check: &'static str,
    store: &S,
    key: StoreKey,
    now: Timestamp,
) -> Result<Version, Failure> {
    get1(check, store, key, now)
        .await?
        .map(|v| v.version)
        .ok_or_else(|| Failure::new(check, "a record just written reads absent"))
}

async fn commit<S: CodeStore + ?Sized>(
    check: &'static str,
    store: &S,
    writes: &[Write],
    now: Timestamp,
) -> Result<Commit, Failure> {
    store
        .commit(writes, now)
        .await
        .map_err(|e| backend(check, "commit", &e))
}

fn put(key: StoreKey, record: Record, expected: Option<Version>, expires_at: Timestamp) -> Write {
    Write::Put {
        key,
        record,
        expected,
        expires_at,
    }
}

fn del(key: StoreKey, expected: Version) -> Write {
    Write::Delete { key, expected }
}

/// A small record holding a number: a subject record's failure count.
fn counter(n: u32) -> Record {
    Record::subject(SubjectRecord {
        failures: n,
        last_failure_at: Timestamp::from_millis(i64::from(n)),
        lock: Lock::None,
    })
}

fn count_of(check: &'static str, v: Option<&Versioned>) -> Result<u32, Failure> {
    match v {
        None => Ok(0),
        Some(v) => v
            .record
            .as_subject()
            .map(|s| s.failures)
            .map_err(|_| Failure::new(check, "a key read back a record of another kind")),
    }
}

fn sample_records() -> Result<Vec<Record>, String> {
    let e = |e: crate::error::InputError| e.to_string();
    let tag = |key: u32, byte: u8| StoredTag {
        key: KeyId::new(key),
        tag: std::array::from_fn(|i| byte.wrapping_add(i as u8)),
    };
    let t0 = real_now();
    let long_address = format!("{}@example.com", "a".repeat(64));
    let custom_address = "x".repeat(crate::destination::MAX_ADDRESS_LEN);
    let challenge = |destination: Destination,
                     alternates: Vec<Destination>,
                     subject: &str,
                     context,
                     codes: Vec<StoredTag>|
     -> Result<Record, String> {
        Ok(Record::challenge(ChallengeRecord {
            nonce: std::array::from_fn(|i| [0u8, 0x80, 0xff, b'\r', b'\n'][i % 5]),
            created_at: t0,
            expires_at: t0.saturating_add(Duration::minutes(10)),
            next_send_at: t0.saturating_add(Duration::seconds(30)),
            sends: 2,
            attempts: 1,
            purpose: Purpose::custom("wire_transfer").map_err(e)?,
            subject: Subject::new(subject).map_err(e)?,
            destination,
            alternates,
            locale: crate::message::Locale::Pt,
            details: Some(
                crate::subject::Details::new("aprovar 42,00 € à ACME — “ação”").map_err(e)?,
            ),
            context,
            codes,
        }))
    };
    Ok(vec![
        challenge(
            Destination::email(&long_address).map_err(e)?,
            vec![
                Destination::sms("+447700900123").map_err(e)?,
                Destination::voice("+14155550123").map_err(e)?,
            ],
            "user-ü-42 with spaces",
            Some(tag(3, 0xf0)),
            vec![tag(2, 0), tag(3, 0x7f), tag(u32::MAX, 0xff)],
        )?,
        challenge(
            Destination::custom(Channel::custom("push_app").map_err(e)?, &custom_address)
                .map_err(e)?,
            Vec::new(),
            &"s".repeat(crate::subject::MAX_SUBJECT_LEN),
            None,
            (0..10u8)
                .map(|i| tag(u32::from(i), i.wrapping_mul(37)))
                .collect(),
        )?,
        challenge(
            Destination::sms("+14155550123").map_err(e)?,
            Vec::new(),
            "1",
            None,
            vec![tag(0, 0)],
        )?,
        Record::subject(SubjectRecord {
            failures: u32::MAX,
            last_failure_at: Timestamp::from_millis(i64::MIN),
            lock: Lock::Until(Timestamp::from_millis(i64::MAX)),
        }),
        Record::subject(SubjectRecord {
            failures: 0,
            last_failure_at: Timestamp::EPOCH,
            lock: Lock::UntilUnlocked,
        }),
        counter(3),
    ])
}

fn real_now() -> Timestamp {
    Timestamp::from_datetime(OffsetDateTime::now_utc())
}

fn random_group() -> [u8; 16] {
    let mut g = [0u8; 16];
    rand::rng().fill_bytes(&mut g);
    g
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unwraps a joined task's value, failing the check if the task never
/// finished (it panicked, or the executor dropped it).
fn joined<T>(check: &'static str, value: Option<T>) -> Result<T, Failure> {
    value.ok_or_else(|| {
        Failure::new(
            check,
            "a concurrent task panicked or was dropped by the executor",
        )
    })
}

struct SlotState<T> {
    /// `Some(Some(v))`: finished with `v`; `Some(None)`: dropped unfinished.
    done: Option<Option<T>>,
    waker: Option<Waker>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets the slot when dropped: with the value when the task finished, empty
/// when it panicked or was dropped unfinished.
struct Completer<T> {
    slot: Arc<Mutex<SlotState<T>>>,
    value: Option<T>,
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = lock(&self.slot);
            s.done = Some(self.value.take());
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Resolves to the task's value, or `None` if it never finished.
struct JoinHandle<T> {
    slot: Arc<Mutex<SlotState<T>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let mut s = lock(&self.slot);
        match s.done.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_code_differs_in_the_last_character_only() {
        for code in ["123456", "000009", "ABCDEA", "ABCDEZ"] {
            let w = wrong_code(code);
            assert_ne!(w, code);
            assert_eq!(w.len(), code.len());
            assert_eq!(w[..5], code[..5]);
        }
    }

    #[test]
    fn sample_records_are_valid() {
        let records = sample_records().unwrap();
        assert_eq!(records.len(), 6);
    }
}
