//! The quickstart flow on Redis, with two "servers" sharing one Redis.
//!
//! Server A issues the code; Ana's wrong guess, her right code and a replay
//! all go to server B, which shares nothing with A but the Redis and the
//! signing key. The attempt A counted is B's to see, and so is the used code.
//!
//! ```sh
//! redis-server --port 6379 --save "" --appendonly no &   # or any Redis
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run -p vericode-redis --example two_servers
//! ```

use std::error::Error;

use vericode::{
    Destination, IssueRequest, KeyId, Purpose, RecordingDelivery, SecretKey, Subject, Verifier,
    VerifyError,
};
use vericode_redis::RedisStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    run(&url).await
}

/// The story, against the Redis at `url`.
pub async fn run(url: &str) -> Result<(), Box<dyn Error>> {
    // Both servers load the same signing and lookup keys from the secret
    // manager, the same at every start. (Fixed bytes here: this example's
    // keys guard nothing. Never put real keys in code.)
    let (secret, lookup) = (
        SecretKey::from_bytes(&[0x5e; 32])?,
        SecretKey::from_bytes(&[0x10; 32])?,
    );
    let prefix = "vericode-example:";

    println!("Server A and server B each open their own connection to Redis.");
    let store_a = RedisStore::connect(url).await?.with_prefix(prefix)?;
    // At startup: refuses a Redis that may evict records, loads the script.
    store_a.load_scripts().await?;
    let server_a = Verifier::builder()
        .store(store_a)
        .delivery(RecordingDelivery::new()) // A's SMS sender; stands in for Ana's phone
        .signing_key(KeyId::new(1), secret.clone())
        .lookup_key(lookup.clone())
        .app_name("Acme")
        .build()?;
    let server_b = Verifier::builder()
        .store(RedisStore::connect(url).await?.with_prefix(prefix)?)
        .delivery(RecordingDelivery::new())
        .signing_key(KeyId::new(1), secret)
        .lookup_key(lookup)
        .app_name("Acme")
        .build()?;
    // At startup, each: every server on this Redis holds the same lookup key.
    server_a.check_lookup_key().await?;
    server_b.check_lookup_key().await?;
    server_a.check_signing_keys().await?;
    server_b.check_signing_keys().await?;

    // A new account each run, so that runs do not meet each other's limits.
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos()
        % 1000;
    let ana = Subject::new(&format!("account-{run_id:03}-{}", std::process::id()))?;
    let request = IssueRequest::new(
        Purpose::LoginNewDevice,
        ana,
        Destination::sms(&format!("+447700900{run_id:03}"))?,
    );

    println!("1. Ana signs in from a new laptop; server A texts her a code.");
    let ticket = server_a.issue(&request).await?;
    println!(
        "   sent to {}, {} attempts, challenge id handed to the client",
        ticket.masked_destination(),
        ticket.attempts_left()
    );
    let code = server_a
        .delivery()
        .last_code()
        .ok_or("server A delivered nothing")?;
    let last = code.as_bytes()[code.len() - 1] - b'0';
    let typo = format!("{}{}", &code[..code.len() - 1], (last + 1) % 10);

    println!("2. She mistypes it; the load balancer sends her to server B.");
    match server_b
        .verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &typo)
        .await
    {
        Err(e @ VerifyError::WrongCode { attempts_left }) => {
            println!(
                "   server B: {} ({attempts_left} attempts left)",
                e.user_message()
            );
            if attempts_left + 1 != ticket.attempts_left() {
                return Err("server B did not count the attempt on A's challenge".into());
            }
        }
        other => return Err(format!("expected a wrong code, got {other:?}").into()),
    }

    println!("3. She types it right; server B verifies the code server A sent.");
    let verified = server_b
        .verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &code)
        .await?;
    println!(
        "   server B: verified {} for {}",
        verified.subject(),
        verified.purpose()
    );

    println!("4. Someone replays the code on server A.");
    match server_a
        .verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &code)
        .await
    {
        Err(e @ VerifyError::UnknownChallenge) => println!("   server A: {}", e.user_message()),
        other => return Err(format!("a replay must fail, got {other:?}").into()),
    }

    println!("Done: two servers, one Redis, one success.");
    Ok(())
}
