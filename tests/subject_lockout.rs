//! Failures per subject across challenges (NIST SP 800-63B-4 §3.2.2): the
//! limit, the lock, what a success forgives, what clears the count and what
//! does not.

mod common;

use common::*;
use time::Duration;
use vericode::{Clock, ConfigError, IssueError, Lockout, Policy, Ticket, VerifyError};

/// Fails `n` times on fresh challenges of `subject`, moving past each expiry.
fn fail_n(f: &Fixture, subject: &str, n: u32) {
    let mut left = n;
    while left > 0 {
        let t = block_on(f.verifier.issue(&login(subject))).unwrap();
        let code = f.verifier.delivery().last_code().unwrap();
        for _ in 0..left.min(5) {
            let r = f.check(&t, &wrong(&code));
            assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
            left -= 1;
        }
        f.clock.advance(Duration::minutes(10));
    }
}

#[test]
fn the_hundredth_failure_locks_the_subject() {
    let f = fixture();
    fail_n(&f, "u1", 99);
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let r = f.check(&t, &wrong(&code));
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    let until = start() + Duration::minutes(10 * 20);
    match f.check(&t, &code) {
        Err(VerifyError::Locked { until: Some(u) }) => assert_eq!(u, until + Duration::hours(24)),
        r => panic!("{r:?}"),
    }
    // No new code is sent while locked.
    let sent = f.verifier.delivery().sent().len();
    f.clock.advance(Duration::minutes(10));
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::Locked { .. })
    ));
    assert_eq!(f.verifier.delivery().sent().len(), sent);
    // Another subject is unaffected.
    assert!(block_on(f.verifier.issue(&login("u2"))).is_ok());
}

#[test]
fn after_a_timed_lock_each_failure_locks_again_and_a_success_does_not_reset_the_count() {
    let f = fixture_with(
        relaxed()
            .max_failures(5)
            .lockout(Lockout::For(Duration::hours(1)))
            // An hour's lock admits 8,760 guesses a year: knowingly, to test it.
            .max_guess_probability_per_year(1e-2),
    );
    fail_n(&f, "u1", 5);
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::Locked { .. })
    ));
    f.clock.advance(Duration::hours(1));
    // One attempt, wrong: locked again at once.
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    assert!(matches!(
        f.check(&t, &wrong(&code)),
        Err(VerifyError::WrongCode { .. })
    ));
    assert!(matches!(
        f.check(&t, &code),
        Err(VerifyError::Locked { .. })
    ));
    f.clock.advance(Duration::hours(1));
    // Right this time, on a fresh challenge: it had no failures of its own,
    // so it forgives none. The count stays past the budget (until the
    // failure memory passes): one wrong guess locks again.
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    assert!(f.check(&t, &code).is_ok());
    fail_n(&f, "u1", 1);
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::Locked { .. })
    ));
    // An unlock (support, having checked the person) clears the count.
    block_on(f.verifier.unlock(&vericode::Subject::new("u1").unwrap())).unwrap();
    fail_n(&f, "u1", 4);
    assert!(block_on(f.verifier.issue(&login("u1"))).is_ok());
}

fn step_up(subject: &str) -> vericode::IssueRequest {
    vericode::IssueRequest::new(
        vericode::Purpose::StepUp,
        vericode::Subject::new(subject).unwrap(),
        vericode::Destination::sms("+14155550123").unwrap(),
    )
}

