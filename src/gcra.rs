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
    /// `count` events per `period`: `count` at least 1, `period` 1 second to 7 days.
    pub fn new(count: u32, period: Duration) -> Result<Self, ConfigError> {
        if count == 0 || period < Duration::seconds(1) || period > Duration::days(7) {
            return Err(ConfigError::Policy(
                "a rate limit allows at least 1 event per 1 s to 7 days",
            ));
        }
        Ok(RateLimit { count, period })
    }

    /// Events per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The spacing of events in the long run.
    fn emission_interval(&self) -> Duration {
        self.period / self.count
    }

    /// Asks for one event at `now`, given the stored TAT (`None` for a fresh key).
    pub(crate) fn decide(&self, tat: Option<Timestamp>, now: Timestamp) -> Decision {
        let interval = self.emission_interval();
        let tolerance = self.period - interval;
        let tat = tat.map_or(now, |t| t.max(now));
        // Allowed while the TAT is no further ahead of now than the burst tolerance.
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
