//! The generic cell rate algorithm (GCRA), as governor implements it: the
//! whole state of a limit is one timestamp, the theoretical arrival time
//! (TAT) of the next request. Smooth (one request per `period / count` in the
//! long run), burst-tolerant (up to `count` at once after a quiet period), and
//! O(1) in time and space.
//!
//! This file holds the arithmetic only; where the state is kept and how it is
//! written atomically is the verifier's and the store's business.

use time::Duration;

use crate::clock::Timestamp;
use crate::error::ConfigError;

/// A rate: at most `count` events per `period`, smoothly.
///
/// ```
/// use vericode::RateLimit;
/// use time::Duration;
/// let five_per_ten_minutes = RateLimit::new(5, Duration::minutes(10))?;
/// assert_eq!(five_per_ten_minutes.count(), 5);
/// assert!(RateLimit::new(0, Duration::minutes(1)).is_err());
/// # Ok::<(), vericode::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    count: u32,
    period: Duration,
    // The same in integers, for `decide`: the spacing of events and the
    // burst tolerance in nanoseconds (at most 7 days: they fit an i64).
    interval_ns: i64,
    tolerance_ns: i64,
}

/// The outcome of asking a limit for one more event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Allowed; store this as the new TAT.
    Allow { new_tat: Timestamp },
    /// Refused; the earliest moment it would be allowed.
    Deny { retry_after: Timestamp },
}

impl RateLimit {
    /// `count` events per `period`: `count` at least 1, `period` 1 second to
    /// 7 days, and events at most one per millisecond on average (state is
    /// kept in milliseconds: a finer rate would never refuse).
    pub fn new(count: u32, period: Duration) -> Result<Self, ConfigError> {
        if count == 0 || period < Duration::seconds(1) || period > Duration::days(7) {
            return Err(ConfigError::Policy(
                "a rate limit allows at least 1 event per 1 s to 7 days",
            ));
        }
        const NS_PER_MS: i64 = 1_000_000;
        let period_ns = i64::try_from(period.whole_nanoseconds()).unwrap_or(i64::MAX);
        if period_ns / i64::from(count) < NS_PER_MS {
            return Err(ConfigError::Policy(
                "a rate limit allows at most 1 event per millisecond on average",
            ));
        }
        // The state moves in whole milliseconds: the spacing is rounded up,
        // so the limit is never looser than asked (rounded down, 1000 per
        // 1.999 s would space events 1 ms apart: twice the rate).
        // The burst stays `count` (a tolerance of `count - 1` spacings), so
        // rounding only slows the steady rate, never shrinks the burst.
        let per_event = i64::from(count) * NS_PER_MS;
        let interval_ns = (period_ns + per_event - 1) / per_event * NS_PER_MS;
        Ok(RateLimit {
            count,
            period,
            interval_ns,
            tolerance_ns: (i64::from(count) - 1) * interval_ns,
        })
    }