#[test]
fn a_success_forgives_the_failures_of_its_own_challenge_and_no_others() {
    // Found by a review: a success reset the whole count, so an attacker
    // guessing at an account got a fresh budget at each of its owner's
    // sign-ins (36,234 guesses in a simulated year of daily sign-ins, against
    // the 865 `build()` counted then).
    let f = fixture_with(
        relaxed()
            .max_failures(40)
            .lockout(Lockout::UntilUnlocked)
            .resend_cooldown(Duration::ZERO, Duration::ZERO),
    );
    // Three failures on another challenge (someone else's guesses).
    let t = block_on(f.verifier.issue(&step_up("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    for _ in 0..3 {
        let r = f.check(&t, &wrong(&code));
        assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    }
    // The owner's challenge: a typo with one code live (one failure), a
    // second code, a typo compared with both (two), then the right code.
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let first = f.verifier.delivery().last_code().unwrap();
    let r = f.check(&t, &wrong(&first));
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    let second = f.verifier.delivery().last_code().unwrap();
    let typo = (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|g| *g != first && *g != second)
        .unwrap();
    let r = f.check(&t, &typo);
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    f.check(&t, &second).unwrap();
    // Its three failures are forgiven (within the cap of 4); the other
    // challenge's three stay, so 37 more make the fortieth, which locks.
    // (Forgiving all would leave room for 40; none, or one per attempt, for
    // 34 or 35.)
    locked_by_the(&f, "u1", 37);
}

/// `subject`, under a lock that needs an unlock, is locked by its `nth`
/// next failure and not before.
fn locked_by_the(f: &Fixture, subject: &str, nth: u32) {
    fail_n(f, subject, nth - 1);
    assert!(block_on(f.verifier.issue(&login(subject))).is_ok());
    f.clock.advance(Duration::minutes(10));
    fail_n(f, subject, 1);
    assert!(matches!(
        block_on(f.verifier.issue(&login(subject))),
        Err(IssueError::Locked { until: None })
    ));
}

/// The owner of `subject` makes a typo, then types the right code.
fn typo_then_right(f: &Fixture, subject: &str) {
    let t = block_on(f.verifier.issue(&login(subject))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let r = f.check(&t, &wrong(&code));
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    f.check(&t, &code).unwrap();
}

#[test]
fn a_record_that_remembers_forgiveness_outlives_its_last_failure_by_the_window() {
    // Found by a review: kept only a memory past its last failure, the
    // record (and the forgiveness it remembers) went minutes before its
    // window ended, and a fresh window forgave again.
    let f = fixture_with(relaxed().max_failures(10).lockout(Lockout::UntilUnlocked));
    // A typo, the right code nine minutes later: the cap of one is spent.
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let r = f.check(&t, &wrong(&code));
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    f.clock.advance(Duration::minutes(9));
    f.check(&t, &code).unwrap();
    // A memory after the typo, but inside the window: not forgiven.
    f.clock.advance(Duration::days(90) - Duration::minutes(8));
    typo_then_right(&f, "u1");
    locked_by_the(&f, "u1", 9);
}

#[test]
fn successes_forgive_at_most_a_tenth_of_the_budget_per_failure_memory() {
    // Found by a review: forgiving each success's own failures without a cap
    // let an attacker who guesses at the very challenge the owner then
    // completes get (attempts - 1) x live codes back at every sign-in.
    let f = fixture_with(relaxed().max_failures(40).lockout(Lockout::UntilUnlocked));
    // Day 0: four typos forgiven (the cap), the fifth stays.
    for _ in 0..5 {
        typo_then_right(&f, "u1");
    }
    // Day 60: still in the window: this one stays too (two counted).
    f.clock.advance(Duration::days(60));
    typo_then_right(&f, "u1");
    // Day 91: a new window (the count, last failed on day 60, is kept).
    f.clock.advance(Duration::days(31));
    typo_then_right(&f, "u1");
    locked_by_the(&f, "u1", 38);
}

/// The owner of `subject` signs in: a new code, typed right at the first
/// try, after waiting out any failure delay. If `joined`, an attacker asks
/// for a code too once the cooldown allows (a resend of the owner's
/// challenge, which answers its id) and makes that many wrong guesses at it
/// first, leaving the owner at least one attempt. Answers whether the owner
/// got in, and the comparisons the attacker's guesses made (two live codes
/// each).
fn owner_signs_in(f: &Fixture, subject: &str, joined: Option<u32>) -> (bool, u32) {
    let Ok(t) = block_on(f.verifier.issue(&login(subject))) else {
        return (false, 0);
    };
    let mut code = f.verifier.delivery().last_code().unwrap();
    let mut compared = 0;
    if let Some(guesses) = joined {
        f.clock.advance(Duration::seconds(30));
        if let Ok(joined) = block_on(f.verifier.issue(&login(subject))) {
            assert_eq!(joined.challenge_id(), t.challenge_id());
            code = f.verifier.delivery().last_code().unwrap();
            while compared < 2 * guesses {
                match f.check(&t, &wrong(&code)) {
                    Err(VerifyError::WrongCode { attempts_left }) => {
                        compared += 2;
                        if attempts_left == 1 {
                            break;
                        }
                    }
                    // Locked, or used up: the owner tries anyway.
                    _ => break,
                }
            }
        }
    }
    loop {
        match f.check(&t, &code) {
            Ok(_) => return (true, compared),
            Err(VerifyError::TooSoon { retry_after }) => f.clock.set(retry_after),
            Err(_) => return (false, compared),
        }
    }
}

/// A year in which the owner of "victim" signs in every day, and an attacker
/// guesses at another challenge the rest of the time, stopping short of the
/// lock until the owner has signed in again (or, if `joined`, short of the
/// lock for good, and guesses at the owner's challenge at every sign-in).
/// Answers the comparisons made and the days the owner got in.
fn a_year_of_daily_sign_ins(policy: Policy, joined: bool) -> (u32, u32) {
    let f = fixture_with(policy);
    let end = start() + Duration::days(365);
    let (mut compared, mut signed_in, mut since_sign_in) = (0u32, 0u32, 0u32);
    let mut next_sign_in = start() + Duration::hours(12);
    let mut live: Option<(Ticket, String)> = None;
    while f.clock.now() < end {
        if f.clock.now() >= next_sign_in {
            let (got_in, guessed) = owner_signs_in(&f, "victim", joined.then_some(u32::MAX / 2));
            signed_in += u32::from(got_in);
            compared += guessed;
            // Guesses at the owner's challenge leave the count where it
            // was if they are forgiven: then the attacker's other guesses
            // stay spent.
            if !joined {
                since_sign_in = 0;
            }
            next_sign_in += Duration::days(1);
            continue;
        }
        if since_sign_in == if joined { 87 } else { 99 } {
            f.clock.set(next_sign_in);
            continue;
        }
        let (t, code) = match live.take() {
            Some(x) => x,
            None => match block_on(f.verifier.issue(&step_up("victim"))) {
                Ok(t) => (t, f.verifier.delivery().last_code().unwrap()),
                Err(_) => {
                    f.clock.advance(Duration::minutes(10));
                    continue;
                }
            },
        };
        if wrong_guess(&f, (t, code), &mut live, next_sign_in) == Guess::Compared {
            compared += 1;
            since_sign_in += 1;
        }
    }
    (compared, signed_in)
}

/// What a wrong guess came to.
#[derive(Debug, PartialEq)]
enum Guess {
    /// Compared with a code (and counted).
    Compared,
    /// Refused for the failure delay, which was waited out (up to
    /// `not_after`).
    TooSoon,
    /// Refused while locked; ten minutes pass.
    Locked,
    /// The challenge is used up or expired; ten minutes pass.
    Spent,
}

/// A wrong guess at the challenge `t` (its code is `code`), which goes back
/// to `live` while it can take more.
fn wrong_guess(
    f: &Fixture,
    (t, code): (Ticket, String),
    live: &mut Option<(Ticket, String)>,
    not_after: time::OffsetDateTime,
) -> Guess {
    match f.check(&t, &wrong(&code)) {
        Err(VerifyError::WrongCode { .. }) => {
            *live = Some((t, code));
            Guess::Compared
        }
        Err(VerifyError::TooSoon { retry_after }) => {
            f.clock.set(retry_after.min(not_after));
            *live = Some((t, code));
            Guess::TooSoon
        }
        Err(VerifyError::Locked { .. }) => {
            f.clock.advance(Duration::minutes(10));
            Guess::Locked
        }
        Err(_) => {
            f.clock.advance(Duration::minutes(10));
            Guess::Spent
        }
        Ok(_) => unreachable!("a wrong code verified"),
    }
}

#[test]
fn attackers_guessing_between_the_owners_daily_sign_ins_make_no_more_guesses_than_counted() {
    // The default budget, lock and memory (no failure delay or abuse limits,
    // which would only slow the attacker).
    // - Found by a review: when a success forgave the whole count, stopping
    //   short of the lock until the owner signed in again gave a fresh budget
    //   a day (36,234 comparisons in the year).
    // - Found by the next review: forgiving each success's own failures
    //   without a cap let an attacker who asked for a code while the owner
    //   signed in (a resend: the owner's challenge) get eight back at every
    //   sign-in (3,007 here; 4,467 with the reviewer's own pacing).
    // Now both spend a budget, then get one guess a day after the lock; that
    // guess renews the lock, so the owner is locked out too (as an attacker
    // who does not stop short could always do): the lock trades
    // availability for the bound.
    let policy = relaxed();
    let per_year = policy.guess_odds().over_a_year * 1e6;
    for joined in [false, true] {
        let (compared, signed_in) = a_year_of_daily_sign_ins(policy.clone(), joined);
        assert!(f64::from(compared) <= per_year, "{compared} > {per_year}");
        // The figures README gives: the rules are deterministic here.
        assert_eq!(compared, if joined { 473 } else { 464 });
        assert!(
            compared >= 100 + 300,
            "{compared}: a budget and a guess a day"
        );
        assert!((1..=3).contains(&signed_in), "{signed_in} sign-ins");
    }
}

/// The owner of "victim" signs in; an attacker joins (a resend: two live
/// codes) and makes `n` wrong guesses at the owner's challenge first.
/// Answers the comparisons they made.
fn joined_sign_in(f: &Fixture, n: u32) -> u32 {
    let (got_in, compared) = owner_signs_in(f, "victim", Some(n));
    assert!(got_in && compared == 2 * n, "{got_in} {compared}");
    compared
}

/// Wrong guesses at "victim" on challenges of its own until it is locked,
/// then one per timed lock until `end`. Answers the comparisons.
fn guess_through_the_locks(f: &Fixture, end: time::OffsetDateTime) -> u32 {
    let mut compared = 0;
    while f.clock.now() < end {
        let t = match block_on(f.verifier.issue(&step_up("victim"))) {
            Err(IssueError::Locked { until: Some(u) }) => {
                f.clock.set(u);
                continue;
            }
            Err(IssueError::Locked { until: None }) => break,
            other => other.unwrap(),
        };
        let code = f.verifier.delivery().last_code().unwrap();
        while let Err(VerifyError::WrongCode { .. }) = block_on(f.verifier.verify(
            t.purpose(),
            t.challenge_id(),
            &wrong(&code),
        )) {
            compared += 1;
        }
        f.clock.advance(Duration::minutes(10));
    }
    compared
}

#[test]
fn a_window_of_forgiveness_opened_before_the_year_is_counted_in_it() {
    // Found by a review: windows start a memory apart, but one opened just
    // before a year reaches into it, so a year can hold one more window than
    // budgets (the odds counted one per budget, and these attacks beat them:
    // 118 against 110, and 482 against 475).
    for lockout in [Lockout::UntilUnlocked, Lockout::For(Duration::hours(24))] {
        let memory = Duration::days(400);
        let policy = relaxed().lockout(lockout).failure_memory(memory);
        let per_year = policy.guess_odds().over_a_year * 1e6;
        let f = fixture_with(policy);
        // Two forgiven just before the year.
        joined_sign_in(&f, 1);
        f.clock.advance(memory - Duration::hours(1));
        let year = f.clock.now();
        // Eight more in the old window; then a new window, and ten in it.
        let mut compared = joined_sign_in(&f, 4);
        f.clock.advance(Duration::hours(2));
        compared += joined_sign_in(&f, 4);
        f.clock.advance(Duration::minutes(10));
        compared += joined_sign_in(&f, 4);
        compared += guess_through_the_locks(&f, year + Duration::days(365));
        assert!(f64::from(compared) <= per_year, "{compared} > {per_year}");
        assert!(compared >= 100 + 18, "{compared}");
    }
}

#[test]
fn new_challenges_do_not_reset_the_count() {
    let f = fixture_with(relaxed().max_failures(8).lockout(Lockout::UntilUnlocked));
    fail_n(&f, "u1", 4);
    // Cancel and start over: still counted.
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    block_on(f.verifier.cancel(t.challenge_id())).unwrap();
    // A cancelled challenge keeps its counters: the next code waits out the cooldown.
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::ResendTooSoon { .. })
    ));
    f.clock.advance(Duration::seconds(30));
    fail_n(&f, "u1", 4);
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::Locked { until: None })
    ));
}

