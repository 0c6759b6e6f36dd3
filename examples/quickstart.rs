//! A login from a new device, told as a story.
//!
//! Ana signs in from a laptop her account has never seen. The service texts
//! her a code, she mistypes it once, then types it right; someone replays the
//! code and is refused; a second challenge is left to expire.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};
use vericode::{
    Delivery, Destination, IssueRequest, KeyId, ManualClock, MemoryStore, Message, Purpose,
    Receipt, SecretKey, Subject, Verifier, VerifyError,
};

/// The application's own delivery. A real one calls an SMS provider; this one
/// prints the text with the code blanked out (never print or log a code) and
/// keeps the code where "Ana's phone" can read it.
#[derive(Default)]
struct PrintedSms {
    phone_inbox: Mutex<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the SMS provider refused the message")]
struct SmsError;

impl Delivery for PrintedSms {
    type Error = SmsError;

    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, SmsError>> + Send {
        let code = message.code().expose();
        println!(
            "    📱 SMS to {}: \"{}\"",
            message.destination().masked(),
            message.body().replace(code, &"•".repeat(code.len()))
        );
        self.phone_inbox
            .lock()
            .unwrap()
            .push(message.code().expose().to_owned());
        std::future::ready(Ok(Receipt::with_id("sms-0001")))
    }
}

impl PrintedSms {
    fn latest_code_on_the_phone(&self) -> String {
        self.phone_inbox
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verifier = Verifier::builder()
        .store(MemoryStore::new())
        .delivery(PrintedSms::default())
        // In production: load the secret from your secret manager
        // (`SecretKey::from_hex`), the same on every server.
        .signing_key(KeyId::new(1), SecretKey::generate())
        .app_name("Acme")
        .build()?;

    println!("1. Ana signs in from a new laptop; the service challenges her phone.");
    let ana = Subject::new("account-1842")?;
    let request = IssueRequest::new(
        Purpose::LoginNewDevice,
        ana.clone(),
        Destination::sms("+44 7700 900123")?,
    );
    let ticket = verifier.issue(&request).await?;
    println!(
        "    ticket: sent by {} to {}, {} attempts, expires in {} min, resend after {} s",
        ticket.channel(),
        ticket.masked_destination(),
        ticket.attempts_left(),
        // Rounded up: a moment has passed since the ticket was made.
        ((ticket.expires_at() - OffsetDateTime::now_utc()).whole_seconds() + 59) / 60,
        ticket.resend_after().map_or(0, |t| {
            ((t - OffsetDateTime::now_utc()).whole_milliseconds() + 999) / 1000
        }),
    );

    let code = verifier.delivery().latest_code_on_the_phone();
    // One digit off: the last digit plus one.
    let last = code.as_bytes()[code.len() - 1] - b'0';
    let typo = format!("{}{}", &code[..code.len() - 1], (last + 1) % 10);

    println!("2. She mistypes it.");
    match verifier
        .verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &typo)
        .await
    {
        Err(e @ VerifyError::WrongCode { attempts_left }) => {
            println!(
                "    refused: {} ({attempts_left} attempts left)",
                e.user_message()
            )
        }
        other => return Err(format!("expected a wrong code, got {other:?}").into()),
    }

    println!("3. She types it as she reads it, with a space in the middle.");
    let typed = format!("{} {}", &code[..3], &code[3..]);
    let verified = verifier
        .verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &typed)
        .await?;
    println!(
        "    verified: {} proved they hold {} ({})",
        verified.subject(),
        verified.destination().masked(),
        verified.purpose()
    );

    println!("4. Someone who saw the code tries it again.");
    match verifier
        .verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &code)
        .await
    {
        Err(e @ VerifyError::UnknownChallenge) => println!("    refused: {}", e.user_message()),
        other => return Err(format!("a replay must fail, got {other:?}").into()),
    }

    println!("5. Later, a password reset is requested, but the code is never typed.");
    // Expiry takes ten real minutes. To show it without waiting, this step
    // runs on a verifier whose clock is moved by hand, as tests do
    // (`ManualClock`). A service leaves the clock out: the system clock is
    // the default.
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let verifier = Verifier::builder()
        .store(MemoryStore::new())
        .delivery(PrintedSms::default())
        .clock(clock.clone())
        .signing_key(KeyId::new(1), SecretKey::generate())
        .app_name("Acme")
        .build()?;
    let reset = IssueRequest::new(
        Purpose::PasswordReset,
        ana,
        Destination::sms("+447700900123")?,
    );
    let ticket = verifier.issue(&reset).await?;
    let code = verifier.delivery().latest_code_on_the_phone();
    clock.advance(Duration::minutes(10));
    println!("    ...ten minutes pass...");
    match verifier
        .verify(&Purpose::PasswordReset, ticket.challenge_id(), &code)
        .await
    {
        Err(e @ VerifyError::Expired) => println!("    refused: {}", e.user_message()),
        other => return Err(format!("an expired code must fail, got {other:?}").into()),
    }

    println!("Done: one success, every other attempt refused.");
    Ok(())
}
