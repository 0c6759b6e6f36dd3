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
//! - `versions_as_given`: a put's record reads back at the version the put
//!   carried, across replaces and delete-then-create cycles, and a version
//!   from an earlier life of the key never matches again.
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
//!   code used on one is refused on the other. A store that is not
//!   [remote](CodeStore::is_remote) and supplies a
//!   [lookup key](CodeStore::lookup_key) is taken at its word (the verifiers
//!   are built without one), so this fails if its handles do not supply the
//!   same key.
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
use std::sync::Arc;

use crate::store::CodeStore;
#[cfg(doc)]
use crate::verifier::Verifier;

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

mod concurrency;
mod helpers;
mod store_records;
mod store_writes;
mod verifier_checks;

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
        "versions_as_given",
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
        self.versions_as_given().await?;
        report.checks.push("versions_as_given");
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
}
