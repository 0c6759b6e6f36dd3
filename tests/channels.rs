//! Channel choice and fallback: a retryable failure moves on to the next named
//! destination within the same challenge; the ticket says which channel
//! carried the code; a resend may pick any named destination.

mod common;

use std::sync::Mutex;

use common::*;
use time::Duration;
use vericode::{
    Channel, Delivery, Destination, InputError, IssueError, IssueRequest, KeyId, ManualClock,
    MemoryStore, Message, Purpose, Receipt, Subject, Verifier, VerifyError,
};

/// SMS is down (retryably, or not); everything else is delivered and kept.
struct SmsDown {
    retryable: bool,
    delivered: Mutex<Vec<(Channel, String)>>,
    tried: Mutex<Vec<Channel>>,
}

#[derive(Debug, thiserror::Error)]
#[error("SMS gateway unavailable")]
struct GatewayDown;

impl Delivery for SmsDown {
    type Error = GatewayDown;
    fn deliver(
        &self,
        m: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, GatewayDown>> + Send {
        let channel = m.destination().channel().clone();
        self.tried.lock().unwrap().push(channel.clone());
        let r = if channel == Channel::Sms {
            Err(GatewayDown)
        } else {
            self.delivered
                .lock()
                .unwrap()
                .push((channel, m.code().expose().to_owned()));
            Ok(Receipt::with_id("mail-1"))
        };
        std::future::ready(r)
    }
    fn is_retryable(&self, _: &GatewayDown) -> bool {
        self.retryable
    }
}

fn verifier(retryable: bool) -> Verifier<MemoryStore, SmsDown, ManualClock> {
    verifier_with(
        retryable,
        relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO),
    )
}

fn verifier_with(
    retryable: bool,
    policy: vericode::Policy,
) -> Verifier<MemoryStore, SmsDown, ManualClock> {
    let delivery = || SmsDown {
        retryable,
        delivered: Mutex::default(),
        tried: Mutex::default(),
    };
    Verifier::builder()
        .store(MemoryStore::new())
        .delivery(delivery())
        .clock(ManualClock::new(start()))
        .policy(policy)
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap()
}

fn request() -> IssueRequest {
    IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new("u1").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    )
    .fallback(Destination::email("ana@example.com").unwrap())
}

#[test]
fn a_retryable_sms_failure_falls_back_to_email_in_the_same_challenge() {
    let v = verifier(true);
    let t = block_on(v.issue(&request())).unwrap();
    assert_eq!(t.channel(), &Channel::Email);
    assert_eq!(t.masked_destination().as_str(), "a•••@example.com");
    assert_eq!(t.receipt().id(), Some("mail-1"));
    assert_eq!(
        *v.delivery().tried.lock().unwrap(),
        [Channel::Sms, Channel::Email]
    );
    let code = v.delivery().delivered.lock().unwrap()[0].1.clone();
    let ok = block_on(v.verify(t.purpose(), t.challenge_id(), &code)).unwrap();
    assert_eq!(ok.destination().channel(), &Channel::Email);
}

/// A fallback is a send like any other: the global limit, the budget of
/// every message paid for, counts it (it counted the request once, however
/// many of its destinations were tried).
#[test]
fn a_fallback_delivery_counts_against_the_global_limit() {
    let global = vericode::RateLimit::new(3, Duration::hours(1)).unwrap();
    let v = verifier_with(true, relaxed().limit(vericode::Limit::Global, global));
    // The SMS (charged, refused by the gateway), then the email: two of three.
    block_on(v.issue(&request())).unwrap();
    let other = |n: &str| {
        IssueRequest::new(
            Purpose::LoginNewDevice,
            Subject::new(n).unwrap(),
            Destination::email(&format!("{n}@example.com")).unwrap(),
        )
    };
    block_on(v.issue(&other("u2"))).unwrap();
    assert!(
        matches!(
            block_on(v.issue(&other("u3"))),
            Err(IssueError::RateLimited {
                limit: vericode::Limit::Global,
                ..
            })
        ),
        "the fallback's send was not counted"
    );
}

#[test]
fn a_final_error_does_not_fall_back() {
    let v = verifier(false);
    assert!(matches!(
        block_on(v.issue(&request())),
        Err(IssueError::Delivery(_))
    ));
    assert_eq!(*v.delivery().tried.lock().unwrap(), [Channel::Sms]);
    assert!(v.store().is_empty());
}

/// Issuing again to a live challenge names the request's fallbacks anew: one
/// the request no longer names (an address the person removed) cannot be
/// sent to any more.
#[test]
fn issuing_again_replaces_the_named_fallbacks() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let email = Destination::email("ana@example.com").unwrap();
    // Named as a fallback (see the test below for a resend via one).
    let t = block_on(f.verifier.issue(&request())).unwrap();
    let without = IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new("u1").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    );
    let again = block_on(f.verifier.issue(&without)).unwrap();
    assert_eq!(again.challenge_id(), t.challenge_id(), "a resend of it");
    assert!(matches!(
        block_on(f.verifier.resend_via(t.challenge_id(), &email)),
        Err(IssueError::Input(InputError::NotNamed))
    ));
}

