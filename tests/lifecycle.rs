//! The life of a challenge: issue, wrong guesses, success, replay, expiry,
//! resend, re-issue, cancel.

mod common;

use common::*;
use time::Duration;
use vericode::{
    ChallengeId, Channel, Context, Destination, IssueError, IssueRequest, Purpose, Subject,
    VerifyError,
};

#[test]
fn issue_then_verify_once() {
    let f = fixture();
    let ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    assert_eq!(ticket.attempts_left(), 5);
    assert_eq!(ticket.channel(), &Channel::Sms);
    assert_eq!(ticket.masked_destination().as_str(), "•••• ••• 0123");
    assert_eq!(ticket.expires_at(), start() + Duration::minutes(10));
    assert_eq!(ticket.resend_after(), Some(start() + Duration::seconds(30)));
    assert_eq!(ticket.receipt().id(), Some("recorded-1"));

    let msg = f.verifier.delivery().last().unwrap();
    assert_eq!(msg.code.len(), 6);
    assert!(msg.code.bytes().all(|b| b.is_ascii_digit()));
    assert!(msg.body.contains(&msg.code));
    assert_eq!(
        msg.body,
        format!(
            "{} is your Acme code to sign in from a new device. It expires in 10 minutes. Never share this code.",
            msg.code
        )
    );
    assert!(msg.body.contains("sign in from a new device"));
    assert!(msg.body.contains("10 minutes"));
    assert!(msg.body.contains("Never share this code"));

    let ok = f.check(&ticket, &msg.code).unwrap();
    assert_eq!(ok.subject().as_str(), "u1");
    assert_eq!(ok.purpose(), &Purpose::LoginNewDevice);
    assert_eq!(ok.destination().address(), "+14155550123");
    assert_eq!(ok.verified_at(), start());

    let replay = f.check(&ticket, &msg.code);
    assert!(
        matches!(replay, Err(VerifyError::UnknownChallenge)),
        "{replay:?}"
    );
}

/// A handler verifies for its own purpose: the id and code of a challenge of
/// another purpose (a sign-in code phished and replayed at password reset)
/// fail there as unknown, cost nothing, and still work where they belong.
/// Custom purposes are told apart by name.
#[test]
fn a_code_verifies_only_for_the_purpose_it_was_sent_for() {
    let f = fixture();
    let login_ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let login_code = f.verifier.delivery().last_code().unwrap();
    let wire = Purpose::custom("wire_transfer").unwrap();
    let payee = Purpose::custom("new_payee").unwrap();
    let custom = IssueRequest::new(
        wire.clone(),
        Subject::new("u1").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    );
    let wire_ticket = block_on(f.verifier.issue(&custom)).unwrap();
    let wire_code = f.verifier.delivery().last_code().unwrap();
    for (ticket, code, others) in [
        (
            &login_ticket,
            &login_code,
            [Purpose::PasswordReset, wire.clone()],
        ),
        (&wire_ticket, &wire_code, [payee.clone(), Purpose::StepUp]),
    ] {
        // Three tries at each other purpose: more than the challenge's 5
        // attempts, had any been counted.
        for other in others.iter().cycle().take(6) {
            let r = block_on(f.verifier.verify(other, ticket.challenge_id(), code));
            assert!(matches!(r, Err(VerifyError::UnknownChallenge)), "{r:?}");
        }
        // Nothing was counted: the code still works.
        let ok = f.check(ticket, code);
        assert!(ok.is_ok(), "{ok:?}");
    }
    assert_eq!(wire_ticket.purpose(), &wire);
}

#[test]
fn wrong_codes_count_down_then_even_the_right_code_fails() {
    let f = fixture();
    let ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    for left in (0..5).rev() {
        let r = f.check(&ticket, &wrong(&code));
        match r {
            Err(VerifyError::WrongCode { attempts_left }) => assert_eq!(attempts_left, left),
            other => panic!("{other:?}"),
        }
    }
    let r = f.check(&ticket, &code);
    assert!(matches!(r, Err(VerifyError::TooManyAttempts)), "{r:?}");
}