#[test]
fn unlock_clears_the_lock() {
    let f = fixture_with(relaxed().max_failures(3).lockout(Lockout::UntilUnlocked));
    fail_n(&f, "u1", 3);
    f.clock.advance(Duration::days(20));
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::Locked { until: None })
    ));
    block_on(f.verifier.unlock(&vericode::Subject::new("u1").unwrap())).unwrap();
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    assert!(f.check(&t, &code).is_ok());
}

#[test]
fn failures_are_forgotten_after_the_failure_memory() {
    let f = fixture_with(
        relaxed()
            .max_failures(5)
            .failure_memory(Duration::days(1))
            .lockout(Lockout::UntilUnlocked)
            // A day's memory gives the budget back daily: knowingly, to test it.
            .max_guess_probability_per_year(1e-2),
    );
    fail_n(&f, "u1", 4);
    f.clock.advance(Duration::days(1));
    fail_n(&f, "u1", 4);
    assert!(block_on(f.verifier.issue(&login("u1"))).is_ok());
}

/// A challenge of subject "u1" under a failure budget of `max_failures`
/// (resends without a cooldown): one wrong guess while one code is live,
/// then `resends` more codes. Answers the ticket and every code sent, oldest
/// first.
fn one_failure_then_resends(max_failures: u32, resends: usize) -> (Fixture, Ticket, Vec<String>) {
    let f = fixture_with(
        relaxed()
            .max_failures(max_failures)
            .resend_cooldown(Duration::ZERO, Duration::ZERO),
    );
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let first = f.verifier.delivery().last_code().unwrap();
    let r = f.check(&t, &wrong(&first));
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    for _ in 0..resends {
        block_on(f.verifier.resend(t.challenge_id())).unwrap();
    }
    let codes = f
        .verifier
        .delivery()
        .sent()
        .into_iter()
        .map(|m| m.code)
        .collect();
    (f, t, codes)
}