    /// Events per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Asks for one event at `now`, given the stored TAT (`None` for a fresh key).
    ///
    /// In integers: timestamps are milliseconds, the interval and tolerance
    /// nanoseconds, and a duration moves a timestamp by its whole milliseconds.
    pub(crate) fn decide(&self, tat: Option<Timestamp>, now: Timestamp) -> Decision {
        const NS_PER_MS: i64 = 1_000_000;
        let tat = tat.map_or(now, |t| t.max(now));
        let ahead_ms = tat.as_millis().saturating_sub(now.as_millis());
        // Allowed while the TAT is no further ahead of now than the burst tolerance.
        if ahead_ms.saturating_mul(NS_PER_MS) <= self.tolerance_ns {
            Decision::Allow {
                new_tat: Timestamp::from_millis(
                    tat.as_millis().saturating_add(self.interval_ns / NS_PER_MS),
                ),
            }
        } else {
            Decision::Deny {
                retry_after: Timestamp::from_millis(
                    tat.as_millis()
                        .saturating_sub(self.tolerance_ns / NS_PER_MS),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The algorithm in `time::Duration` arithmetic, as it was first written.
    fn reference(l: &RateLimit, tat: Option<Timestamp>, now: Timestamp) -> Decision {
        // The spacing rounded up to whole milliseconds, as `new` does.
        let per_event = i128::from(l.count) * 1_000_000;
        let ms = (l.period.whole_nanoseconds() + per_event - 1) / per_event;
        let interval = Duration::milliseconds(ms as i64);
        let tolerance = interval * (l.count - 1);
        let tat = tat.map_or(now, |t| t.max(now));
        if tat.since(now) <= tolerance {
            Decision::Allow {
                new_tat: tat.saturating_add(interval),
            }
        } else {
            Decision::Deny {
                retry_after: tat.saturating_add(-tolerance),
            }
        }
    }

    #[test]
    fn a_spacing_of_a_fraction_of_a_millisecond_is_rounded_up_not_down() {
        // Found by an audit: 1000 per 1.999 s spaced events 1 ms apart.
        let l = RateLimit::new(1_000, Duration::milliseconds(1_999)).unwrap();
        let (mut tat, mut allowed) = (None, 0u32);
        for ms in 0..20_000 {
            if let Decision::Allow { new_tat } = l.decide(tat, Timestamp::from_millis(ms)) {
                tat = Some(new_tat);
                allowed += 1;
            }
        }
        // At most the burst and then one per 2 ms: never above 1000 per
        // 1.999 s plus the burst.
        assert!(allowed <= 1_000 + 20_000 / 2, "{allowed}");
        assert!(f64::from(allowed) <= 1_000.0 + 20_000.0 * 1_000.0 / 1_999.0);
        // The burst stays whole whatever the rounding: 3 per second, or 600.
        for count in [3u32, 7, 600, 1_000] {
            let l = RateLimit::new(count, Duration::seconds(1)).unwrap();
            let (mut tat, mut burst) = (None, 0u32);
            while let Decision::Allow { new_tat } = l.decide(tat, Timestamp::from_millis(0)) {
                tat = Some(new_tat);
                burst += 1;
            }
            assert_eq!(burst, count);
        }
    }

    #[test]
    fn rates_finer_than_a_millisecond_are_refused_at_build() {
        // Kept in milliseconds, such a limit would never move its state.
        assert!(RateLimit::new(2_000, Duration::seconds(1)).is_err());
        assert!(RateLimit::new(1_001, Duration::seconds(1)).is_err());
        let l = RateLimit::new(1_000, Duration::seconds(1)).unwrap();
        let mut tat = None;
        let now = Timestamp::from_millis(0);
        for _ in 0..1_000 {
            match l.decide(tat, now) {
                Decision::Allow { new_tat } => tat = Some(new_tat),
                d => panic!("{d:?}"),
            }
        }
        assert!(matches!(l.decide(tat, now), Decision::Deny { .. }));
    }

    #[test]
    fn extreme_states_match_the_reference() {
        let l = RateLimit::new(7, Duration::days(7)).unwrap();
        let edges = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for now in edges {
            for tat in edges {
                let (now, tat) = (Timestamp::from_millis(now), Timestamp::from_millis(tat));
                assert_eq!(l.decide(Some(tat), now), reference(&l, Some(tat), now));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn integer_arithmetic_equals_the_duration_reference(
            count in 1u32..=1_000_000_000,
            period_ms in 1_000i64..=604_800_000,
            extra_ns in 0i64..1_000_000,
            now in -1_000_000_000_000i64..4_000_000_000_000,
            ahead in proptest::option::of(-1_000_000_000i64..2_000_000_000),
        ) {
            let period = Duration::milliseconds(period_ms) + Duration::nanoseconds(extra_ns);
            let Ok(l) = RateLimit::new(count, period) else { return Ok(()) };
            let now = Timestamp::from_millis(now);
            let tat = ahead.map(|a| Timestamp::from_millis(now.as_millis() + a));
            proptest::prop_assert_eq!(l.decide(tat, now), reference(&l, tat, now));
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn allows_the_burst_then_one_per_interval() {
        let l = RateLimit::new(5, Duration::minutes(10)).unwrap();
        let mut tat = None;
        for _ in 0..5 {
            match l.decide(tat, at(0)) {
                Decision::Allow { new_tat } => tat = Some(new_tat),
                d => panic!("{d:?}"),
            }
        }
        assert_eq!(tat, Some(at(600)));
        assert_eq!(
            l.decide(tat, at(0)),
            Decision::Deny {
                retry_after: at(120)
            }
        );
        assert_eq!(
            l.decide(tat, at(119)),
            Decision::Deny {
                retry_after: at(120)
            }
        );
        assert_eq!(l.decide(tat, at(120)), Decision::Allow { new_tat: at(720) });
        // After a full quiet period the whole burst is available again.
        let fresh = l.decide(Some(at(720)), at(720));
        assert_eq!(fresh, Decision::Allow { new_tat: at(840) });
    }

    #[test]
    fn one_per_period() {
        let l = RateLimit::new(1, Duration::seconds(30)).unwrap();
        let Decision::Allow { new_tat } = l.decide(None, at(0)) else {
            panic!()
        };
        assert_eq!(
            l.decide(Some(new_tat), at(29)),
            Decision::Deny {
                retry_after: at(30)
            }
        );
        assert!(matches!(
            l.decide(Some(new_tat), at(30)),
            Decision::Allow { .. }
        ));
    }
}