#[test]
fn typing_is_forgiving_but_malformed_input_is_not_counted() {
    let f = fixture();
    let ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    for bad in ["", "12345", "1234567", "abcdef", "１２３４５Ａ", "12345😀"] {
        let r = f.check(&ticket, bad);
        assert!(
            matches!(r, Err(VerifyError::Malformed(_))),
            "{bad:?}: {r:?}"
        );
        assert!(!r.unwrap_err().counted());
    }
    let spaced = format!(" {}-{} ", &code[..3], &code[3..]);
    assert!(f.check(&ticket, &spaced).is_ok());
    // The right code typed with a full-width or an Arabic-Indic keyboard, or
    // pasted with a no-break space, is the right code.
    let shift = |code: &str, zero: u32| -> String {
        code.chars()
            .map(|c| char::from_u32(zero + c.to_digit(10).unwrap()).unwrap())
            .collect()
    };
    for typed in [
        |c: &str, shift: &dyn Fn(&str, u32) -> String| shift(c, 0xFF10),
        |c: &str, shift: &dyn Fn(&str, u32) -> String| shift(c, 0x0660),
        |c: &str, _: &dyn Fn(&str, u32) -> String| format!("{}\u{a0}{}", &c[..3], &c[3..]),
    ] {
        let ticket = block_on(f.verifier.issue(&login("u2"))).unwrap();
        let code = f.verifier.delivery().last_code().unwrap();
        let typed = typed(&code, &shift);
        let r = f.check(&ticket, &typed);
        assert!(r.is_ok(), "{typed:?}: {r:?}");
    }
}

#[test]
fn expired_challenges_refuse_every_code() {
    let f = fixture();
    let ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    f.clock.advance(Duration::minutes(10));
    let r = f.check(&ticket, &code);
    assert!(matches!(r, Err(VerifyError::Expired)), "{r:?}");
    // One millisecond earlier it was still good.
    let f = fixture();
    let ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    f.clock
        .advance(Duration::minutes(10) - Duration::milliseconds(1));
    assert!(f.check(&ticket, &code).is_ok());
}

#[test]
fn lifetime_per_purpose() {
    let f = fixture_with(relaxed().lifetime_for(Purpose::PasswordReset, Duration::minutes(30)));
    let req = IssueRequest::new(
        Purpose::PasswordReset,
        Subject::new("u1").unwrap(),
        Destination::email("u1@example.com").unwrap(),
    );
    let ticket = block_on(f.verifier.issue(&req)).unwrap();
    assert_eq!(ticket.expires_at(), start() + Duration::minutes(30));
    assert!(
        f.verifier
            .delivery()
            .last()
            .unwrap()
            .body
            .contains("30 minutes")
    );
}

#[test]
fn resend_waits_for_a_growing_cooldown_and_keeps_earlier_codes_working() {
    let f = fixture();
    let ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let id = *ticket.challenge_id();
    let first = f.verifier.delivery().last_code().unwrap();

    match block_on(f.verifier.resend(&id)) {
        Err(IssueError::ResendTooSoon { retry_after }) => {
            assert_eq!(retry_after, start() + Duration::seconds(30))
        }
        other => panic!("{other:?}"),
    }
    f.clock.advance(Duration::seconds(30));
    let t2 = block_on(f.verifier.resend(&id)).unwrap();
    assert_eq!(t2.challenge_id(), &id);
    assert_eq!(t2.expires_at(), ticket.expires_at());
    assert_eq!(
        t2.resend_after(),
        Some(start() + Duration::seconds(30 + 60))
    );
    let second = f.verifier.delivery().last_code().unwrap();

    f.clock.advance(Duration::seconds(59));
    assert!(matches!(
        block_on(f.verifier.resend(&id)),
        Err(IssueError::ResendTooSoon { .. })
    ));
    f.clock.advance(Duration::seconds(1));
    block_on(f.verifier.resend(&id)).unwrap();

    // The first code, still in transit, works (3 live codes by default).
    assert_ne!(first, second);
    assert!(block_on(f.verifier.verify(&Purpose::LoginNewDevice, &id, &first)).is_ok());
}

#[test]
fn only_the_newest_live_codes_verify() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let id = *ticket.challenge_id();
    let mut codes = vec![f.verifier.delivery().last_code().unwrap()];
    for _ in 0..3 {
        block_on(f.verifier.resend(&id)).unwrap();
        codes.push(f.verifier.delivery().last_code().unwrap());
    }
    // Four codes sent; the oldest one was dropped (it is not also one of the live ones
    // with overwhelming probability; skip the check if it happens to be).
    if !codes[1..].contains(&codes[0]) {
        let r = block_on(f.verifier.verify(&Purpose::LoginNewDevice, &id, &codes[0]));
        assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    }
    assert!(block_on(f.verifier.verify(&Purpose::LoginNewDevice, &id, &codes[1])).is_ok());
}

