//! [`Policy`]: how long codes live, how many tries and resends a challenge
//! gets, and how a subject is locked after repeated failures. Every number
//! has a default with its source in the README; all are checked at
//! [`VerifierBuilder::build`](crate::VerifierBuilder::build).

use std::collections::HashMap;

use time::Duration;

use crate::code::CodeFormat;
use crate::error::ConfigError;
use crate::gcra::RateLimit;
use crate::limits::{ConversionGuard, CountryFilter, FailureDelay, Limit};
use crate::purpose::Purpose;
use crate::record::MAX_LIVE_CODES;

/// What happens when a subject reaches its limit of failures.
///
/// ```
/// use vericode::Lockout;
/// use time::Duration;
/// let l = Lockout::For(Duration::hours(1));
/// assert_ne!(l, Lockout::UntilUnlocked);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lockout {
    /// Locked for this long after each failure at or past the limit. The
    /// failure count is not reset when the lock ends, so after it ends the
    /// subject has one attempt per lock period, until the failure memory
    /// passes or an [`unlock`](crate::Verifier::unlock).
    For(Duration),
    /// Locked until the application calls
    /// [`Verifier::unlock`](crate::Verifier::unlock).
    UntilUnlocked,
}

/// The rules of challenges.
///
/// ```
/// use vericode::{CodeFormat, Lockout, Policy, Purpose};
/// use time::Duration;
///
/// let policy = Policy::default()
///     .code_format(CodeFormat::digits(8)?)
///     .lifetime(Duration::minutes(5))
///     .lifetime_for(Purpose::PasswordReset, Duration::minutes(15))
///     .max_attempts(3)
///     .lockout(Lockout::UntilUnlocked);
/// assert_eq!(policy.lifetime_of(&Purpose::PasswordReset), Duration::minutes(15));
/// assert_eq!(policy.lifetime_of(&Purpose::StepUp), Duration::minutes(5));
/// # Ok::<(), vericode::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) format: CodeFormat,
    pub(crate) lifetime: Duration,
    pub(crate) lifetimes: HashMap<Purpose, Duration>,
    pub(crate) max_attempts: u32,
    pub(crate) max_live_codes: u32,
    pub(crate) max_sends: u32,
    pub(crate) resend_cooldown: Duration,
    pub(crate) max_resend_cooldown: Duration,
    pub(crate) max_failures: u32,
    pub(crate) lockout: Lockout,
    pub(crate) failure_memory: Duration,
    pub(crate) allow_short_codes: bool,
    /// The rate limits that are on, at most one per [`Limit`]: an issue reads
    /// several, and a short list costs no hashing.
    pub(crate) limits: Vec<(Limit, RateLimit)>,
    pub(crate) conversion_guard: Option<ConversionGuard>,
    pub(crate) countries: CountryFilter,
    pub(crate) failure_delay: Option<FailureDelay>,
    pub(crate) max_guess_probability: f64,
    pub(crate) max_yearly_guess_probability: f64,
    pub(crate) device_lifetime: Duration,
}

/// The worst-case chance that an attacker guesses a code (RFC 4226 §6).
///
/// ```
/// let odds = vericode::Policy::default().guess_odds();
/// assert!((odds.per_challenge - 1.5e-5).abs() < 1e-12);
/// assert!((odds.over_failure_budget - 1e-4).abs() < 1e-12);
/// // Five budgets of 100 (forgotten after 90 days), six windows in which
/// // successes may forgive 10, and one guess a day after a 24-hour lock.
/// assert!((odds.over_a_year - 925e-6).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct GuessOdds {
    /// Guessing at one challenge: live codes × attempts / code space.
    pub per_challenge: f64,
    /// Guessing across all of a subject's challenges until its failure budget
    /// is spent: failures / code space. Each wrong guess counts once per live
    /// code it was compared with, so the budget bounds comparisons, whatever
    /// the number of live codes.
    pub over_failure_budget: f64,
    /// Guessing at one subject for a year: a failure budget for each time
    /// the count can be forgotten (the year over the failure memory, and
    /// one: an attacker who stops short of the lock and waits out the memory
    /// starts afresh), what successes may forgive in each window of one
    /// failure memory (one window more than budgets: one opened before the
    /// year reaches into it), and one comparison per lock period of a
    /// [`Lockout::For`] (or per failure delay at the budget, if that is
    /// longer). A [`Lockout::UntilUnlocked`] admits
    /// none past a budget (each [`unlock`](crate::Verifier::unlock) is the
    /// application's decision to grant a new one). A success forgives only
    /// the failures of its own challenge, at most a tenth of the budget (at
    /// least one) per failure memory: an attacker who guesses at the very
    /// challenge its owner then completes gets no more than that back,
    /// however often the owner signs in.
    pub over_a_year: f64,
}