#[test]
fn a_guess_is_compared_with_no_more_codes_than_the_budget_has_left() {
    // Found by an audit: a guess counted one failure per live code, checked
    // only against the budget before it, so with 3 live codes a budget of
    // 100 allowed 102 comparisons. Now a guess meets only the newest codes
    // the budget still covers. One failure so far (4 left), three codes live.
    let (f, t, codes) = one_failure_then_resends(5, 2);
    assert_eq!(codes.len(), 3);
    let guess = (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|g| !codes.contains(g))
        .unwrap();
    // Three live codes: a wrong guess is compared with all three (1 left).
    let r = f.check(&t, &guess);
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    // With 1 left, only the newest code is compared: the oldest, right as it
    // is, fails, and that failure is the fifth, which locks.
    let r = f.check(&t, &codes[0]);
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    let r = f.check(&t, &codes[2]);
    assert!(matches!(r, Err(VerifyError::Locked { .. })), "{r:?}");
}

#[test]
fn with_one_comparison_left_the_newest_code_still_verifies() {
    let (f, t, codes) = one_failure_then_resends(2, 1);
    f.check(&t, &codes[1]).unwrap();
}

#[test]
fn a_lock_as_long_as_the_failure_memory_does_not_end_with_the_count_gone() {
    // Found by an audit: the record of a locked subject expired when the lock
    // ended if the lock was as long as the failure memory (allowed), so the
    // subject came back with a fresh budget instead of one attempt per lock.
    let f = fixture_with(
        relaxed()
            .max_live_codes(1)
            .max_failures(3)
            .lockout(Lockout::For(Duration::days(1)))
            .failure_memory(Duration::days(1))
            .max_guess_probability_per_year(1e-2),
    );
    fail_n(&f, "u1", 3);
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::Locked { .. })
    ));
    f.clock.advance(Duration::days(1));
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let r = f.check(&t, &wrong(&code));
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    // One attempt, and locked again.
    let r = f.check(&t, &wrong(&code));
    assert!(matches!(r, Err(VerifyError::Locked { .. })), "{r:?}");
    // A success after the lock (a review: its record must be kept as long
    // as the lock's, not only as long as the last failure's) leaves the
    // count at the limit, a day later too: one wrong guess locks again.
    f.clock.advance(Duration::days(1));
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    f.check(&t, &code).unwrap();
    f.clock.advance(Duration::days(1) - Duration::minutes(1));
    fail_n(&f, "u1", 1);
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::Locked { .. })
    ));
}

