//! Time: the [`Clock`] trait, the system clock, a manual clock for tests and
//! examples, and the millisecond [`Timestamp`] that stores and records use.
//!
//! Nothing in vericode reads the system time directly: every decision about
//! expiry, cooldowns and lockouts asks the verifier's clock, so tests move time
//! by hand instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// A point in time, in whole milliseconds since the Unix epoch (UTC).
///
/// This is the form time takes in records and in the [`CodeStore`](crate::CodeStore)
/// contract: small, `Copy`, totally ordered, and cheap to compare.
///
/// ```
/// use vericode::Timestamp;
/// use time::{Duration, OffsetDateTime};
///
/// let t = Timestamp::from_datetime(OffsetDateTime::UNIX_EPOCH + Duration::seconds(90));
/// assert_eq!(t.as_millis(), 90_000);
/// assert_eq!(t.to_datetime().unix_timestamp(), 90);
/// assert_eq!(t.saturating_add(Duration::seconds(1)).as_millis(), 91_000);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The timestamp of a date and time, truncated to the millisecond.
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
        Timestamp(i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX }))
    }

    /// This timestamp as a UTC date and time (clamped to the range `time` supports).
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).unwrap_or(
            if self.0 < 0 {
                OffsetDateTime::UNIX_EPOCH
            } else {
                time::PrimitiveDateTime::MAX.assume_utc()
            },
        )
    }

    /// This timestamp moved by `by`, saturating instead of overflowing.
    pub fn saturating_add(self, by: Duration) -> Self {
        let millis = i64::try_from(by.whole_milliseconds()).unwrap_or(if by.is_negative() {
            i64::MIN
        } else {
            i64::MAX
        });
        Timestamp(self.0.saturating_add(millis))
    }

    /// How long from `earlier` until this timestamp (negative if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::milliseconds(self.0.saturating_sub(earlier.0))
    }
}

/// A source of the current time.
///
/// The verifier asks its clock for every decision. Use [`SystemClock`] in
/// production and [`ManualClock`] in tests and examples.
///
/// ```
/// use vericode::{Clock, ManualClock};
/// use time::{Duration, OffsetDateTime};
///
/// let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
/// clock.advance(Duration::minutes(10));
/// assert_eq!(clock.now().unix_timestamp(), 600);
/// ```
pub trait Clock: Send + Sync {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// The current time as a [`Timestamp`]. The default converts
    /// [`Clock::now`]; a clock that keeps milliseconds can answer directly
    /// (the verifier asks on every operation).
    fn now_timestamp(&self) -> Timestamp {
        Timestamp::from_datetime(self.now())
    }
}

/// The operating system's wall clock.
///
/// ```
/// use vericode::{Clock, SystemClock};
/// assert!(SystemClock.now().year() >= 2024);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn now_timestamp(&self) -> Timestamp {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

/// A clock that moves only when told to; clones share one time.
///
/// Give one clone to the verifier and keep another to move time forward in
/// tests, so nothing ever sleeps.
///
/// ```
/// use vericode::{Clock, ManualClock};
/// use time::{Duration, OffsetDateTime};
///
/// let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
/// let shared = clock.clone();
/// shared.advance(Duration::seconds(30));
/// assert_eq!(clock.now().unix_timestamp(), 30);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start` (truncated to the millisecond).
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock {
            millis: Arc::new(AtomicI64::new(Timestamp::from_datetime(start).as_millis())),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.whole_milliseconds()).unwrap_or(0);
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        self.millis
            .store(Timestamp::from_datetime(at).as_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        Timestamp::from_millis(self.millis.load(Ordering::SeqCst)).to_datetime()
    }

    fn now_timestamp(&self) -> Timestamp {
        Timestamp::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }

    fn now_timestamp(&self) -> Timestamp {
        (**self).now_timestamp()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }

    fn now_timestamp(&self) -> Timestamp {
        (**self).now_timestamp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_agree_with_datetimes() {
        let clock =
            ManualClock::new(OffsetDateTime::UNIX_EPOCH + Duration::milliseconds(1_234_567));
        assert_eq!(clock.now_timestamp(), Timestamp::from_datetime(clock.now()));
        let system = SystemClock;
        let a = system.now_timestamp();
        let b = Timestamp::from_datetime(system.now());
        assert!(b.since(a) >= Duration::ZERO && b.since(a) < Duration::seconds(5));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(shared.now_timestamp(), clock.now_timestamp());
    }
}