#[test]
fn sends_per_challenge_are_capped() {
    let f = fixture_with(
        relaxed()
            .resend_cooldown(Duration::ZERO, Duration::ZERO)
            .max_sends(2),
    );
    let ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let t2 = block_on(f.verifier.resend(ticket.challenge_id())).unwrap();
    assert_eq!(t2.resend_after(), None);
    match block_on(f.verifier.resend(ticket.challenge_id())) {
        Err(IssueError::SendLimit { retry_after }) => assert_eq!(retry_after, ticket.expires_at()),
        other => panic!("{other:?}"),
    }
    // Asking through issue() is the same challenge, so the same limit.
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::SendLimit { .. })
    ));
    // Once it expires, a new challenge starts.
    f.clock.advance(Duration::minutes(10));
    let fresh = block_on(f.verifier.issue(&login("u1"))).unwrap();
    assert_ne!(fresh.challenge_id(), ticket.challenge_id());
    assert_eq!(fresh.attempts_left(), 5);
}

#[test]
fn issuing_again_while_live_is_a_resend_of_the_same_challenge() {
    let f = fixture();
    let t1 = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let c1 = f.verifier.delivery().last_code().unwrap();
    let _ = f.check(&t1, &wrong(&c1));
    assert!(matches!(
        block_on(f.verifier.issue(&login("u1"))),
        Err(IssueError::ResendTooSoon { .. })
    ));
    f.clock.advance(Duration::seconds(30));
    let t2 = block_on(f.verifier.issue(&login("u1"))).unwrap();
    assert_eq!(t2.challenge_id(), t1.challenge_id());
    assert_eq!(t2.attempts_left(), 4);
    assert_eq!(t2.expires_at(), t1.expires_at());
}

#[test]
fn a_new_destination_replaces_the_challenge_but_keeps_its_counters() {
    let f = fixture();
    let t1 = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let c1 = f.verifier.delivery().last_code().unwrap();
    let _ = f.check(&t1, &wrong(&c1));
    f.clock.advance(Duration::seconds(30));
    let by_email = IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new("u1").unwrap(),
        Destination::email("u1@example.com").unwrap(),
    );
    let t2 = block_on(f.verifier.issue(&by_email)).unwrap();
    assert_ne!(t2.challenge_id(), t1.challenge_id());
    assert_eq!(t2.channel(), &Channel::Email);
    assert_eq!(t2.attempts_left(), 4);
    assert_eq!(t2.expires_at(), t1.expires_at());
    // The old id is gone; the old code does not work on the new challenge.
    let r = f.check(&t1, &c1);
    assert!(matches!(r, Err(VerifyError::UnknownChallenge)), "{r:?}");
    let c2 = f.verifier.delivery().last_code().unwrap();
    if c1 != c2 {
        assert!(f.check(&t2, &c1).is_err());
    }
    assert!(f.check(&t2, &c2).is_ok());
}

#[test]
fn purposes_are_separate_challenges() {
    let f = fixture();
    let login_ticket = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let login_code = f.verifier.delivery().last_code().unwrap();
    let reset = IssueRequest::new(
        Purpose::PasswordReset,
        Subject::new("u1").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    );
    let reset_ticket = block_on(f.verifier.issue(&reset)).unwrap();
    assert_ne!(login_ticket.challenge_id(), reset_ticket.challenge_id());
    assert!(
        block_on(f.verifier.verify(
            login_ticket.purpose(),
            login_ticket.challenge_id(),
            &login_code
        ))
        .is_ok()
    );
}

#[test]
fn cancel_ends_a_challenge() {
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    block_on(f.verifier.cancel(t.challenge_id())).unwrap();
    assert!(matches!(
        f.check(&t, &code),
        Err(VerifyError::UnknownChallenge)
    ));
    assert!(matches!(
        block_on(f.verifier.cancel(t.challenge_id())),
        Err(vericode::CancelError::UnknownChallenge)
    ));
    assert!(matches!(
        block_on(f.verifier.resend(t.challenge_id())),
        Err(IssueError::UnknownChallenge)
    ));
}