/// Whether a verifier builds on `policy`.
fn build_with(policy: Policy) -> Result<(), ConfigError> {
    vericode::Verifier::builder()
        .store(vericode::MemoryStore::new())
        .delivery(vericode::RecordingDelivery::new())
        .policy(policy)
        .signing_key(vericode::KeyId::new(1), key(1))
        .app_name("Acme")
        .build()
        .map(|_| ())
}

/// Guesses wrong at `subject` until `end`, on a fresh challenge whenever one
/// is used up, waiting a minute whenever it is locked; answers the guesses
/// compared with a code.
fn guess_until(f: &Fixture, subject: &str, end: time::OffsetDateTime) -> u32 {
    let mut compared = 0;
    while f.clock.now() < end {
        let Ok(t) = block_on(f.verifier.issue(&login(subject))) else {
            f.clock.advance(Duration::minutes(1));
            continue;
        };
        let code = f.verifier.delivery().last_code().unwrap();
        loop {
            match f.check(&t, &wrong(&code)) {
                Err(VerifyError::WrongCode { .. }) => compared += 1,
                Err(VerifyError::Locked { .. }) => f.clock.advance(Duration::minutes(1)),
                Err(_) => break,
                Ok(_) => unreachable!("a wrong code verified"),
            }
            if f.clock.now() >= end {
                break;
            }
        }
    }
    compared
}

