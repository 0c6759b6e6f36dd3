//! Fixtures shared by the bench targets: a delivery that does nothing, one
//! that hands the code back to the calling thread, a verifier on a fixed
//! clock, and an executor that polls a future to completion without parking.
// Each bench target compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::{Future, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use time::{Duration, OffsetDateTime};
use vericode::{
    ClientKey, Clock, CodeStore, ConversionGuard, Delivery, Destination, IssueRequest, KeyId,
    Limit, ManualClock, MemoryStore, Message, Never, Policy, Purpose, RateLimit, Receipt,
    SecretKey, Subject, Timestamp, Verifier,
};

/// Runs a future to completion on the calling thread.
///
/// Every future of vericode on `MemoryStore` is ready at its first poll, so
/// this is one poll with a no-op waker: no allocation, no thread parking, and
/// so no executor cost in the figures (`pollster::block_on` allocates a
/// signal per call).
pub fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::hint::spin_loop();
    }
}

/// A delivery that does nothing: what `issue` costs without a provider.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullDelivery;

impl Delivery for NullDelivery {
    type Error = Never;

    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, Never>> + Send {
        std::hint::black_box(message);
        ready(Ok(Receipt::default()))
    }
}

thread_local! {
    static LAST_CODE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A delivery that keeps the last code sent *by the calling thread*, so the
/// bench can verify it (threads on distinct subjects never see each other's
/// codes).
#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureDelivery;

impl CaptureDelivery {
    /// The last code this thread's `issue` handed to the delivery.
    pub fn take() -> String {
        LAST_CODE.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }
}

impl Delivery for CaptureDelivery {
    type Error = Never;

    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, Never>> + Send {
        LAST_CODE.with(|c| {
            let mut c = c.borrow_mut();
            c.clear();
            c.push_str(message.code().expose());
        });
        ready(Ok(Receipt::default()))
    }
}

/// A fixed instant: the clock never moves, so no challenge expires during a
/// run and no figure includes a system-clock read.
pub fn start() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

/// The defaults (attempts, live codes, sends, cooldown, failures, lockout),
/// with a lifetime of one hour so that nothing expires during a long run, and
/// no abuse limit: the core path alone.
pub fn no_limits() -> Policy {
    Policy::default()
        .lifetime(Duration::hours(1))
        .without_abuse_limits()
}

/// A rate no bench reaches: the clock stands still, so a limit allows
/// `count` events in all; 10^8 per 7 days still moves the state (by 6 ms per
/// event), so every check reads, decides and writes its record as it would
/// in service.
pub fn roomy() -> RateLimit {
    RateLimit::new(100_000_000, Duration::days(7)).expect("valid rate")
}

/// One rate limit on (per destination): `issue` with it, less `issue`
/// without it, is what one rate-limit check costs.
pub fn one_limit() -> Policy {
    no_limits().limit(Limit::Destination, roomy())
}

/// The limits that are on by default (per destination, per subject, per
/// client, per verifying client, the conversion guard, the failure delay),
/// at rates no bench reaches.
pub fn default_limits() -> Policy {
    let defaults = Policy::default();
    let mut p = Policy::default().lifetime(Duration::hours(1));
    for limit in [
        Limit::Destination,
        Limit::DestinationPrefix,
        Limit::Subject,
        Limit::Client,
        Limit::Global,
        Limit::VerifyClient,
    ] {
        if defaults.rate_limit(limit).is_some() {
            p = p.limit(limit, roomy());
        }
    }
    p.conversion_guard(ConversionGuard::new(Duration::days(7), u32::MAX, 1.0).expect("valid guard"))
}

/// Every limit on, the ones off by default too (per destination prefix,
/// global), at rates no bench reaches.
pub fn every_limit() -> Policy {
    default_limits()
        .limit(Limit::DestinationPrefix, roomy())
        .limit(Limit::Global, roomy())
}

/// A verifier on `store` with `delivery` and `policy`, a manual clock (a
/// clone of `clock`) and a fixed key.
pub fn verifier<S: CodeStore, D: Delivery>(
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
        .signing_key(
            KeyId::new(1),
            SecretKey::from_bytes(&[7u8; 32]).expect("32 bytes"),
        )
        .app_name("Acme")
        .build()
        .expect("valid configuration")
}

/// Moves `clock` past the lifetime of every challenge and rate-limit state
/// and drops them from `store`, so the next round starts as the first did
/// (subject failure records stay: `Verifier::unlock` clears those).
pub fn expire_all(clock: &ManualClock, store: &MemoryStore) {
    clock.advance(Duration::hours(2));
    store.purge_expired(Timestamp::from_datetime(clock.now()));
}

/// A store large enough for `n` challenges and their other records
/// (subject, rate limits) whatever the run does.
pub fn store_for(n: usize) -> MemoryStore {
    MemoryStore::with_capacity(n.saturating_mul(5).max(MemoryStore::DEFAULT_CAPACITY))
}

/// A login challenge for a distinct subject `{prefix}-{i}`, by SMS to a
/// distinct US number, asked for by a distinct client (see [`client`]).
pub fn request(prefix: &str, i: usize) -> IssueRequest {
    request_to(prefix, i, &format!("+1415{:07}", i % 10_000_000))
}

/// [`request`], to `number`.
fn request_to(prefix: &str, i: usize, number: &str) -> IssueRequest {
    IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new(&format!("{prefix}-{i:07}")).expect("valid subject"),
        Destination::sms(number).expect("valid number"),
    )
    .client(client(prefix, i))
}

/// The client key of request `i`.
pub fn client(prefix: &str, i: usize) -> ClientKey {
    ClientKey::new(&format!("ip:{prefix}-{i}")).expect("valid client key")
}

/// `n` requests for distinct subjects.
pub fn requests(prefix: &str, n: usize) -> Vec<IssueRequest> {
    (0..n).map(|i| request(prefix, i)).collect()
}

/// [`requests`], with the numbers spread over 800 US number ranges (area
/// codes 200 to 999, one after the other) instead of all in +1 415: the
/// conversion guard's records (one per range) as a service's many ranges
/// spread them.
pub fn requests_over_ranges(prefix: &str, n: usize) -> Vec<IssueRequest> {
    (0..n)
        .map(|i| {
            let number = format!("+1{}{:07}", 200 + i % 800, i % 10_000_000);
            request_to(prefix, i, &number)
        })
        .collect()
}

/// The client keys of `requests(prefix, n)`.
pub fn clients(prefix: &str, n: usize) -> Vec<ClientKey> {
    (0..n).map(|i| client(prefix, i)).collect()
}

/// A code that is certainly not `code`: its last digit changed.
pub fn wrong(code: &str) -> String {
    let mut w = code.to_owned();
    let last = w.pop().expect("non-empty code");
    w.push(if last == '0' { '1' } else { '0' });
    w
}
