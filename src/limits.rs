//! Abuse limits: which [`Limit`] tripped, the country filter for phone
//! destinations, the conversion guard against SMS pumping, the growing delay
//! after a subject's failures, and the [`ClientKey`] applications pass to
//! limit per client.
//!
//! The rate arithmetic is in `gcra.rs`; the records in `record.rs`; the
//! checks themselves in the verifier.

use std::fmt;
use std::sync::Arc;

use time::Duration;

use crate::clock::Timestamp;
use crate::error::{ConfigError, InputError};

/// A rate limit dimension: what was counted when a limit tripped.
///
/// ```
/// use vericode::Limit;
/// assert_eq!(Limit::Destination.as_str(), "destination");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Codes sent to one phone number or address (default 5 per 10 minutes, as Twilio Verify).
    Destination,
    /// Codes sent to one country calling code or email domain (default off).
    DestinationPrefix,
    /// Codes sent for one subject (default 10 per hour).
    Subject,
    /// Codes requested by one client key: an IP address, a session, a device (default 20 per hour).
    Client,
    /// Codes sent in all (default off: size it to your SMS budget).
    Global,
    /// Verification attempts by one client key across challenges (default 50 per hour).
    VerifyClient,
    /// Codes sent to a phone number range whose recent codes are rarely
    /// verified (SMS pumping): see [`ConversionGuard`].
    ConversionGuard,
}

