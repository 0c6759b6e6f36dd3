//! Shared test fixtures: a verifier on a manual clock, a store that records
//! every write, deliveries that fail.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};
use vericode::{
    CodeStore, Commit, Delivery, Destination, IssueRequest, KeyId, ManualClock, MemoryStore,
    MemoryStoreError, Message, Policy, Purpose, Receipt, RecordingDelivery, SecretKey, StoreKey,
    Subject, Ticket, Timestamp, Verified, Verifier, VerifyError, Versioned, Write,
};

pub type TestVerifier<S = Arc<SpyStore>, D = RecordingDelivery> = Verifier<S, D, ManualClock>;

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

pub fn start() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

pub fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n; 32]).unwrap()
}

pub struct Fixture {
    pub verifier: TestVerifier,
    pub clock: ManualClock,
    pub store: Arc<SpyStore>,
}

/// The default policy without the abuse limits (rate limits, conversion
/// guard, failure delay), for tests of other rules that issue many codes;
/// `tests/abuse.rs` tests the limits themselves.
pub fn relaxed() -> Policy {
    Policy::default().without_abuse_limits()
}

impl Fixture {
    /// Verifies what was `typed` for the challenge of `ticket`, as a handler
    /// of the ticket's purpose would.
    pub fn check(&self, ticket: &Ticket, typed: &str) -> Result<Verified, VerifyError> {
        block_on(
            self.verifier
                .verify(ticket.purpose(), ticket.challenge_id(), typed),
        )
    }
}

pub fn fixture() -> Fixture {
    fixture_with(relaxed())
}

pub fn fixture_with(policy: Policy) -> Fixture {
    let clock = ManualClock::new(start());
    let store = Arc::new(SpyStore::default());
    let verifier = Verifier::builder()
        .store(store.clone())
        .delivery(RecordingDelivery::new())
        .clock(clock.clone())
        .policy(policy)
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap();
    Fixture {
        verifier,
        clock,
        store,
    }
}

pub fn login(subject: &str) -> IssueRequest {
    IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new(subject).unwrap(),
        Destination::sms("+14155550123").unwrap(),
    )
}

/// A code of the same format that is not `code`.
pub fn wrong(code: &str) -> String {
    const UNAMBIGUOUS: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let digits_only = code.bytes().all(|b| b.is_ascii_digit());
    code.chars()
        .map(|c| {
            if digits_only {
                if c == '9' {
                    '0'
                } else {
                    char::from(c as u8 + 1)
                }
            } else {
                let i = UNAMBIGUOUS.find(c).expect("unambiguous alphabet");
                UNAMBIGUOUS.as_bytes()[(i + 1) % UNAMBIGUOUS.len()] as char
            }
        })
        .collect()
}

/// What a write hook answers: `Some` in the store's place, `None` to let the
/// writes through.
pub type WriteAnswer = Option<Result<Commit, MemoryStoreError>>;

/// What a test store does around the `MemoryStore` it wraps ([`Wrapped`]).
/// Each hook's default lets the call through, and the store counts as shared
/// between processes (`is_remote`) offering no lookup key, as a remote store
/// would.
pub trait Around: Send + Sync {
    /// After the store answered a read of `keys`.
    fn read(&self, _keys: &[StoreKey]) {}
    /// Before an atomic batch of writes reaches the store; `Some` answers in
    /// the store's place (an error too), without writing.
    fn write(&self, _store: &MemoryStore, _writes: &[Write], _now: Timestamp) -> WriteAnswer {
        None
    }
    /// Once per commit round trip: a commit, or a batch of them.
    fn round_trip(&self) {}
    /// A lock each commit round trip holds while it is applied: a batch of
    /// commits then lands whole, between other round trips (a store whose
    /// pipelines are not interleaved). `None`: no lock.
    fn serial(&self) -> Option<&Mutex<()>> {
        None
    }
    /// Whether the store counts as shared between processes.
    fn remote(&self) -> bool {
        true
    }
    /// The lookup key the store offers.
    fn lookup_key(&self) -> Option<SecretKey> {
        None
    }
}

/// A `MemoryStore` with hooks around its calls; derefs to the hooks' state.
#[derive(Default)]
pub struct Wrapped<A> {
    pub inner: MemoryStore,
    pub around: A,
}

impl<A> Wrapped<A> {
    pub fn new(around: A) -> Self {
        Wrapped {
            inner: MemoryStore::new(),
            around,
        }
    }
}