/// The span [`GuessOdds::over_a_year`] counts over: 365 days.
const YEAR: Duration = Duration::days(365);

impl Default for Policy {
    /// The defaults: 6 digits, 10 minutes, 5 attempts, 3 live codes, 5 sends
    /// per challenge, resend cooldown 30 s doubling up to 5 minutes, 100
    /// failures per subject, then locked for 24 hours per failure,
    /// failures remembered for 90 days.
    fn default() -> Self {
        Policy {
            format: CodeFormat::default(),
            lifetime: Duration::minutes(10),
            lifetimes: HashMap::new(),
            max_attempts: 5,
            max_live_codes: 3,
            max_sends: 5,
            resend_cooldown: Duration::seconds(30),
            max_resend_cooldown: Duration::minutes(5),
            max_failures: 100,
            lockout: Lockout::For(Duration::hours(24)),
            failure_memory: Duration::days(90),
            allow_short_codes: false,
            limits: vec![
                (Limit::Destination, rate(5, Duration::minutes(10))),
                (Limit::Subject, rate(10, Duration::hours(1))),
                (Limit::Client, rate(20, Duration::hours(1))),
                (Limit::VerifyClient, rate(50, Duration::hours(1))),
            ],
            conversion_guard: Some(ConversionGuard::standard()),
            countries: CountryFilter::Any,
            failure_delay: Some(FailureDelay::standard()),
            max_guess_probability: 1e-4,
            max_yearly_guess_probability: 1e-3,
            device_lifetime: Duration::days(30),
        }
    }
}

fn rate(count: u32, period: Duration) -> RateLimit {
    // Constant, valid arguments.
    RateLimit::new(count, period).unwrap_or_else(|_| unreachable!())
}

impl Policy {
    /// The policy that follows NIST SP 800-63B-4 most closely: 6 digits, 10
    /// minutes, only the most recent code accepted, 100 failures.
    ///
    /// ```
    /// let p = vericode::Policy::nist();
    /// assert!(p.guess_odds().per_challenge <= 5e-6);
    /// ```
    pub fn nist() -> Self {
        Policy::default().max_live_codes(1)
    }

    /// A stricter policy for high-value actions: 8 unambiguous alphanumerics
    /// (about 8.5e11 codes), 5 minutes, 3 attempts, one live code, 20
    /// failures.
    ///
    /// ```
    /// let p = vericode::Policy::strict();
    /// assert!(p.guess_odds().over_failure_budget < 1e-10);
    /// ```
    pub fn strict() -> Self {
        Policy::default()
            .code_format(CodeFormat::unambiguous(8).unwrap_or_default())
            .lifetime(Duration::minutes(5))
            .max_attempts(3)
            .max_live_codes(1)
            .max_failures(20)
    }

    /// Sets a rate limit (see [`Limit`] for the dimensions and defaults).
    /// [`Limit::ConversionGuard`] is set with [`Policy::conversion_guard`].
    pub fn limit(mut self, limit: Limit, rate: RateLimit) -> Self {
        self.limits.retain(|(on, _)| *on != limit);
        self.limits.push((limit, rate));
        self
    }

    /// Turns a rate limit off.
    pub fn unlimited(mut self, limit: Limit) -> Self {
        self.limits.retain(|(on, _)| *on != limit);
        if limit == Limit::ConversionGuard {
            self.conversion_guard = None;
        }
        self
    }