#[test]
fn a_forged_id_cannot_cancel_or_probe_a_challenge() {
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    // Same subject and purpose (the public part), another nonce.
    let text = t.challenge_id().to_string();
    let forged: ChallengeId = format!("{}{}", &text[..32], "A".repeat(43))
        .parse()
        .unwrap();
    assert!(matches!(
        block_on(f.verifier.cancel(&forged)),
        Err(vericode::CancelError::UnknownChallenge)
    ));
    assert!(matches!(
        block_on(f.verifier.verify(t.purpose(), &forged, &code)),
        Err(VerifyError::UnknownChallenge)
    ));
    assert!(f.check(&t, &code).is_ok());
}

#[test]
fn bound_context_must_match_exactly() {
    let f = fixture();
    let bound = Context::new("change-email:new@example.com").unwrap();
    let req = IssueRequest::new(
        Purpose::CredentialChange,
        Subject::new("u1").unwrap(),
        Destination::email("new@example.com").unwrap(),
    )
    .bind(bound.clone());
    let t = block_on(f.verifier.issue(&req)).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let other = Context::new("change-email:evil@example.com").unwrap();
    match block_on(
        f.verifier
            .verify_bound(t.purpose(), t.challenge_id(), &code, &other),
    ) {
        Err(VerifyError::ContextMismatch { attempts_left }) => assert_eq!(attempts_left, 4),
        r => panic!("{r:?}"),
    }
    // Without the context at all, the right code does not verify either.
    assert!(matches!(
        f.check(&t, &code),
        Err(VerifyError::ContextMismatch { attempts_left: 3 })
    ));
    // A wrong code with some context is just a wrong code (no oracle on the context).
    assert!(matches!(
        block_on(
            f.verifier
                .verify_bound(t.purpose(), t.challenge_id(), &wrong(&code), &other)
        ),
        Err(VerifyError::WrongCode { attempts_left: 2 })
    ));
    assert!(
        block_on(
            f.verifier
                .verify_bound(t.purpose(), t.challenge_id(), &code, &bound)
        )
        .is_ok()
    );
}

#[test]
fn an_unbound_challenge_refuses_a_context() {
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let ctx = Context::new("anything").unwrap();
    assert!(matches!(
        block_on(
            f.verifier
                .verify_bound(t.purpose(), t.challenge_id(), &code, &ctx)
        ),
        Err(VerifyError::ContextMismatch { .. })
    ));
}

#[test]
fn resend_of_a_bound_challenge_stays_bound() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let ctx = Context::new("pay 42.00 EUR to ACME").unwrap();
    let req = IssueRequest::new(
        Purpose::StepUp,
        Subject::new("u1").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    )
    .bind(ctx.clone());
    let t = block_on(f.verifier.issue(&req)).unwrap();
    let t2 = block_on(f.verifier.resend(t.challenge_id())).unwrap();
    assert_eq!(t.challenge_id(), t2.challenge_id());
    let code = f.verifier.delivery().last_code().unwrap();
    assert!(matches!(
        f.check(&t, &code),
        Err(VerifyError::ContextMismatch { .. })
    ));
    assert!(
        block_on(
            f.verifier
                .verify_bound(t.purpose(), t.challenge_id(), &code, &ctx)
        )
        .is_ok()
    );
}

#[test]
fn alphanumeric_codes_are_case_insensitive() {
    let f = fixture_with(relaxed().code_format(vericode::CodeFormat::unambiguous(8).unwrap()));
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    assert_eq!(code.len(), 8);
    assert!(
        code.bytes()
            .all(|b| b"23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(&b))
    );
    assert!(f.check(&t, &code.to_lowercase()).is_ok());
}

#[test]
fn user_messages_do_not_leak_details() {
    let errors = [
        VerifyError::WrongCode { attempts_left: 1 },
        VerifyError::ContextMismatch { attempts_left: 1 },
        VerifyError::TooManyAttempts,
        VerifyError::Expired,
        VerifyError::UnknownChallenge,
        VerifyError::Locked { until: None },
    ];
    for e in &errors {
        let m = e.user_message();
        assert!(!m.is_empty());
        assert!(!m.contains("account") && !m.contains("exist"), "{m}");
    }
    // A wrong code and a right code with the wrong details read the same.
    assert_eq!(errors[0].user_message(), errors[1].user_message());
    // Expired and unknown read the same (no probing of which ids existed).
    assert_eq!(errors[3].user_message(), errors[4].user_message());
}