impl<A> std::ops::Deref for Wrapped<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.around
    }
}

impl<A: Around> Wrapped<A> {
    fn apply(&self, writes: &[Write], now: Timestamp) -> Result<Commit, MemoryStoreError> {
        // The contract every store may rely on (Redis Cluster would refuse
        // anything else): distinct keys of one group per commit.
        if let Some(first) = writes.first() {
            assert!(
                writes
                    .iter()
                    .all(|w| w.key().group() == first.key().group()),
                "a commit across groups: {writes:?}"
            );
            for (i, w) in writes.iter().enumerate() {
                assert!(
                    writes[..i].iter().all(|x| x.key() != w.key()),
                    "a commit writes {:?} twice",
                    w.key()
                );
            }
        }
        self.around
            .write(&self.inner, writes, now)
            .unwrap_or_else(|| block_on(self.inner.commit(writes, now)))
    }
}

impl<A: Around> CodeStore for Wrapped<A> {
    type Error = MemoryStoreError;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
        let read = block_on(self.inner.get_many(keys, now));
        self.around.read(keys);
        std::future::ready(read)
    }

    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send {
        self.around.round_trip();
        let _whole = self.around.serial().map(|m| m.lock().unwrap());
        std::future::ready(self.apply(writes, now))
    }

    fn commit_batches(
        &self,
        batches: &[&[Write]],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Commit>, Self::Error>> + Send {
        self.around.round_trip();
        let _whole = self.around.serial().map(|m| m.lock().unwrap());
        std::future::ready(batches.iter().map(|b| self.apply(b, now)).collect())
    }

    fn is_remote(&self) -> bool {
        self.around.remote()
    }

    fn lookup_key(&self) -> Option<SecretKey> {
        self.around.lookup_key()
    }
}

/// Holds the first `n` reads of a key of one kind until all `n` have read:
/// `n` racing operations that all see the same state. `waiting` is 0 once
/// they have.
pub struct ReadsMeet {
    kind: vericode::KeyKind,
    pub waiting: std::sync::atomic::AtomicUsize,
    barrier: std::sync::Barrier,
}

impl ReadsMeet {
    pub fn new(kind: vericode::KeyKind, n: usize) -> Self {
        ReadsMeet {
            kind,
            waiting: std::sync::atomic::AtomicUsize::new(n),
            barrier: std::sync::Barrier::new(n),
        }
    }
}

impl Around for ReadsMeet {
    fn read(&self, keys: &[StoreKey]) {
        use std::sync::atomic::Ordering::SeqCst;
        if keys.iter().any(|k| k.kind() == self.kind)
            && self
                .waiting
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.barrier.wait();
        }
    }
}

/// A store that keeps a copy of every record ever written and the group of
/// every key asked for, so tests can look for what must never be stored. It
/// counts as a store shared between processes, so the verifier never takes a
/// lookup key from it, even one it `offers`.
pub type SpyStore = Wrapped<Spy>;

/// [`SpyStore`]'s hooks.
#[derive(Default)]
pub struct Spy {
    pub written: Mutex<Vec<Vec<u8>>>,
    pub groups: Mutex<Vec<[u8; 16]>>,
    pub offers: Option<SecretKey>,
}

impl Spy {
    pub fn writes(&self) -> Vec<Vec<u8>> {
        self.written.lock().unwrap().clone()
    }

    pub fn groups(&self) -> Vec<[u8; 16]> {
        self.groups.lock().unwrap().clone()
    }
}

impl Around for Spy {
    fn read(&self, keys: &[StoreKey]) {
        let mut groups = self.groups.lock().unwrap();
        groups.extend(keys.iter().map(|k| *k.group()));
    }

    fn write(&self, _: &MemoryStore, writes: &[Write], _: Timestamp) -> WriteAnswer {
        let mut groups = self.groups.lock().unwrap();
        groups.extend(writes.iter().map(|w| *w.key().group()));
        let mut log = self.written.lock().unwrap();
        for w in writes {
            if let Write::Put { record, .. } = w {
                log.push(record.encode());
            }
        }
        None
    }

    fn lookup_key(&self) -> Option<SecretKey> {
        self.offers.clone()
    }
}

/// A delivery that sees the code, then fails.
#[derive(Default)]
pub struct FailingDelivery {
    pub seen: Mutex<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("provider unavailable")]
