//! Transaction binding (PSD2 dynamic linking): a code issued for an action
//! with details verifies only for exactly those details, and every message
//! of the challenge shows them, in the request's language.

mod common;

use common::*;
use time::Duration;
use vericode::{
    Context, Destination, Details, IssueError, IssueRequest, KeyId, Locale, ManualClock,
    MemoryStore, MessageError, Purpose, RecordingDelivery, Subject, TemplateKind, Verifier,
    VerifyError,
};

fn payment(details: &Details) -> IssueRequest {
    IssueRequest::new(
        Purpose::StepUp,
        Subject::new("u1").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    )
    .details(details.clone())
}

#[test]
fn the_code_approves_exactly_the_details_shown() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let pay = Details::new("approve a payment of 42.00 EUR to ACME").unwrap();
    let t = block_on(f.verifier.issue(&payment(&pay))).unwrap();
    let first = f.verifier.delivery().last().unwrap();
    assert!(
        first
            .body
            .contains("approve a payment of 42.00 EUR to ACME"),
        "{}",
        first.body
    );
    // A resend shows the same details.
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    let second = f.verifier.delivery().last().unwrap();
    assert!(second.body.contains("42.00 EUR to ACME"));
    // Other details (a tampered amount) fail even with the right code.
    let tampered =
        Context::from(&Details::new("approve a payment of 4200.00 EUR to ACME").unwrap());
    let r =
        block_on(
            f.verifier
                .verify_bound(t.purpose(), t.challenge_id(), &second.code, &tampered),
        );
    assert!(
        matches!(r, Err(VerifyError::ContextMismatch { .. })),
        "{r:?}"
    );
    assert!(matches!(
        f.check(&t, &second.code),
        Err(VerifyError::ContextMismatch { .. })
    ));
    assert!(
        block_on(f.verifier.verify_bound(
            t.purpose(),
            t.challenge_id(),
            &second.code,
            &Context::from(&pay)
        ))
        .is_ok()
    );
}

/// A code never approves details other than those its messages show: binding
/// another context after `details` (the last call wins) takes the details out
/// of the messages, and the code approves the context only.
#[test]
fn a_context_bound_after_details_replaces_them_in_the_message_too() {
    let f = fixture();
    let pay = Details::new("approve a payment of 42.00 EUR to ACME").unwrap();
    let other = Context::new("pay 9999.00 EUR to MALLORY").unwrap();
    let req = payment(&pay).bind(other.clone());
    assert!(req.shown_details().is_none());
    let t = block_on(f.verifier.issue(&req)).unwrap();
    let sent = f.verifier.delivery().last().unwrap();
    assert!(!sent.body.contains("ACME"), "{}", sent.body);
    let shown = block_on(f.verifier.verify_bound(
        t.purpose(),
        t.challenge_id(),
        &sent.code,
        &Context::from(&pay),
    ));
    assert!(
        matches!(shown, Err(VerifyError::ContextMismatch { .. })),
        "{shown:?}"
    );
    assert!(
        block_on(
            f.verifier
                .verify_bound(t.purpose(), t.challenge_id(), &sent.code, &other)
        )
        .is_ok()
    );
    // And `details` after `bind` binds and shows the details.
    let req = IssueRequest::new(
        Purpose::StepUp,
        Subject::new("u2").unwrap(),
        Destination::sms("+14155550124").unwrap(),
    )
    .bind(other.clone())
    .details(pay.clone());
    assert_eq!(req.context(), Some(&Context::from(&pay)));
    assert_eq!(req.shown_details(), Some(&pay));
}

#[test]
fn messages_follow_the_request_locale_and_channel() {
    let f = fixture();
    let req = IssueRequest::new(
        Purpose::PasswordReset,
        Subject::new("u1").unwrap(),
        Destination::email("ana@example.com").unwrap(),
    )
    .locale(Locale::De);
    block_on(f.verifier.issue(&req)).unwrap();
    let mail = f.verifier.delivery().last().unwrap();
    assert!(mail.body.contains(&mail.code));
    assert!(mail.body.contains("Acme"));
    assert!(mail.body.contains("10 Minuten"), "{}", mail.body);
    let es = IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new("u2").unwrap(),
        Destination::sms("+34600000000").unwrap(),
    )
    .locale(Locale::Es);
    block_on(f.verifier.issue(&es)).unwrap();
    let sms = f.verifier.delivery().last().unwrap();
    assert!(sms.body.contains(&sms.code));
    assert!(vericode::sms_length(&sms.body).fits_one_segment());
}

#[test]
fn details_too_long_for_one_sms_are_refused_before_sending() {
    let f = fixture();
    // Spanish SMS are UCS-2 (70 units); 80 characters of details cannot fit.
    let long = Details::new(&"x".repeat(80)).unwrap();
    let r = block_on(f.verifier.issue(&payment(&long).locale(Locale::Es)));
    assert!(
        matches!(r, Err(IssueError::Message(MessageError::SmsTooLong { .. }))),
        "{r:?}"
    );
    assert!(f.verifier.delivery().sent().is_empty());
    // The send's claim was given back: nothing is left.
    assert!(f.store.inner.is_empty());
    // Retrying cannot fix it: the application's to fix, and the person is
    // not told to try again (a review).
    let e = r.unwrap_err();
    assert!(e.is_application_error());
    assert!(
        !e.user_message().contains("Try again"),
        "{}",
        e.user_message()
    );
}

#[test]
fn no_channel_sends_a_code_for_details_its_template_does_not_show() {
    // Found by an audit: only the SMS path checked that its template shows
    // `{action}`; an email or voice template without it sent the code for
    // the details without them.
    let no_action = vericode::Messages::builder()
        .template(
            Locale::En,
            TemplateKind::EmailText,
            None,
            "Your {app} code is {code}.",
        )
        .template(Locale::En, TemplateKind::EmailHtml, None, "<p>{code}</p>")
        .template(
            Locale::En,
            TemplateKind::Voice,
            None,
            "Your {app} code is {code}.",
        )
        .build()
        .unwrap();
    let verifier = Verifier::builder()
        .store(MemoryStore::new())
        .delivery(RecordingDelivery::new())
        .clock(ManualClock::new(start()))
        .policy(relaxed())
        .signing_key(KeyId::new(1), key(1))
        .messages(no_action)
        .app_name("Acme")
        .build()
        .unwrap();
    let pay = Details::new("approve a payment of 9999.00 EUR to MALLORY").unwrap();
    let to = [
        Destination::email("ana@example.com").unwrap(),
        Destination::voice("+14155550123").unwrap(),
    ];
    for (i, to) in to.into_iter().enumerate() {
        let subject = |s: &str| Subject::new(&format!("{s}-{i}")).unwrap();
        let req =
            IssueRequest::new(Purpose::StepUp, subject("paying"), to.clone()).details(pay.clone());
        let r = block_on(verifier.issue(&req));
        assert!(
            matches!(r, Err(IssueError::Message(MessageError::DetailsNotShown))),
            "{to:?}: {r:?}"
        );
        // Without details the same templates serve.
        let plain = IssueRequest::new(Purpose::StepUp, subject("plain"), to.clone());
        block_on(verifier.issue(&plain)).unwrap();
    }
    assert_eq!(
        verifier.delivery().sent().len(),
        2,
        "only the plain messages went"
    );
}