#[test]
fn a_lockout_that_lets_guessing_go_on_all_year_is_refused_at_build() {
    // Found by an audit: a 1-minute lock without a failure delay let an
    // attacker make 1,440 guesses a day at one account, while `build()`
    // reported and bounded only the 100 of the failure budget.
    let minute = relaxed().lockout(Lockout::For(Duration::minutes(1)));
    let odds = minute.guess_odds();
    assert!((odds.over_failure_budget - 1e-4).abs() < 1e-15);
    // Five budgets (a 90-day memory), six windows of 10 forgiven, and a
    // guess a minute.
    assert!((odds.over_a_year - (560.0 + 525_600.0) / 1e6).abs() < 1e-12);
    match build_with(minute) {
        Err(ConfigError::YearlyGuessOdds { odds, bound }) => {
            assert!(odds > 0.5);
            assert_eq!(bound, 1e-3);
        }
        r => panic!("{r:?}"),
    }
    // The failure delay paces guesses at the budget (an hour by default).
    let paced = Policy::default().lockout(Lockout::For(Duration::minutes(1)));
    assert!((paced.guess_odds().over_a_year - 9_320e-6).abs() < 1e-12);
    assert!(matches!(
        build_with(paced),
        Err(ConfigError::YearlyGuessOdds { .. })
    ));
    // A review: a short failure memory gives the budget back as often
    // (13 budgets of 100, and 14 windows of 10 forgiven, a year at 30 days).
    let forgetful = Policy::default().failure_memory(Duration::days(30));
    assert!((forgetful.guess_odds().over_a_year - 1_805e-6).abs() < 1e-12);
    assert!(matches!(
        build_with(forgetful),
        Err(ConfigError::YearlyGuessOdds { .. })
    ));
    // The defaults: five budgets of 100, six windows of 10 forgiven, and one
    // guess a day after a lock. A manual unlock admits none past a budget.
    assert!((Policy::default().guess_odds().over_a_year - 925e-6).abs() < 1e-12);
    assert!(build_with(Policy::default()).is_ok());
    // The edges: a 74-day memory builds, a 73-day one (six budgets) does not.
    assert!(build_with(Policy::default().failure_memory(Duration::days(74))).is_ok());
    assert!(build_with(Policy::default().failure_memory(Duration::days(73))).is_err());
    let manual = relaxed().lockout(Lockout::UntilUnlocked);
    assert!((manual.guess_odds().over_a_year - 5.6e-4).abs() < 1e-15);
    // The lock's edge: 440 guesses a year are left, one per 19.9 hours.
    let lock = |minutes| Policy::default().lockout(Lockout::For(Duration::minutes(minutes)));
    assert!(build_with(lock(19 * 60 + 55)).is_ok());
    assert!(build_with(lock(19 * 60 + 50)).is_err());
    assert!(build_with(manual).is_ok());
}