pub struct ProviderDown;

impl Delivery for FailingDelivery {
    type Error = ProviderDown;
    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, ProviderDown>> + Send {
        self.seen
            .lock()
            .unwrap()
            .push(message.code().expose().to_owned());
        std::future::ready(Err(ProviderDown))
    }
}

/// A store whose reads or commits can be made to fail.
pub struct FlakyStore {
    pub inner: MemoryStore,
    fail_reads: std::sync::atomic::AtomicBool,
    fail_commits: std::sync::atomic::AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("injected store failure")]
pub struct Injected;

impl FlakyStore {
    pub fn new(inner: MemoryStore) -> Self {
        FlakyStore {
            inner,
            fail_reads: Default::default(),
            fail_commits: Default::default(),
        }
    }
    pub fn fail_reads(&self, on: bool) {
        self.fail_reads
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn fail_commits(&self, on: bool) {
        self.fail_commits
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

impl CodeStore for FlakyStore {
    type Error = Injected;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
        let r = if self.fail_reads.load(std::sync::atomic::Ordering::SeqCst) {
            Err(Injected)
        } else {
            Ok(block_on(self.inner.get_many(keys, now)).unwrap())
        };
        std::future::ready(r)
    }

    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send {
        let r = if self.fail_commits.load(std::sync::atomic::Ordering::SeqCst) {
            Err(Injected)
        } else {
            Ok(block_on(self.inner.commit(writes, now)).unwrap())
        };
        std::future::ready(r)
    }
}

/// Decodes unpadded base64url (the text form of ids and tokens).
pub fn b64decode(text: &str) -> Vec<u8> {
    const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.chars() {
        bits = (bits << 6) | A.find(c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

pub fn b64encode(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    let (mut bits, mut n) = (0u32, 0);
    for &b in bytes {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(A[((bits >> n) & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(A[((bits << (6 - n)) & 63) as usize] as char);
    }
    out
}

/// A store whose commits first go through a hook, which may answer in the
/// store's place (a conflict, say) without writing.
pub type HookedStore<F> = Wrapped<Hook<F>>;

/// [`HookedStore`]'s hook.
pub struct Hook<F>(pub F);

/// A [`HookedStore`] whose commits go through `hook`.
pub fn hooked<F>(hook: F) -> HookedStore<F>
where
    F: Fn(&MemoryStore, &[Write]) -> Option<Commit> + Send + Sync,
{
    Wrapped::new(Hook(hook))
}

impl<F> Around for Hook<F>
where
    F: Fn(&MemoryStore, &[Write]) -> Option<Commit> + Send + Sync,
{
    fn write(&self, store: &MemoryStore, writes: &[Write], _: Timestamp) -> WriteAnswer {
        (self.0)(store, writes).map(Ok)
    }
}

/// A verifier on `store` with a recording delivery, the relaxed policy and a
/// manual clock at `start()`.
pub fn verifier_on<S: CodeStore>(store: S) -> Verifier<S, RecordingDelivery, ManualClock> {
    verifier_with(store, relaxed())
}

/// [`verifier_on`] with a policy.
pub fn verifier_with<S: CodeStore>(
    store: S,
    policy: Policy,
) -> Verifier<S, RecordingDelivery, ManualClock> {
    verifier_at(store, policy, &ManualClock::new(start()))
}

/// [`verifier_with`] on a clock the test keeps.
pub fn verifier_at<S: CodeStore>(
    store: S,
    policy: Policy,
    clock: &ManualClock,
) -> Verifier<S, RecordingDelivery, ManualClock> {
    verifier_sending(store, RecordingDelivery::new(), policy, clock)
}

/// A verifier whose every delivery fails, on `store` and `policy`.
pub fn failing_on<S: CodeStore>(
    store: S,
    policy: Policy,
) -> Verifier<S, FailingDelivery, ManualClock> {
    verifier_sending(
        store,
        FailingDelivery::default(),
        policy,
        &ManualClock::new(start()),
    )
}

/// [`verifier_at`] with a delivery of the test's.
pub fn verifier_sending<S: CodeStore, D: Delivery>(
    store: S,
    delivery: D,
    policy: Policy,
    clock: &ManualClock,
) -> Verifier<S, D, ManualClock> {
    Verifier::builder()
        .store(store)
        .delivery(delivery)
        .clock(clock.clone())
        .policy(policy)
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap()
}
