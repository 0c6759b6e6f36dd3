//! Shared test fixtures: a verifier on a manual clock, a store that records
//! every write, deliveries that fail.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};
use vericode::{
    CodeStore, Commit, Delivery, Destination, IssueRequest, KeyId, ManualClock, MemoryStore,
    Message, Policy, Purpose, Receipt, RecordingDelivery, SecretKey, StoreKey, Subject, Timestamp,
    Verifier, Versioned, Write,
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

/// A `MemoryStore` that keeps a copy of every record ever written and the
/// group of every key asked for, so tests can look for what must never be
/// stored. It counts as a store shared between processes (`is_remote`), so
/// the verifier never takes a lookup key from it, even one it `offers`.
#[derive(Default)]
pub struct SpyStore {
    pub inner: MemoryStore,
    pub written: Mutex<Vec<Vec<u8>>>,
    pub groups: Mutex<Vec<[u8; 16]>>,
    pub offers: Option<SecretKey>,
}

impl SpyStore {
    pub fn writes(&self) -> Vec<Vec<u8>> {
        self.written.lock().unwrap().clone()
    }

    pub fn groups(&self) -> Vec<[u8; 16]> {
        self.groups.lock().unwrap().clone()
    }
}

impl CodeStore for SpyStore {
    type Error = vericode::MemoryStoreError;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
        let mut groups = self.groups.lock().unwrap();
        groups.extend(keys.iter().map(|k| *k.group()));
        self.inner.get_many(keys, now)
    }

    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send {
        let mut groups = self.groups.lock().unwrap();
        groups.extend(writes.iter().map(|w| *w.key().group()));
        let mut log = self.written.lock().unwrap();
        for w in writes {
            if let Write::Put { record, .. } = w {
                log.push(record.encode());
            }
        }
        self.inner.commit(writes, now)
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

/// A `MemoryStore` whose commits first go through `hook`, which may answer
/// in the store's place (a conflict, say) without writing.
pub struct HookedStore<F> {
    pub inner: MemoryStore,
    pub hook: F,
}

impl<F> HookedStore<F>
where
    F: Fn(&MemoryStore, &[Write]) -> Option<Commit> + Send + Sync,
{
    pub fn new(hook: F) -> Self {
        HookedStore {
            inner: MemoryStore::new(),
            hook,
        }
    }
}

impl<F> CodeStore for HookedStore<F>
where
    F: Fn(&MemoryStore, &[Write]) -> Option<Commit> + Send + Sync,
{
    type Error = vericode::MemoryStoreError;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
        self.inner.get_many(keys, now)
    }

    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send {
        let r = match (self.hook)(&self.inner, writes) {
            Some(answer) => Ok(answer),
            None => block_on(self.inner.commit(writes, now)),
        };
        std::future::ready(r)
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
    Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .clock(ManualClock::new(start()))
        .policy(policy)
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap()
}