    /// The rate limit of a dimension, if it is on.
    pub fn rate_limit(&self, limit: Limit) -> Option<RateLimit> {
        self.limits
            .iter()
            .find(|(on, _)| *on == limit)
            .map(|(_, rate)| *rate)
    }

    /// Sets the conversion guard against SMS pumping (default: 1 hour, 50
    /// sends, 20 % verified).
    pub fn conversion_guard(mut self, guard: ConversionGuard) -> Self {
        self.conversion_guard = Some(guard);
        self
    }

    /// Which countries phone destinations may be in (default: any).
    pub fn countries(mut self, filter: CountryFilter) -> Self {
        self.countries = filter;
        self
    }

    /// The growing delay after a subject's failures (default: after 5, 30 s
    /// doubling up to 1 hour).
    pub fn failure_delay(mut self, delay: FailureDelay) -> Self {
        self.failure_delay = Some(delay);
        self
    }

    /// No delay after failures (the hard failure limit still applies).
    pub fn no_failure_delay(mut self) -> Self {
        self.failure_delay = None;
        self
    }

    /// How long a remembered device skips challenges (default 30 days; 1 hour
    /// to 400 days).
    pub fn device_lifetime(mut self, d: Duration) -> Self {
        self.device_lifetime = d;
        self
    }

    /// Every abuse limit off: rate limits, conversion guard, failure delay.
    /// For tests and for applications that limit upstream; the attempt and
    /// failure limits stay.
    pub fn without_abuse_limits(mut self) -> Self {
        self.limits.clear();
        self.conversion_guard = None;
        self.failure_delay = None;
        self
    }

    /// Accepts a policy whose guess odds over the failure budget are up to
    /// `bound` (default 1e-4: 100 guesses at 6 digits). `build()` refuses a
    /// policy above its bound, and one above the bound over a year
    /// ([`Policy::max_guess_probability_per_year`]), which a larger budget may
    /// need raised too.
    pub fn max_guess_probability(mut self, bound: f64) -> Self {
        self.max_guess_probability = bound;
        self
    }

    /// Accepts a policy whose guess odds over a year of guessing at one
    /// subject ([`GuessOdds::over_a_year`]) are up to `bound` (default 1e-3,
    /// ten times the budget's bound: the defaults' five budgets of 100 (the
    /// 90-day failure memory), the 10 failures successes may forgive in each
    /// of six windows, and one guess a day after a lock come to 9.25e-4).
    /// `build()` refuses a policy above it: with the other defaults, a timed
    /// lockout shorter than about 20 hours or a failure memory of 73 days or
    /// less, which would let an attacker keep guessing at one account all
    /// year. The owner's
    /// sign-ins are counted in it: a success forgives only the failures of
    /// its own challenge, at most a tenth of the budget per failure memory
    /// (see [`GuessOdds::over_a_year`] and README, "Guess odds").
    ///
    /// ```
    /// use time::Duration;
    /// use vericode::{Lockout, Policy};
    /// let hourly = Policy::default().lockout(Lockout::For(Duration::hours(1)));
    /// // 5 × 100 + 6 × 10 + 8,760 guesses a year at 10^6 codes.
    /// assert!((hourly.guess_odds().over_a_year - 9_320e-6).abs() < 1e-12);
    /// ```
    pub fn max_guess_probability_per_year(mut self, bound: f64) -> Self {
        self.max_yearly_guess_probability = bound;
        self
    }

    /// The most failures successes forgive a subject per failure memory: a
    /// tenth of the budget, at least one. (Each success forgives only its own
    /// challenge's; without a cap, an attacker who guesses at the challenge
    /// its owner then completes would get that many back at every sign-in.)
    pub(crate) fn forgiveness_cap(&self) -> u32 {
        (self.max_failures / 10).max(1)
    }

