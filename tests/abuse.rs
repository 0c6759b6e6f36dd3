//! Abuse protection: each rate limit with its exact count and retry-after,
//! recovery, limits shared by two verifiers over one store, the subject budget
//! against sprayed guesses, the conversion guard, the country filter, the
//! growing failure delay, decoys, and the guess-odds bound.

mod common;

use std::sync::Arc;

use common::*;
use time::Duration;
use vericode::{
    Attempt, ChallengeId, ClientKey, ConfigError, ConversionGuard, CountryFilter, Destination,
    FailureDelay, IssueError, IssueRequest, KeyId, Limit, Lockout, ManualClock, Policy, Purpose,
    RateLimit, RecordingDelivery, Subject, Verifier, VerifyError,
};

fn only(limit: Limit, n: u32, per: Duration) -> Policy {
    relaxed().limit(limit, RateLimit::new(n, per).unwrap())
}

fn request(subject: &str, phone: &str) -> IssueRequest {
    IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new(subject).unwrap(),
        Destination::sms(phone).unwrap(),
    )
}

fn limited(r: Result<vericode::Ticket, IssueError>) -> (Limit, time::OffsetDateTime) {
    match r {
        Err(IssueError::RateLimited { limit, retry_after }) => (limit, retry_after),
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

#[test]
fn per_destination_exact_count_retry_after_and_recovery() {
    let f = fixture_with(only(Limit::Destination, 5, Duration::minutes(10)));
    // Five different subjects to one phone: allowed; the sixth is refused.
    for i in 0..5 {
        block_on(f.verifier.issue(&request(&format!("u{i}"), "+14155550100"))).unwrap();
    }
    let sent = f.verifier.delivery().sent().len();
    let (limit, retry) = limited(block_on(f.verifier.issue(&request("u5", "+14155550100"))));
    assert_eq!(limit, Limit::Destination);
    assert_eq!(retry, start() + Duration::minutes(2));
    assert_eq!(
        f.verifier.delivery().sent().len(),
        sent,
        "nothing sent when refused"
    );
    // Another destination is unaffected.
    block_on(f.verifier.issue(&request("u5", "+14155550101"))).unwrap();
    // One more after 2 minutes (smooth), then refused again.
    f.clock
        .advance(Duration::minutes(2) - Duration::milliseconds(1));
    limited(block_on(f.verifier.issue(&request("u6", "+14155550100"))));
    f.clock.advance(Duration::milliseconds(1));
    block_on(f.verifier.issue(&request("u6", "+14155550100"))).unwrap();
    limited(block_on(f.verifier.issue(&request("u7", "+14155550100"))));
    // After a full quiet period, the whole burst again.
    f.clock.advance(Duration::minutes(10));
    for i in 10..15 {
        block_on(f.verifier.issue(&request(&format!("u{i}"), "+14155550100"))).unwrap();
    }
}

#[test]
fn per_subject_and_per_client_and_global() {
    let f = fixture_with(
        relaxed()
            .resend_cooldown(Duration::ZERO, Duration::ZERO)
            .limit(
                Limit::Subject,
                RateLimit::new(3, Duration::hours(1)).unwrap(),
            ),
    );
    let t = block_on(f.verifier.issue(&request("u1", "+14155550100"))).unwrap();
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    let (limit, retry) = limited(block_on(f.verifier.resend(t.challenge_id())));
    assert_eq!(
        (limit, retry),
        (Limit::Subject, start() + Duration::minutes(20))
    );

    let f = fixture_with(only(Limit::Client, 2, Duration::minutes(1)));
    let ip = ClientKey::new("ip:203.0.113.7").unwrap();
    for i in 0..2 {
        block_on(
            f.verifier
                .issue(&request(&format!("u{i}"), &format!("+1415555010{i}")).client(ip.clone())),
        )
        .unwrap();
    }
    let (limit, _) = limited(block_on(
        f.verifier
            .issue(&request("u9", "+14155550109").client(ip.clone())),
    ));
    assert_eq!(limit, Limit::Client);
    // Other clients, and requests without a client key, are not charged to it.
    let other = ClientKey::new("ip:198.51.100.1").unwrap();
    block_on(
        f.verifier
            .issue(&request("u8", "+14155550108").client(other)),
    )
    .unwrap();
    // Resends charged to a client count against its limit too (resend_from,
    // resend_via_from).
    let f2 = fixture_with(only(Limit::Client, 2, Duration::minutes(10)));
    let t = block_on(
        f2.verifier
            .issue(&request("u6", "+14155550106").client(ip.clone())),
    )
    .unwrap();
    f2.clock.advance(Duration::seconds(30));
    block_on(f2.verifier.resend_from(t.challenge_id(), &ip)).unwrap();
    f2.clock.advance(Duration::seconds(60));
    assert_eq!(
        limited(block_on(f2.verifier.resend_from(t.challenge_id(), &ip))).0,
        Limit::Client
    );
    let via = Destination::sms("+14155550106").unwrap();
    assert_eq!(
        limited(block_on(f2.verifier.resend_via_from(
            t.challenge_id(),
            &via,
            &ip
        )))
        .0,
        Limit::Client
    );
    // Without the client key the resend is not charged to it.
    block_on(f2.verifier.resend(t.challenge_id())).unwrap();

    let f = fixture_with(only(Limit::Global, 3, Duration::hours(1)));
    for i in 0..3 {
        block_on(
            f.verifier
                .issue(&request(&format!("u{i}"), &format!("+1415555010{i}"))),
        )
        .unwrap();
    }
    assert_eq!(
        limited(block_on(f.verifier.issue(&request("u9", "+14155550109")))).0,
        Limit::Global
    );
}

#[test]
fn per_prefix_counts_the_calling_code_and_the_email_domain() {
    let f = fixture_with(only(Limit::DestinationPrefix, 2, Duration::hours(1)));
    block_on(f.verifier.issue(&request("a", "+447700900001"))).unwrap();
    block_on(f.verifier.issue(&request("b", "+447700900002"))).unwrap();
    assert_eq!(
        limited(block_on(f.verifier.issue(&request("c", "+447700900003")))).0,
        Limit::DestinationPrefix
    );
    block_on(f.verifier.issue(&request("c", "+14155550100"))).unwrap();
    let mail = |s: &str, a: &str| {
        IssueRequest::new(
            Purpose::StepUp,
            Subject::new(s).unwrap(),
            Destination::email(a).unwrap(),
        )
    };
    block_on(f.verifier.issue(&mail("d", "x@pump.example"))).unwrap();
    block_on(f.verifier.issue(&mail("e", "y@pump.example"))).unwrap();
    assert!(block_on(f.verifier.issue(&mail("f", "z@pump.example"))).is_err());
    block_on(f.verifier.issue(&mail("f", "z@fine.example"))).unwrap();
}

#[test]
fn limits_are_shared_by_two_verifiers_over_one_store() {
    let store = Arc::new(SpyStore::default());
    let clock = ManualClock::new(start());
    let make = || {
        Verifier::builder()
            .store(store.clone())
            .delivery(RecordingDelivery::new())
            .clock(clock.clone())
            .policy(only(Limit::Destination, 2, Duration::minutes(10)))
            .signing_key(KeyId::new(1), key(1))
            .lookup_key(key(200))
            .app_name("Acme")
            .build()
            .unwrap()
    };
    let (a, b) = (make(), make());
    block_on(a.issue(&request("u1", "+14155550100"))).unwrap();
    block_on(b.issue(&request("u2", "+14155550100"))).unwrap();
    assert_eq!(
        limited(block_on(a.issue(&request("u3", "+14155550100")))).0,
        Limit::Destination
    );
    assert_eq!(
        limited(block_on(b.issue(&request("u3", "+14155550100")))).0,
        Limit::Destination
    );
}

#[test]
fn verify_attempts_per_client_across_challenges() {
    let f = fixture_with(only(Limit::VerifyClient, 3, Duration::minutes(10)));
    let ip = ClientKey::new("ip:203.0.113.7").unwrap();
    let mut tickets = Vec::new();
    for i in 0..4 {
        let t = block_on(
            f.verifier
                .issue(&request(&format!("u{i}"), &format!("+1415555010{i}"))),
        )
        .unwrap();
        tickets.push((t, f.verifier.delivery().last_code().unwrap()));
    }
    for (t, code) in &tickets[..3] {
        let r =
            block_on(f.verifier.verify_attempt(
                Attempt::new(t.purpose(), t.challenge_id(), &wrong(code)).client(&ip),
            ));
        assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    }
    let (t, code) = &tickets[3];
    match block_on(
        f.verifier
            .verify_attempt(Attempt::new(t.purpose(), t.challenge_id(), code).client(&ip)),
    ) {
        Err(VerifyError::RateLimited { limit, retry_after }) => {
            assert_eq!(limit, Limit::VerifyClient);
            assert_eq!(retry_after, start() + Duration::minutes(10) / 3);
        }
        r => panic!("{r:?}"),
    }
    // The refused attempt was not counted against the challenge.
    let r = f.check(t, code);
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn guesses_sprayed_over_many_challenges_stop_at_the_subject_budget() {
    let f = fixture_with(relaxed().max_failures(20).lockout(Lockout::UntilUnlocked));
    let mut counted = 0;
    let mut refused = 0;
    for round in 0..10 {
        let req = IssueRequest::new(
            Purpose::custom(&format!("action{round}")).unwrap(),
            Subject::new("victim").unwrap(),
            Destination::sms("+14155550123").unwrap(),
        );
        let t = match block_on(f.verifier.issue(&req)) {
            Ok(t) => t,
            Err(IssueError::Locked { .. }) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("{e:?}"),
        };
        let code = f.verifier.delivery().last_code().unwrap();
        for _ in 0..5 {
            match f.check(&t, &wrong(&code)) {
                Err(VerifyError::WrongCode { .. }) => counted += 1,
                Err(VerifyError::Locked { .. }) => refused += 1,
                r => panic!("{r:?}"),
            }
        }
    }
    assert_eq!(counted, 20, "exactly the budget was guessed");
    assert!(refused > 0);
}

/// Sends `n` codes, the `i`-th to subject `{tag}{i}` at `number(i)`, and
/// verifies each if `verified` (a healthy prefix) or none (a pumped one).
fn send_codes(f: &Fixture, tag: &str, n: usize, number: impl Fn(usize) -> String, verified: bool) {
    for i in 0..n {
        let t = block_on(f.verifier.issue(&request(&format!("{tag}{i}"), &number(i)))).unwrap();
        if verified {
            let code = f.verifier.delivery().last_code().unwrap();
            f.check(&t, &code).unwrap();
        }
    }
}

/// README and `FailureDelay`'s docs: failures count comparisons, so after
/// two resends (three live codes) two typos make six failures, and the
/// right code then waits 60 seconds, told when.
#[test]
fn after_two_resends_two_typos_delay_the_right_code_by_a_minute() {
    let f = fixture_with(
        relaxed()
            .failure_delay(FailureDelay::standard())
            .resend_cooldown(Duration::ZERO, Duration::ZERO),
    );
    let t = block_on(f.verifier.issue(&request("u1", "+14155550100"))).unwrap();
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    let codes: Vec<String> = f
        .verifier
        .delivery()
        .sent()
        .iter()
        .map(|m| m.code.clone())
        .collect();
    let wrong = (0..1000)
        .map(|n| format!("{n:06}"))
        .find(|c| !codes.contains(c))
        .unwrap();
    for _ in 0..2 {
        let r = f.check(&t, &wrong);
        assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    }
    let right = codes.last().unwrap();
    match f.check(&t, right) {
        Err(VerifyError::TooSoon { retry_after }) => {
            assert_eq!(retry_after, start() + Duration::seconds(60));
        }
        other => panic!("{other:?}"),
    }
    f.clock.advance(Duration::seconds(60));
    assert!(f.check(&t, right).is_ok());
}

#[test]
fn conversion_guard_throttles_a_pumped_prefix_and_spares_a_healthy_one() {
    let guard = ConversionGuard::new(Duration::hours(1), 10, 0.2).unwrap();
    let f = fixture_with(relaxed().conversion_guard(guard));
    // Healthy: UK numbers, each code verified.
    send_codes(&f, "uk", 30, |i| format!("+4477009{i:05}"), true);
    // Pumped: numbers under +882 (international networks) never verify.
    send_codes(&f, "p", 10, |i| format!("+88216{i:06}"), false);
    let (limit, retry) = limited(block_on(f.verifier.issue(&request("p10", "+882160000010"))));
    assert_eq!(limit, Limit::ConversionGuard);
    assert!(retry > start() && retry <= start() + Duration::hours(1));
    // The healthy prefix keeps working.
    block_on(f.verifier.issue(&request("uk-late", "+447700999999"))).unwrap();
    // Two windows later the pumped prefix is forgotten.
    f.clock.advance(Duration::hours(2));
    block_on(f.verifier.issue(&request("p11", "+882160000011"))).unwrap();
}

/// Found by a review: the guard once counted a whole country (and a whole
/// email domain), so anyone could throttle every code to +1, or to
/// gmail.com, with a few dozen sends that were never verified. It counts
/// phone number ranges: the country and the next three digits.
#[test]
fn unverified_sends_throttle_their_number_range_only_and_never_email() {
    let guard = ConversionGuard::new(Duration::hours(1), 10, 0.2).unwrap();
    let f = fixture_with(relaxed().conversion_guard(guard));
    // An attacker's unverified sends to +1 415: that area code trips.
    send_codes(&f, "a", 10, |i| format!("+1415555{i:04}"), false);
    let (limit, _) = limited(block_on(f.verifier.issue(&request("a10", "+14155550010"))));
    assert_eq!(limit, Limit::ConversionGuard);
    // Another area code of the same country keeps working.
    for (i, other) in ["+12125550100", "+16475550100"].into_iter().enumerate() {
        block_on(f.verifier.issue(&request(&format!("b{i}"), other))).unwrap();
    }
    // Email is not pumped: no count, no throttle, however many go unverified.
    for i in 0..30 {
        let mail = IssueRequest::new(
            Purpose::LoginNewDevice,
            Subject::new(&format!("m{i}")).unwrap(),
            Destination::email(&format!("victim{i}@gmail.com")).unwrap(),
        );
        block_on(f.verifier.issue(&mail)).unwrap();
    }
    let gmail = Destination::email("ana@gmail.com").unwrap();
    assert!(
        block_on(f.verifier.prefix_conversion(&gmail))
            .unwrap()
            .is_none()
    );
}

#[test]
fn caribbean_numbers_under_plus_one_are_countries_of_their_own() {
    // Found by an audit: +1 is the United States, Canada and 17 Caribbean
    // countries and Bermuda, which SMS pumping targets. One bucket for all of
    // +1 let pumping hide among US sends, and no filter could refuse Jamaica.
    let guard = ConversionGuard::new(Duration::hours(1), 10, 0.2).unwrap();
    let f = fixture_with(relaxed().conversion_guard(guard));
    // Healthy US traffic, each code verified.
    send_codes(&f, "us", 30, |i| format!("+1415555{i:04}"), true);
    // Pumped Jamaican numbers never verify: their own prefix trips.
    send_codes(&f, "jm", 10, |i| format!("+1876555{i:04}"), false);
    let (limit, _) = limited(block_on(f.verifier.issue(&request("jm10", "+18765550010"))));
    assert_eq!(limit, Limit::ConversionGuard);
    // A review: the country's other area code is the same country, its
    // numbers counted in the same ranges (the three digits after the area
    // code).
    let (limit, _) = limited(block_on(f.verifier.issue(&request("jm11", "+16585550011"))));
    assert_eq!(limit, Limit::ConversionGuard);
    block_on(f.verifier.issue(&request("us-late", "+14155559999"))).unwrap();

    // And a filter can refuse them while allowing the US and Canada.
    let f = fixture_with(relaxed().countries(CountryFilter::allow(&["1"]).unwrap()));
    match block_on(f.verifier.issue(&request("u1", "+18095550123"))) {
        Err(IssueError::CountryNotAllowed { calling_code }) => assert_eq!(calling_code, "1809"),
        r => panic!("{r:?}"),
    }
    block_on(f.verifier.issue(&request("u1", "+16475550123"))).unwrap();
    block_on(f.verifier.issue(&request("u2", "+17875550123"))).unwrap();
    // A review: "1" in a deny list still refuses every +1 number, and
    // denying a country denies all its area codes.
    let f = fixture_with(relaxed().countries(CountryFilter::deny(&["1"]).unwrap()));
    for number in ["+18765550123", "+14155550123"] {
        let r = block_on(f.verifier.issue(&request("u1", number)));
        assert!(
            matches!(r, Err(IssueError::CountryNotAllowed { .. })),
            "{number}: {r:?}"
        );
    }
    let f = fixture_with(relaxed().countries(CountryFilter::deny(&["1876", "1809"]).unwrap()));
    for number in ["+16585550123", "+18295550123", "+18495550123"] {
        let r = block_on(f.verifier.issue(&request("u1", number)));
        assert!(
            matches!(r, Err(IssueError::CountryNotAllowed { .. })),
            "{number}: {r:?}"
        );
    }
    block_on(f.verifier.issue(&request("u1", "+14155550123"))).unwrap();
    // A second review: a country's other area code names it in a question
    // to the filter and in a list built without `deny`'s check.
    assert!(!CountryFilter::deny(&["1876"]).unwrap().permits("1658"));
    assert!(!CountryFilter::Deny(vec!["1658".into()]).permits("1876"));
    assert!(CountryFilter::allow(&["1809"]).unwrap().permits("1849"));
}

#[test]
fn country_filter_refuses_before_anything_is_stored_or_sent() {
    let f = fixture_with(relaxed().countries(CountryFilter::allow(&["1", "44"]).unwrap()));
    match block_on(f.verifier.issue(&request("u1", "+33612345678"))) {
        Err(IssueError::CountryNotAllowed { calling_code }) => assert_eq!(calling_code, "33"),
        r => panic!("{r:?}"),
    }
    assert!(f.store.writes().is_empty());
    assert!(f.verifier.delivery().sent().is_empty());
    block_on(f.verifier.issue(&request("u1", "+447700900123"))).unwrap();
    let f = fixture_with(relaxed().countries(CountryFilter::deny(&["882", "883"]).unwrap()));
    assert!(matches!(
        block_on(f.verifier.issue(&request("u1", "+882160000001"))),
        Err(IssueError::CountryNotAllowed { .. })
    ));
}

#[test]
fn failure_delay_grows_after_free_failures() {
    let f =
        fixture_with(relaxed().failure_delay(
            FailureDelay::new(2, Duration::seconds(30), Duration::minutes(2)).unwrap(),
        ));
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let guess = || f.check(&t, &wrong(&code));
    assert!(matches!(guess(), Err(VerifyError::WrongCode { .. })));
    assert!(matches!(guess(), Err(VerifyError::WrongCode { .. })));
    // Two failures: wait 30 s; the refused attempt is not counted.
    match guess() {
        Err(VerifyError::TooSoon { retry_after }) => {
            assert_eq!(retry_after, start() + Duration::seconds(30))
        }
        r => panic!("{r:?}"),
    }
    f.clock.advance(Duration::seconds(30));
    assert!(matches!(
        guess(),
        Err(VerifyError::WrongCode { attempts_left: 2 })
    ));
    // Three failures: 60 s.
    f.clock.advance(Duration::seconds(59));
    assert!(matches!(guess(), Err(VerifyError::TooSoon { .. })));
    f.clock.advance(Duration::seconds(1));
    assert!(f.check(&t, &code).is_ok());
}

#[test]
fn decoys_look_like_tickets_send_nothing_and_never_verify() {
    let f = fixture_with(relaxed());
    let req = request("nobody@example.com", "+14155550100");
    let real = block_on(f.verifier.issue(&request("someone", "+14155550199"))).unwrap();
    let decoy = block_on(f.verifier.issue_decoy(&req)).unwrap();
    assert_eq!(
        f.verifier.delivery().sent().len(),
        1,
        "the decoy sent nothing"
    );
    assert_eq!(decoy.attempts_left(), real.attempts_left());
    assert_eq!(decoy.expires_at(), real.expires_at());
    assert_eq!(decoy.resend_after(), real.resend_after());
    assert_eq!(
        decoy.challenge_id().to_string().len(),
        real.challenge_id().to_string().len()
    );
    assert_eq!(decoy.masked_destination().as_str(), "•••• ••• 0100");
    // The same store work: each wrote its send's claim, then its record.
    assert_eq!(f.store.writes().len(), 4);
    // Every guess fails like a wrong code, and counts like one.
    for code in ["000000", "123456", "999999"] {
        let r = f.check(&decoy, code);
        assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    }
}

#[test]
fn the_policy_knows_its_odds() {
    let odds = Policy::default().guess_odds();
    assert!((odds.over_failure_budget - 1e-4).abs() < 1e-15);
    let base = || {
        Verifier::builder()
            .store(vericode::MemoryStore::new())
            .delivery(RecordingDelivery::new())
            .signing_key(KeyId::new(1), key(1))
            .lookup_key(key(200))
            .app_name("Acme")
    };
    let e = base()
        .policy(Policy::default().max_failures(200))
        .build()
        .unwrap_err();
    assert!(matches!(e, ConfigError::GuessOdds { .. }), "{e:?}");
    assert!(
        base()
            .policy(
                Policy::default()
                    .max_failures(200)
                    .max_guess_probability(2e-4)
                    // Five budgets of 200 and a guess a day: 1.365e-3 a year.
                    .max_guess_probability_per_year(2e-3)
            )
            .build()
            .is_ok()
    );
    assert!(base().policy(Policy::nist()).build().is_ok());
    assert!(base().policy(Policy::strict()).build().is_ok());
}

#[test]
fn bad_input_is_typed_before_anything_happens() {
    assert_eq!(
        Destination::sms("4155550100"),
        Err(vericode::InputError::Phone)
    );
    assert_eq!(
        Destination::email("not an email"),
        Err(vericode::InputError::Email)
    );
    assert_eq!(ClientKey::new(""), Err(vericode::InputError::ClientKey));
}

#[test]
fn a_decoy_resend_is_a_decoy_and_never_verifies() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let decoy = block_on(f.verifier.issue_decoy(&request("nobody", "+14155550100"))).unwrap();
    for _ in 0..3 {
        let again = block_on(f.verifier.resend(decoy.challenge_id())).unwrap();
        assert_eq!(again.challenge_id(), decoy.challenge_id());
    }
    let via = Destination::sms("+14155550100").unwrap();
    block_on(f.verifier.resend_via(decoy.challenge_id(), &via)).unwrap();
    assert!(
        f.verifier.delivery().sent().is_empty(),
        "a decoy's resend sent a real code"
    );
    for code in ["000000", "111111"] {
        assert!(matches!(
            f.check(&decoy, code),
            Err(VerifyError::WrongCode { .. })
        ));
    }
}

/// Found by a review: setting the decoy bit in an id's purpose bytes made
/// its real slot and its decoy slot one, so a flipped decoy id still found
/// its challenge (resend, cancel, and a custom purpose's verify answered as
/// for a live one) while a flipped real id did not: a real account told
/// from a made-up one. Such an id is no purpose's, and is refused as it is
/// parsed, for decoys and real challenges alike.
#[test]
fn an_id_bent_towards_the_decoy_slot_is_refused_for_real_and_decoy_alike() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let custom = Purpose::custom("email_login").unwrap();
    for purpose in [Purpose::PasswordReset, custom] {
        let request = |subject: &str| {
            IssueRequest::new(
                purpose.clone(),
                Subject::new(subject).unwrap(),
                Destination::sms("+14155550100").unwrap(),
            )
        };
        let real = block_on(f.verifier.issue(&request("ana"))).unwrap();
        let decoy = block_on(f.verifier.issue_decoy(&request("nobody"))).unwrap();
        for t in [&real, &decoy] {
            let mut raw = b64decode(&t.challenge_id().to_string());
            raw[16] |= 0x40; // the purpose's first byte
            let bent = b64encode(&raw);
            assert_eq!(
                bent.parse::<ChallengeId>(),
                Err(vericode::InputError::ChallengeId),
                "{purpose}"
            );
        }
        // Unbent, both still answer alike.
        for t in [&real, &decoy] {
            block_on(f.verifier.resend(t.challenge_id())).unwrap();
        }
    }
}

#[test]
fn a_decoy_never_touches_a_live_real_challenge() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let real = block_on(f.verifier.issue(&request("victim", "+14155550100"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    for _ in 0..4 {
        let d = block_on(f.verifier.issue_decoy(&request("victim", "+14155550100"))).unwrap();
        assert_ne!(
            d.challenge_id(),
            real.challenge_id(),
            "a decoy handed out the real challenge's id"
        );
        assert_eq!(d.attempts_left(), 5);
    }
    // The real challenge is as it was: its code works, nothing was evicted,
    // and no attempt or send was spent.
    let t = block_on(f.verifier.resend(real.challenge_id())).unwrap();
    assert_eq!(t.attempts_left(), 5);
    assert!(f.check(&real, &code).is_ok());
    assert_eq!(f.verifier.delivery().sent().len(), 2);
}

#[test]
fn the_conversion_guard_answers_decoys_like_real_sends() {
    let guard = ConversionGuard::new(Duration::hours(1), 5, 0.5).unwrap();
    let f = fixture_with(relaxed().conversion_guard(guard));
    for i in 0..5 {
        block_on(
            f.verifier
                .issue(&request(&format!("p{i}"), &format!("+88216{i:06}"))),
        )
        .unwrap();
    }
    let real = block_on(f.verifier.issue(&request("p9", "+882160000009")));
    let decoy = block_on(f.verifier.issue_decoy(&request("ghost", "+882160000008")));
    assert_eq!(limited(real).0, Limit::ConversionGuard);
    assert_eq!(limited(decoy).0, Limit::ConversionGuard);
}

/// Found by a review: a decoy's send was checked but not counted, so the
/// guard's next answer told whether the send before it was real. A decoy's
/// send is counted like a real one (and, like a pumped one, never verified).
#[test]
fn a_decoy_send_moves_the_conversion_counts_as_a_real_one_does() {
    let answers = |decoy: bool| {
        let guard = ConversionGuard::new(Duration::hours(1), 3, 0.5).unwrap();
        let f = fixture_with(relaxed().conversion_guard(guard));
        for i in 0..2 {
            block_on(
                f.verifier
                    .issue(&request(&format!("p{i}"), &format!("+1415555000{i}"))),
            )
            .unwrap();
        }
        let target = request("target", "+14155550050");
        if decoy {
            block_on(f.verifier.issue_decoy(&target)).unwrap();
        } else {
            block_on(f.verifier.issue(&target)).unwrap();
        }
        let seen = block_on(
            f.verifier
                .prefix_conversion(&Destination::sms("+14155550099").unwrap()),
        )
        .unwrap()
        .unwrap();
        let next = block_on(f.verifier.issue_decoy(&request("ghost", "+14155550099")));
        (seen.sends, next.map(|_| ()).map_err(|e| limited(Err(e)).0))
    };
    assert_eq!(answers(true), answers(false));
    assert_eq!(answers(true), (3.0, Err(Limit::ConversionGuard)));
}

#[test]
fn the_destination_limit_counts_a_mailbox_and_a_number_however_written() {
    // Found by an audit: `Ana@`, `aNa@` and `ANA@example.com` (and `+tag`
    // forms) reach one inbox but were counted apart, as were texts and calls
    // to one number.
    let f = fixture_with(relaxed().limit(
        Limit::Destination,
        RateLimit::new(5, Duration::minutes(10)).unwrap(),
    ));
    let send = |i: usize, to: Destination| {
        let req = IssueRequest::new(Purpose::StepUp, Subject::new(&format!("u{i}")).unwrap(), to);
        block_on(f.verifier.issue(&req))
    };
    let email = |a: &str| Destination::email(a).unwrap();
    for (i, to) in ["ana@example.com", "Ana@example.com", "ANA+1@example.com"]
        .iter()
        .enumerate()
    {
        send(i, email(to)).unwrap();
    }
    send(3, email("aNa+news@Example.COM")).unwrap();
    send(4, email("ana@example.com")).unwrap();
    for (i, to) in ["ana@example.com", "ANA@example.com", "ana+2@example.com"]
        .iter()
        .enumerate()
    {
        assert!(
            matches!(
                send(10 + i, email(to)),
                Err(IssueError::RateLimited {
                    limit: Limit::Destination,
                    ..
                })
            ),
            "{to}"
        );
    }
    // Another mailbox at the same domain is its own.
    send(20, email("bob@example.com")).unwrap();

    for i in 0..5 {
        let to = if i % 2 == 0 {
            Destination::sms("+14155550199").unwrap()
        } else {
            Destination::voice("+14155550199").unwrap()
        };
        send(30 + i, to).unwrap();
    }
    assert!(matches!(
        send(40, Destination::voice("+14155550199").unwrap()),
        Err(IssueError::RateLimited {
            limit: Limit::Destination,
            ..
        })
    ));
}