#[test]
fn an_attacker_who_keeps_to_the_lock_makes_no_more_guesses_than_counted() {
    // Three days stand for the year: the budget, then one guess per lock.
    let policy = relaxed()
        .max_failures(5)
        .lockout(Lockout::For(Duration::hours(1)))
        .max_guess_probability_per_year(1e-2);
    let per_year = policy.guess_odds().over_a_year * 1e6;
    // Five budgets of 5, six windows of 1 forgiven, a guess an hour.
    assert_eq!(per_year.round(), 5.0 * 5.0 + 6.0 + 8_760.0);
    let f = fixture_with(policy);
    let compared = guess_until(&f, "victim", start() + Duration::days(3));
    // The count's rate is what an attacker gets, not a loose bound.
    assert!((5 + 71..=5 + 72).contains(&compared), "{compared}");
}

/// Guesses wrong at `subject` until `end` in bursts of `per_burst` (short of
/// the failure budget, so never locked), resting `rest` after each; waits
/// out failure delays. Answers the guesses compared with a code.
fn bursts(
    f: &Fixture,
    subject: &str,
    end: time::OffsetDateTime,
    per_burst: u32,
    rest: Duration,
) -> u32 {
    let (mut compared, mut in_burst) = (0, 0);
    let mut live: Option<(Ticket, String)> = None;
    while f.clock.now() < end {
        if in_burst == per_burst {
            f.clock.advance(rest);
            (in_burst, live) = (0, None);
            continue;
        }
        let (t, code) = match live.take() {
            Some(x) => x,
            None => {
                let t = block_on(f.verifier.issue(&login(subject))).expect("never locked");
                (t, f.verifier.delivery().last_code().unwrap())
            }
        };
        match wrong_guess(f, (t, code), &mut live, end) {
            Guess::Compared => {
                compared += 1;
                in_burst += 1;
            }
            Guess::Locked => panic!("the bursts stay under the budget"),
            Guess::TooSoon | Guess::Spent => {}
        }
    }
    compared
}

#[test]
fn an_attacker_who_waits_out_the_failure_memory_makes_no_more_guesses_than_counted() {
    // Found by a review: stopping short of the lock and waiting out the
    // failure memory gives a fresh budget, which the yearly odds did not
    // count (they said 465 a year here; this attacker makes more).
    let policy = relaxed();
    let per_year = policy.guess_odds().over_a_year * 1e6;
    let f = fixture_with(policy);
    let rest = Duration::days(90) + Duration::minutes(1);
    let compared = bursts(&f, "victim", start() + Duration::days(365), 99, rest);
    assert_eq!(compared, 5 * 99, "a fresh budget every 90 days");
    assert!(f64::from(compared) <= per_year, "{compared} > {per_year}");
    assert!(
        f64::from(compared) > 100.0 + 365.0,
        "more than one budget's worth"
    );
}