    /// The worst-case guess odds of this policy.
    pub fn guess_odds(&self) -> GuessOdds {
        let space = self.format.space();
        let after_budget = match self.lockout {
            Lockout::UntilUnlocked => 0.0,
            Lockout::For(lock) => {
                let delay = self
                    .failure_delay
                    .map_or(Duration::ZERO, |d| d.after(self.max_failures));
                // A lock shorter than a millisecond is refused at build; the
                // floor keeps the figure finite for any policy.
                let period = lock.max(delay).max(Duration::milliseconds(1));
                (YEAR / period).floor()
            }
        };
        // Each forgetting is at least a failure memory after the budget it
        // ends began (the memory is at least a day: `validate`).
        let budgets = (YEAR / self.failure_memory.max(Duration::days(1))).floor() + 1.0;
        // Windows of forgiveness start a memory apart too, but one opened
        // just before the year reaches into it as well (a review): one more.
        let windows = budgets + 1.0;
        GuessOdds {
            per_challenge: f64::from(self.max_live_codes) * f64::from(self.max_attempts) / space,
            over_failure_budget: f64::from(self.max_failures) / space,
            over_a_year: (budgets * f64::from(self.max_failures)
                + windows * f64::from(self.forgiveness_cap())
                + after_budget)
                / space,
        }
    }

    /// The shape of codes (default: 6 digits). Codes with fewer than a million
    /// possibilities are refused at build unless [`Policy::allow_short_codes`].
    pub fn code_format(mut self, format: CodeFormat) -> Self {
        self.format = format;
        self
    }

