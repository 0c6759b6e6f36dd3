//! Channels: an SMS gateway that is down, the fallback to email within the
//! same challenge, the masked destinations, and what each channel's message
//! looks like (SMS with autofill lines, email text and HTML, voice).
//!
//! Run it with `cargo run --example channels`.

use std::sync::Mutex;

use vericode::{
    Channel, Delivery, Destination, IssueRequest, KeyId, Locale, MemoryStore, Message, Messages,
    Purpose, Receipt, SecretKey, Subject, Verifier,
};

/// The application's delivery: the SMS gateway is down today (a retryable
/// error), email works. It prints what it sends.
#[derive(Default)]
struct Gateways {
    inbox: Mutex<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the SMS gateway timed out")]
struct GatewayTimeout;

impl Delivery for Gateways {
    type Error = GatewayTimeout;

    fn deliver(
        &self,
        m: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, GatewayTimeout>> + Send {
        let to = m.destination().masked();
        let result = match m.destination().channel() {
            Channel::Sms => {
                println!("  ✗ SMS to {to}: gateway timeout");
                Err(GatewayTimeout)
            }
            _ => {
                let r = m.rendered();
                // Printed with the code blanked out: never print or log a code.
                let code = m.code().expose();
                let blank = |text: &str| text.replace(code, &"•".repeat(code.len()));
                println!("  ✓ email to {to}");
                println!(
                    "    subject: {}",
                    blank(r.email_subject().unwrap_or_default())
                );
                println!(
                    "    text:    {}",
                    blank(m.body()).replace('\n', "\n             ")
                );
                println!(
                    "    html:    {}",
                    blank(r.email_html().unwrap_or_default()).replace('\n', " ")
                );
                self.inbox
                    .lock()
                    .unwrap()
                    .push(m.code().expose().to_owned());
                Ok(Receipt::with_id("email-7f3a"))
            }
        };
        std::future::ready(result)
    }

    fn is_retryable(&self, _: &GatewayTimeout) -> bool {
        true
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Autofill lines take room: with both, Spanish and Portuguese SMS (UCS-2,
    // 70 units) no longer fit one segment, and build() would say so. This
    // service sends in English, German and French.
    let messages = Messages::builder()
        .webotp("example.com", None)
        .android_app_hash("FA+9qCX9VSu")
        .locales(Locale::En, &[Locale::De, Locale::Fr])
        .build()?;
    let verifier = Verifier::builder()
        .store(MemoryStore::new())
        .delivery(Gateways::default())
        .messages(messages.clone())
        .signing_key(KeyId::new(1), SecretKey::generate())
        .app_name("Acme")
        .build()?;

    println!("1. Ana's phone is her first choice, her email the fallback.");
    let request = IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new("account-1842")?,
        Destination::sms("+44 7700 900123")?,
    )
    .fallback(Destination::email("ana.silva@example.com")?);
    let ticket = verifier.issue(&request).await?;
    println!(
        "   ticket: carried by {} to {} (receipt {})",
        ticket.channel(),
        ticket.masked_destination(),
        ticket.receipt().id().unwrap_or("-")
    );

    println!("2. She types the code from her email.");
    let code = verifier
        .delivery()
        .inbox
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or_default();
    let verified = verifier
        .verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &code)
        .await?;
    println!("   verified through {}", verified.destination().masked());

    println!("3. What each channel would carry (a sample code, 10 minutes):");
    let sms = messages.preview(Locale::En, &Purpose::LoginNewDevice, &Channel::Sms, "Acme")?;
    println!(
        "   SMS ({} units of {}):\n     {}",
        sms.sms_length().map_or(0, |l| l.units()),
        sms.sms_length().map_or(0, |l| l.limit()),
        sms.text().replace('\n', "\n     ")
    );
    let voice = messages.preview(Locale::Fr, &Purpose::PasswordReset, &Channel::Voice, "Acme")?;
    println!("   voice (fr): {}", voice.text());
    let plain = Messages::default();
    let es = plain.preview(Locale::Es, &Purpose::StepUp, &Channel::Sms, "Acme")?;
    println!("   SMS (es, no autofill): {}", es.text());
    Ok(())
}