impl Limit {
    /// A stable name, for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Limit::Destination => "destination",
            Limit::DestinationPrefix => "destination_prefix",
            Limit::Subject => "subject",
            Limit::Client => "client",
            Limit::Global => "global",
            Limit::VerifyClient => "verify_client",
            Limit::ConversionGuard => "conversion_guard",
        }
    }

    pub(crate) fn id(&self) -> u8 {
        match self {
            Limit::Destination => 1,
            Limit::DestinationPrefix => 2,
            Limit::Subject => 3,
            Limit::Client => 4,
            Limit::Global => 5,
            Limit::VerifyClient => 6,
            Limit::ConversionGuard => 7,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking, as the application knows it: an IP address, a session id, a
/// device id. Used only as a rate limit key (hashed before it is stored).
///
/// ```
/// use vericode::ClientKey;
/// let c = ClientKey::new("ip:203.0.113.7")?;
/// assert_eq!(c.as_str(), "ip:203.0.113.7");
/// assert!(ClientKey::new("").is_err());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ClientKey(Arc<str>);

impl ClientKey {
    /// A client key: 1 to 256 bytes.
    pub fn new(key: &str) -> Result<ClientKey, InputError> {
        if key.is_empty() || key.len() > 256 {
            return Err(InputError::ClientKey);
        }
        Ok(ClientKey(Arc::from(key)))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which phone destinations may receive codes, by country calling code.
///
/// The countries that share +1 with the United States and Canada (the
/// Caribbean and Bermuda, [`NANP_COUNTRIES`]) have codes of their own, "1"
/// and the country's first area code: Jamaica is "1876" (its 658 numbers
/// too), the Dominican Republic "1809" (its 829 and 849 numbers too). Where
/// "1" is ambiguous it errs on refusing: in an allow list it admits the
/// United States, Canada and their territories only, in a deny list it
/// refuses every +1 number.
///
/// ```
/// use vericode::{CountryFilter, Destination};
/// let only = CountryFilter::allow(&["1", "44"])?;
/// assert!(only.permits("44"));
/// assert!(!only.permits("33"));
/// let jamaica = Destination::sms("+16585550123").unwrap();
/// assert_eq!(jamaica.calling_code(), Some("1876"));
/// assert!(!only.permits("1876"));
/// assert!(!CountryFilter::deny(&["1"])?.permits("1876"));
/// assert!(!CountryFilter::deny(&["1876", "1809"])?.permits("1876"));
/// assert!(CountryFilter::deny(&["0"]).is_err());
/// assert!(CountryFilter::deny(&["1415"]).is_err());
/// assert!(CountryFilter::deny(&["1658"]).is_err(), "Jamaica is 1876");
/// // Not whole codes: +88x numbers are "880" to "888", +1 2… numbers "1".
/// assert!(CountryFilter::deny(&["88"]).is_err());
/// assert!(CountryFilter::deny(&["12"]).is_err());
/// assert!(CountryFilter::deny(&["2"]).is_err());
/// assert!(CountryFilter::deny(&["882", "7", "44"]).is_ok());
/// # Ok::<(), vericode::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CountryFilter {
    /// Every country (the default).
    #[default]
    Any,
    /// Only these calling codes.
    Allow(Vec<String>),
    /// Every calling code but these.
    Deny(Vec<String>),
}

impl CountryFilter {
    /// Only numbers with these calling codes ("1", "44", "351", "1876"…).
    pub fn allow(codes: &[&str]) -> Result<Self, ConfigError> {
        Ok(CountryFilter::Allow(Self::check(codes)?))
    }

    /// Every number except those with these calling codes.
    pub fn deny(codes: &[&str]) -> Result<Self, ConfigError> {
        Ok(CountryFilter::Deny(Self::check(codes)?))
    }

    fn check(codes: &[&str]) -> Result<Vec<String>, ConfigError> {
        codes
            .iter()
            .map(|c| {
                // A code must be as long as the calling codes that start
                // with it: "88" or "12" would match no number (+882's code is
                // "882", +1 2…'s is "1"), so a deny list would deny nothing.
                let country = (1..=3).contains(&c.len())
                    && c.bytes().all(|b| b.is_ascii_digit())
                    && !c.starts_with('0')
                    && country_code_len(c) == c.len();
                let nanp = NANP_COUNTRIES.iter().any(|(_, code)| code == c);
                (country || nanp)
                    .then(|| (*c).to_owned())
                    .ok_or(ConfigError::Policy(
                        "calling codes are whole country codes (1, 44, 351, not 88 or 12) or \
                         one of NANP_COUNTRIES's (1876)",
                    ))
            })
            .collect()
    }

    /// `true` if numbers with this calling code may receive codes. A NANP
    /// country's other area codes name it too ("1658" is Jamaica, "1876"),
    /// in the list and in the question.
    pub fn permits(&self, calling_code: &str) -> bool {
        if let CountryFilter::Any = self {
            return true;
        }
        fn country(code: &str) -> &str {
            nanp_country(code).unwrap_or(code)
        }
        let asked = country(calling_code);
        let names = |c: &String| country(c) == asked;
        match self {
            CountryFilter::Any => true,
            CountryFilter::Allow(list) => list.iter().any(names),
            // "1" refuses the NANP countries of their own too.
            CountryFilter::Deny(list) => !list
                .iter()
                .any(|c| names(c) || (c == "1" && asked.starts_with('1'))),
        }
    }
}

/// The conversion guard against SMS pumping: pumped numbers never verify, so
/// when a number range (a phone number's country and the next three digits:
/// `+1 415`, `+44 770`, `+1876 555`) has had at least `min_sends` codes in
/// the last `window` and fewer than `min_ratio` of them were verified,
/// further sends to it (by SMS or voice) are refused until the window moves
/// on. A range whose codes are verified at `min_ratio` or better is never
/// throttled by it, nor is one with fewer than `min_sends` sends.
///
/// It counts ranges, not countries, because anyone can make unverified sends:
/// a range is what they can throttle, not a whole country. The price: a
/// pumper with numbers in many ranges of one country gets up to
/// `min_sends - 1` unverified sends per window in each. It does not count
/// email, which is not pumped (a message costs next to nothing): counted by
/// domain, a few dozen unverified sends would throttle every code to
/// gmail.com. For a budget per country or domain, see
/// [`Limit::DestinationPrefix`]; for the whole cost, [`Limit::Global`].
///
/// ```
/// use vericode::ConversionGuard;
/// use time::Duration;
/// let guard = ConversionGuard::new(Duration::hours(1), 50, 0.2)?;
/// assert_eq!(guard.min_sends(), 50);
/// # Ok::<(), vericode::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConversionGuard {
    window: Duration,
    min_sends: u32,
    min_ratio: f64,
}

impl ConversionGuard {
    /// A guard: `window` 1 minute to 7 days, `min_sends` at least 1,
    /// `min_ratio` in (0, 1].
    pub fn new(window: Duration, min_sends: u32, min_ratio: f64) -> Result<Self, ConfigError> {
        if window < Duration::minutes(1)
            || window > Duration::days(7)
            || min_sends == 0
            || !(min_ratio > 0.0 && min_ratio <= 1.0)
        {
            return Err(ConfigError::Policy(
                "conversion guard: window 1 min..7 days, min_sends >= 1, 0 < min_ratio <= 1",
            ));
        }
        Ok(ConversionGuard {
            window,
            min_sends,
            min_ratio,
        })
    }

    /// The default: 1 hour, 50 sends, 20 % verified.
    pub fn standard() -> Self {
        ConversionGuard {
            window: Duration::hours(1),
            min_sends: 50,
            min_ratio: 0.2,
        }
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Sends in a window below which the guard never trips.
    pub fn min_sends(&self) -> u32 {
        self.min_sends
    }

    /// The share of sends that must be verified.
    pub fn min_ratio(&self) -> f64 {
        self.min_ratio
    }

    /// Sends and verifications over the sliding window, estimated from the
    /// current fixed window and the previous one, weighted by overlap.
    pub(crate) fn estimate(
        &self,
        r: &crate::record::ConversionRecord,
        now: Timestamp,
    ) -> (f64, f64) {
        let r = self.roll(r, now);
        let elapsed = now.since(r.window_start).as_seconds_f64();
        let weight = (1.0 - elapsed / self.window.as_seconds_f64()).clamp(0.0, 1.0);
        (
            f64::from(r.prev_sends) * weight + f64::from(r.sends),
            f64::from(r.prev_verified) * weight + f64::from(r.verified),
        )
    }

    /// `Some(retry_after)` if sends to this range are throttled at `now`.
    pub(crate) fn throttled(
        &self,
        r: &crate::record::ConversionRecord,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let (sends, verified) = self.estimate(r, now);
        if sends >= f64::from(self.min_sends) && verified < self.min_ratio * sends {
            let r = self.roll(r, now);
            Some(r.window_start.saturating_add(self.window))
        } else {
            None
        }
    }

    /// The start of the fixed window that contains `t`.
    pub(crate) fn window_start(&self, t: Timestamp) -> Timestamp {
        let w = self.window.whole_milliseconds().max(1) as i64;
        Timestamp::from_millis(t.as_millis().div_euclid(w) * w)
    }

    /// The record moved to the window that contains `now`.
    pub(crate) fn roll(
        &self,
        r: &crate::record::ConversionRecord,
        now: Timestamp,
    ) -> crate::record::ConversionRecord {
        let w = self.window.whole_milliseconds().max(1) as i64;
        let start = self.window_start(now);
        if start == r.window_start {
            r.clone()
        } else if start.as_millis().checked_sub(r.window_start.as_millis()) == Some(w) {
            crate::record::ConversionRecord {
                window_start: start,
                sends: 0,
                verified: 0,
                prev_sends: r.sends,
                prev_verified: r.verified,
            }
        } else {
            crate::record::ConversionRecord {
                window_start: start,
                ..Default::default()
            }
        }
    }
}

/// What the conversion guard sees of one phone number range (see
/// [`ConversionGuard`]) over its sliding window: from
/// [`Verifier::prefix_conversion`](crate::Verifier::prefix_conversion), for
/// dashboards and alerts on SMS pumping.
///
/// Counts are estimates over the sliding window (the previous fixed window
/// weighted by its overlap, plus the current one), so they may be fractional.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct PrefixConversion {
    /// Codes sent to the range.
    pub sends: f64,
    /// Of those, codes verified.
    pub verified: f64,
    /// When sends to the range are refused, until when; `None` if they are
    /// allowed.
    pub throttled_until: Option<time::OffsetDateTime>,
}

/// The growing delay after a subject's failures: after `free`
/// failures, each further failure makes the subject wait `first`, doubling up
/// to `max`, before its next attempt (default: after 5 failures, 30 s doubling
/// to 1 hour). It works below the hard failure limit, which still locks.
///
/// Failures count comparisons, as the failure budget does: a wrong guess at a
/// challenge with three live codes (after two resends) counts three. So two
/// typos after two resends make six failures, and the right code then waits
/// 60 seconds. Tell the person when to come back
/// ([`VerifyError::TooSoon`](crate::VerifyError::TooSoon) carries it).
///
/// ```
/// use vericode::FailureDelay;
/// use time::Duration;
/// let d = FailureDelay::new(5, Duration::seconds(30), Duration::hours(1))?;
/// assert_eq!(d.after(4), Duration::ZERO);
/// assert_eq!(d.after(5), Duration::seconds(30));
/// assert_eq!(d.after(6), Duration::seconds(60));
/// assert_eq!(d.after(50), Duration::hours(1));
/// # Ok::<(), vericode::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureDelay {
    free: u32,
    first: Duration,
    max: Duration,
}

impl FailureDelay {
    /// A delay: `first` at least 1 second, `max` at least `first` and at most 1 day.
    pub fn new(free: u32, first: Duration, max: Duration) -> Result<Self, ConfigError> {
        if first < Duration::seconds(1) || max < first || max > Duration::days(1) {
            return Err(ConfigError::Policy(
                "failure delay: first >= 1 s, first <= max <= 1 day",
            ));
        }
        Ok(FailureDelay { free, first, max })
    }

    /// The default: after 5 failures, 30 s doubling up to 1 hour.
    pub fn standard() -> Self {
        FailureDelay {
            free: 5,
            first: Duration::seconds(30),
            max: Duration::hours(1),
        }
    }

    /// How long a subject waits after its `failures`-th failure.
    pub fn after(&self, failures: u32) -> Duration {
        if failures < self.free.max(1) {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free.max(1)).min(30);
        let factor = 1i32 << doublings.min(30);
        self.first
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// The countries that share +1 with the United States and Canada (the North
/// American Numbering Plan): the Caribbean and Bermuda, as pairs of an area
/// code and the calling code vericode names its country by ("1" and the
/// country's first area code: Jamaica's 658 numbers are "1876", the
/// Dominican Republic's 829 and 849 numbers "1809"). SMS pumping targets
/// them, and they are priced as countries of their own. US territories (such
/// as Puerto Rico and Guam) stay under "1".
pub const NANP_COUNTRIES: &[(&str, &str)] = &[
    ("242", "1242"),
    ("246", "1246"),
    ("264", "1264"),
    ("268", "1268"),
    ("284", "1284"),
    ("345", "1345"),
    ("441", "1441"),
    ("473", "1473"),
    ("649", "1649"),
    ("658", "1876"),
    ("664", "1664"),
    ("721", "1721"),
    ("758", "1758"),
    ("767", "1767"),
    ("784", "1784"),
    ("809", "1809"),
    ("829", "1809"),
    ("849", "1809"),
    ("868", "1868"),
    ("869", "1869"),
    ("876", "1876"),
];

/// The calling code of the NANP country that `code` ("1" and an area code)
/// names ("1658" and "1876" are "1876"), if it names one.
fn nanp_country(code: &str) -> Option<&'static str> {
    let area = code.strip_prefix('1')?;
    NANP_COUNTRIES
        .iter()
        .find(|(a, _)| *a == area)
        .map(|(_, country)| *country)
}

/// The calling code of an E.164 number (which must start with `+`): country
/// calling codes are prefix-free, one to three digits; a country that shares
/// +1 with the United States and Canada is "1" and its area code ("1876",
/// Jamaica: see [`NANP_COUNTRIES`]).
pub(crate) fn calling_code(e164: &str) -> &str {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    if let Some(country) = digits.get(..4).and_then(nanp_country) {
        return country;
    }
    digits.get(..country_code_len(digits)).unwrap_or(digits)
}

/// The range of an E.164 number (which must start with `+`) that the
/// conversion guard counts by: its country, as [`calling_code`] names it, and
/// the next three digits (fewer if the number has fewer). For the United
/// States and Canada that is the area code (`1`, `415`); for a country of its
/// own under +1, the three digits after its area code (`1876`, `555`).
pub(crate) fn number_range(e164: &str) -> [&str; 2] {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    let country = calling_code(e164);
    // The country names as many leading digits as it has (a NANP country's
    // "1876" stands for "1876" or "1658": four either way).
    let rest = digits.get(country.len()..).unwrap_or("");
    [country, rest.get(..3).unwrap_or(rest)]
}

/// How many of an international number's leading `digits` are its country
/// calling code (ITU-T E.164; prefix-free): 1, 2 or 3.
pub(crate) fn country_code_len(digits: &str) -> usize {
    const TWO: [&str; 44] = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if TWO.iter().any(|p| digits.starts_with(p)) {
        2
    } else {
        3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_ranges_are_the_country_and_the_next_three_digits() {
        for (number, range) in [
            ("+14155550123", ["1", "415"]),
            ("+16475550123", ["1", "647"]),
            ("+447700900123", ["44", "770"]),
            ("+88216000001", ["882", "160"]),
            // A country of its own under +1: both its area codes, then three.
            ("+18765550123", ["1876", "555"]),
            ("+16585550123", ["1876", "555"]),
            ("+79161234567", ["7", "916"]),
        ] {
            assert_eq!(number_range(number), range, "{number}");
        }
    }

    #[test]
    fn calling_codes() {
        for (n, cc) in [
            ("+14155550123", "1"),
            ("+79161234567", "7"),
            ("+447700900123", "44"),
            ("+33612345678", "33"),
            ("+351912345678", "351"),
            ("+2348012345678", "234"),
            ("+8613812345678", "86"),
            ("+85212345678", "852"),
            ("+18765550123", "1876"),
            ("+18095550123", "1809"),
            ("+17875550123", "1"),
            ("+14415550123", "1441"),
            ("+16585550123", "1876"),
            ("+18295550123", "1809"),
            ("+18495550123", "1809"),
            ("+16475550123", "1"),
        ] {
            assert_eq!(calling_code(n), cc, "{n}");
        }
    }

    #[test]
    fn conversion_guard_trips_only_on_unverified_volume() {
        let g = ConversionGuard::new(Duration::hours(1), 10, 0.2).unwrap();
        let now = Timestamp::from_millis(3_600_000 * 5 + 1000);
        let mut r = g.roll(&Default::default(), now);
        r.sends = 9;
        assert_eq!(g.throttled(&r, now), None, "below min_sends");
        r.sends = 10;
        r.verified = 2;
        assert_eq!(g.throttled(&r, now), None, "healthy at exactly the ratio");
        r.verified = 1;
        assert_eq!(
            g.throttled(&r, now),
            Some(Timestamp::from_millis(3_600_000 * 6))
        );
        // Half-way through the next window, half of the old window still counts.
        let later = Timestamp::from_millis(3_600_000 * 6 + 1_800_000);
        let (s, v) = g.estimate(&r, later);
        assert!((s - 5.0).abs() < 1e-9 && (v - 0.5).abs() < 1e-9);
        // A corrupt record with an absurd start rolls without overflowing.
        let corrupt = crate::record::ConversionRecord {
            window_start: Timestamp::from_millis(i64::MIN),
            sends: 9,
            ..Default::default()
        };
        assert_eq!(g.estimate(&corrupt, now), (0.0, 0.0));
        // Two windows on, it is forgotten.
        let much_later = Timestamp::from_millis(3_600_000 * 8);
        assert_eq!(g.estimate(&r, much_later), (0.0, 0.0));
    }
}