#[test]
fn a_resend_may_go_to_another_named_destination_only() {
    let v = verifier(true);
    let t = block_on(v.issue(&request())).unwrap();
    // Now via email; ask for SMS again: it fails retryably, so email again.
    let sms = Destination::sms("+14155550123").unwrap();
    let t2 = block_on(v.resend_via(t.challenge_id(), &sms)).unwrap();
    assert_eq!(t2.challenge_id(), t.challenge_id());
    assert_eq!(
        t2.challenge_id().to_string(),
        t.challenge_id().to_string(),
        "a resend answers the id it was given, to the letter"
    );
    assert_eq!(t2.channel(), &Channel::Email);
    let stranger = Destination::sms("+14155550999").unwrap();
    assert!(matches!(
        block_on(v.resend_via(t.challenge_id(), &stranger)),
        Err(IssueError::Input(InputError::NotNamed))
    ));
    // Both codes sent in this challenge work (3 live codes).
    let codes: Vec<String> = v
        .delivery()
        .delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(_, c)| c.clone())
        .collect();
    assert_eq!(codes.len(), 2);
    assert!(block_on(v.verify(t.purpose(), t.challenge_id(), &codes[0])).is_ok());
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &codes[1]));
    assert!(matches!(r, Err(VerifyError::UnknownChallenge)), "{r:?}");
}

#[test]
fn fallbacks_are_few_and_distinct() {
    let v = verifier(true);
    let dup = request().fallback(Destination::email("ana@example.com").unwrap());
    assert!(matches!(
        block_on(v.issue(&dup)),
        Err(IssueError::Input(InputError::Fallbacks))
    ));
    let many = (0..4).fold(
        IssueRequest::new(
            Purpose::StepUp,
            Subject::new("u2").unwrap(),
            Destination::sms("+14155550123").unwrap(),
        ),
        |r, i| r.fallback(Destination::email(&format!("a{i}@example.com")).unwrap()),
    );
    assert!(matches!(
        block_on(v.issue(&many)),
        Err(IssueError::Input(InputError::Fallbacks))
    ));
}

#[test]
fn a_custom_alphabet_takes_only_characters_an_sms_carries_as_one() {
    use vericode::{Alphabet, CodeFormat, ConfigError};
    // Found by an audit: '`' (not GSM-7) and the extension characters (two
    // septets each) were taken, `build()` checked the SMS with a code of
    // '0's, and then about one issue in five failed, its sends charged.
    for c in ['`', '^', '{', '}', '\\', '[', ']', '~', '|'] {
        let chars = format!("0123456789{c}");
        assert!(
            matches!(Alphabet::custom(&chars), Err(ConfigError::Alphabet(_))),
            "{c:?} taken"
        );
    }
    // Every character it takes, in the longest codes: every issue fits.
    let widest: String = ('!'..='~')
        .filter(|c| !c.is_ascii_lowercase() && *c != '-' && !"`^{}\\[]~|".contains(*c))
        .collect();
    let format = CodeFormat::new(Alphabet::custom(&widest).unwrap(), 12).unwrap();
    let f = fixture_with(relaxed().code_format(format));
    for i in 0..100 {
        let r = block_on(f.verifier.issue(&login(&format!("user-{i}"))));
        assert!(r.is_ok(), "{r:?}");
    }
}

/// `Verified::destination` names where the typed code went, whichever
/// named destination the challenge was moved to since.
#[test]
fn verified_names_the_destination_of_the_code_typed() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let phone = Destination::sms("+14155550123").unwrap();
    let mail = Destination::email("ana@example.com").unwrap();
    let request = |fallbacks: &[&Destination]| {
        fallbacks.iter().fold(
            IssueRequest::new(Purpose::StepUp, Subject::new("u1").unwrap(), phone.clone()),
            |r, d| r.fallback((*d).clone()),
        )
    };
    let t = block_on(f.verifier.issue(&request(&[&mail]))).unwrap();
    let to_phone = f.verifier.delivery().last_code().unwrap();
    block_on(f.verifier.resend_via(t.challenge_id(), &mail)).unwrap();
    let to_mail = f.verifier.delivery().last_code().unwrap();
    assert_eq!(f.check(&t, &to_phone).unwrap().destination(), &phone);

    // Again, the other way round: the mail's code after a move back to the
    // phone.
    let t = block_on(f.verifier.issue(&request(&[&mail]))).unwrap();
    block_on(f.verifier.resend_via(t.challenge_id(), &mail)).unwrap();
    let to_mail_2 = f.verifier.delivery().last_code().unwrap();
    block_on(f.verifier.resend_via(t.challenge_id(), &phone)).unwrap();
    assert_eq!(f.check(&t, &to_mail_2).unwrap().destination(), &mail);
    assert_ne!(to_mail, to_mail_2);
}

/// Issuing again without a fallback the challenge had named retires the
/// codes sent to it: an address the application no longer names (removed
/// from the account, perhaps) confirms nothing more.
#[test]
fn codes_sent_to_a_fallback_no_longer_named_stop_working() {
    let f = fixture_with(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let phone = Destination::sms("+14155550123").unwrap();
    let mail = Destination::email("ana@example.com").unwrap();
    let with_mail = IssueRequest::new(Purpose::StepUp, Subject::new("u1").unwrap(), phone.clone())
        .fallback(mail.clone());
    let t = block_on(f.verifier.issue(&with_mail)).unwrap();
    let to_phone = f.verifier.delivery().last_code().unwrap();
    block_on(f.verifier.resend_via(t.challenge_id(), &mail)).unwrap();
    let to_mail = f.verifier.delivery().last_code().unwrap();
    block_on(f.verifier.resend_via(t.challenge_id(), &phone)).unwrap();
    // The same challenge, asked for again without the mail.
    let without = IssueRequest::new(Purpose::StepUp, Subject::new("u1").unwrap(), phone.clone());
    let again = block_on(f.verifier.issue(&without)).unwrap();
    assert_eq!(again.challenge_id(), t.challenge_id());
    let r = f.check(&t, &to_mail);
    assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    assert_eq!(f.check(&t, &to_phone).unwrap().destination(), &phone);
}