    /// Accepts code formats with fewer than 10^6 possibilities (below NIST SP
    /// 800-63B-4's minimum). Only for low-value uses.
    ///
    /// The odds bounds still hold: a short code must also fit
    /// [`max_guess_probability`](Self::max_guess_probability) (per challenge
    /// and over the failure budget) and
    /// [`max_guess_probability_per_year`](Self::max_guess_probability_per_year),
    /// so it usually takes raising both, or fewer attempts and failures.
    ///
    /// ```
    /// use vericode::*;
    /// let build = |policy: Policy| {
    ///     Verifier::builder()
    ///         .store(MemoryStore::new())
    ///         .delivery(RecordingDelivery::new())
    ///         .signing_key(KeyId::new(1), SecretKey::generate())
    ///         .app_name("Acme")
    ///         .policy(policy)
    ///         .build()
    /// };
    /// let four = Policy::default()
    ///     .code_format(CodeFormat::digits(4)?)
    ///     .allow_short_codes();
    /// assert!(matches!(build(four.clone()), Err(ConfigError::GuessOdds { .. })));
    /// let knowingly = four
    ///     .max_guess_probability(0.5)
    ///     .max_guess_probability_per_year(1.0);
    /// assert!(build(knowingly).is_ok());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn allow_short_codes(mut self) -> Self {
        self.allow_short_codes = true;
        self
    }

    /// How long a challenge lives, for purposes without their own (default 10
    /// minutes; 1 minute to 24 hours).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// How long challenges for `purpose` live.
    pub fn lifetime_for(mut self, purpose: Purpose, lifetime: Duration) -> Self {
        self.lifetimes.insert(purpose, lifetime);
        self
    }

    /// Attempts per challenge (default 5; 1 to 20).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Codes of one challenge that verify at once (default 3; 1 to 10): after
    /// a resend, codes still in transit keep working; the oldest is dropped
    /// when the limit is reached.
    pub fn max_live_codes(mut self, n: u32) -> Self {
        self.max_live_codes = n;
        self
    }

    /// Codes sent per challenge, the first included (default 5; 1 to 20).
    pub fn max_sends(mut self, n: u32) -> Self {
        self.max_sends = n;
        self
    }

    /// The wait before the first resend, doubling with each resend up to
    /// `max` (default 30 s, up to 5 minutes).
    pub fn resend_cooldown(mut self, first: Duration, max: Duration) -> Self {
        self.resend_cooldown = first;
        self.max_resend_cooldown = max;
        self
    }

    /// Failures of one subject across all its challenges before it is locked
    /// (default 100, NIST SP 800-63B-4 §3.2.2; 1 to 1000). A success forgives
    /// the failures of its own challenge (the person's typos before the right
    /// code) and no others, so an attacker's guesses at other challenges stay
    /// counted through the owner's sign-ins; an unlock clears the count, and
    /// the failure memory forgets it.
    pub fn max_failures(mut self, n: u32) -> Self {
        self.max_failures = n;
        self
    }

    /// What happens at the failure limit (default: locked 24 hours per
    /// failure). Each timed lock admits one more guess when it ends, so a
    /// short one fails `build()` by the odds over a year
    /// ([`Policy::max_guess_probability_per_year`]).
    pub fn lockout(mut self, lockout: Lockout) -> Self {
        self.lockout = lockout;
        self
    }

    /// How long a subject's failure count is kept after its last failure, or
    /// after its lock ends, whichever is later (default 90 days; at least 1
    /// day and at least the lockout): a bound on storage for subjects that
    /// stop trying (a record that remembers forgiven failures is kept until
    /// its window of forgiveness, one memory long, has passed too). Each
    /// forgetting gives an attacker a fresh budget, so with
    /// the other defaults a memory of 73 days or less fails `build()` by the
    /// odds over a year ([`Policy::max_guess_probability_per_year`]).
    pub fn failure_memory(mut self, d: Duration) -> Self {
        self.failure_memory = d;
        self
    }

    /// The lifetime of challenges for `purpose`.
    pub fn lifetime_of(&self, purpose: &Purpose) -> Duration {
        self.lifetimes
            .get(purpose)
            .copied()
            .unwrap_or(self.lifetime)
    }

    /// The code format.
    pub fn format(&self) -> &CodeFormat {
        &self.format
    }

    /// Attempts per challenge.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before resend number `n` (1 for the first resend).
    pub(crate) fn cooldown_before(&self, n: u32) -> Duration {
        let factor = 1i32
            .checked_shl(n.saturating_sub(1).min(20))
            .unwrap_or(i32::MAX);
        self.resend_cooldown
            .checked_mul(factor)
            .unwrap_or(self.max_resend_cooldown)
            .min(self.max_resend_cooldown)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let lifetime_ok = |d: &Duration| *d >= Duration::minutes(1) && *d <= Duration::hours(24);
        if !lifetime_ok(&self.lifetime) || !self.lifetimes.values().all(lifetime_ok) {
            return Err(ConfigError::Policy(
                "lifetimes must be between 1 minute and 24 hours",
            ));
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err(ConfigError::Policy("max_attempts must be 1 to 20"));
        }
        if !(1..=MAX_LIVE_CODES as u32).contains(&self.max_live_codes) {
            return Err(ConfigError::Policy("max_live_codes must be 1 to 10"));
        }
        if !(1..=20).contains(&self.max_sends) {
            return Err(ConfigError::Policy("max_sends must be 1 to 20"));
        }
        if self.resend_cooldown.is_negative() || self.max_resend_cooldown < self.resend_cooldown {
            return Err(ConfigError::Policy(
                "resend cooldown must be >= 0 and <= its maximum",
            ));
        }
        if !(1..=1000).contains(&self.max_failures) {
            return Err(ConfigError::Policy("max_failures must be 1 to 1000"));
        }
        if let Lockout::For(d) = self.lockout
            && (d < Duration::minutes(1) || d > self.failure_memory)
        {
            return Err(ConfigError::Policy(
                "a lockout lasts at least 1 minute and at most the failure memory",
            ));
        }
        if self.failure_memory < Duration::days(1) {
            return Err(ConfigError::Policy("failure_memory must be at least 1 day"));
        }
        if self.format.space() < 1e6 && !self.allow_short_codes {
            return Err(ConfigError::Policy(
                "codes with fewer than 10^6 possibilities need allow_short_codes()",
            ));
        }
        if self.device_lifetime < Duration::hours(1) || self.device_lifetime > Duration::days(400) {
            return Err(ConfigError::Policy(
                "device_lifetime must be 1 hour to 400 days",
            ));
        }
        let odds = self.guess_odds();
        if !(self.max_guess_probability > 0.0 && self.max_guess_probability <= 1.0) {
            return Err(ConfigError::Policy(
                "max_guess_probability must be in (0, 1]",
            ));
        }
        if odds.over_failure_budget > self.max_guess_probability
            || odds.per_challenge > self.max_guess_probability
        {
            return Err(ConfigError::GuessOdds {
                odds: odds.over_failure_budget.max(odds.per_challenge),
                bound: self.max_guess_probability,
            });
        }
        if !(self.max_yearly_guess_probability > 0.0 && self.max_yearly_guess_probability <= 1.0) {
            return Err(ConfigError::Policy(
                "max_guess_probability_per_year must be in (0, 1]",
            ));
        }
        if odds.over_a_year > self.max_yearly_guess_probability {
            return Err(ConfigError::YearlyGuessOdds {
                odds: odds.over_a_year,
                bound: self.max_yearly_guess_probability,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_doubles_up_to_its_cap() {
        let p = Policy::default();
        let secs: Vec<i64> = (1..=6)
            .map(|n| p.cooldown_before(n).whole_seconds())
            .collect();
        assert_eq!(secs, [30, 60, 120, 240, 300, 300]);
        assert_eq!(p.cooldown_before(u32::MAX), Duration::minutes(5));
    }

    #[test]
    fn odds_and_presets() {
        let d = Policy::default().guess_odds();
        assert_eq!(d.over_failure_budget, 1e-4);
        assert!(Policy::default().validate().is_ok());
        assert!(Policy::nist().validate().is_ok());
        assert!(Policy::strict().validate().is_ok());
        assert_eq!(Policy::strict().format().len(), 8);
        // 7 digits with 1000 failures would be 1e-4 too; 6 digits with 101 is over.
        assert!(matches!(
            Policy::default().max_failures(101).validate(),
            Err(ConfigError::GuessOdds { .. })
        ));
        assert!(
            Policy::default()
                .max_failures(101)
                .max_guess_probability(2e-4)
                .validate()
                .is_ok()
        );
        assert!(
            Policy::default()
                .code_format(CodeFormat::digits(7).unwrap())
                .max_failures(1000)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn validation_refuses_out_of_range() {
        assert!(Policy::default().validate().is_ok());
        assert!(Policy::default().max_attempts(0).validate().is_err());
        assert!(Policy::default().max_attempts(21).validate().is_err());
        assert!(Policy::default().max_live_codes(11).validate().is_err());
        assert!(
            Policy::default()
                .lifetime(Duration::seconds(59))
                .validate()
                .is_err()
        );
        assert!(
            Policy::default()
                .lifetime_for(Purpose::StepUp, Duration::days(2))
                .validate()
                .is_err()
        );
        assert!(Policy::default().max_failures(0).validate().is_err());
        assert!(
            Policy::default()
                .failure_memory(Duration::hours(1))
                .validate()
                .is_err()
        );
        assert!(
            Policy::default()
                .lockout(Lockout::For(Duration::days(91)))
                .validate()
                .is_err()
        );
        let four = CodeFormat::digits(4).unwrap();
        assert!(
            Policy::default()
                .code_format(four.clone())
                .validate()
                .is_err()
        );
        let short = Policy::default().code_format(four).allow_short_codes();
        assert!(matches!(
            short.clone().validate(),
            Err(ConfigError::GuessOdds { .. })
        ));
        // Five budgets of 10, six windows of 1 forgiven, and one guess a day:
        // (56 + 365) / 10^4 a year.
        let low = short.max_failures(10).max_guess_probability(1e-2);
        assert!(matches!(
            low.clone().validate(),
            Err(ConfigError::YearlyGuessOdds { odds, .. }) if (odds - 0.0421).abs() < 1e-12
        ));
        assert!(low.max_guess_probability_per_year(0.05).validate().is_ok());
        assert!(
            Policy::default()
                .resend_cooldown(Duration::minutes(2), Duration::minutes(1))
                .validate()
                .is_err()
        );
    }
}
