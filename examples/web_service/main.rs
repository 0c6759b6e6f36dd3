//! A small web service on vericode: password login that challenges devices
//! the account has not seen, remembered devices, and an email change bound to
//! the new address. The service itself is in `app.rs`, which
//! `tests/web_service_e2e.rs` drives over real HTTP.
//!
//! ```sh
//! cargo run --example web_service          # listens on 127.0.0.1:8080 (PORT to change)
//! ```
//!
//! Then, in another terminal (the codes appear in the service's output,
//! marked as demo-only; `jar` keeps the cookies):
//!
//! ```sh
//! B=http://localhost:8080; J='-H content-type:application/json -c jar -b jar'
//! curl -si $J $B/login -d '{"email":"ana@example.com","password":"ana-demo-password"}'
//! #   202 {"status":"challenge","challenge_id":"…","masked_destination":"a•••@example.com",…}
//! curl -si $J $B/login/verify -d '{"challenge_id":"…","code":"123456"}'
//! #   200, Set-Cookie: session=…; device=…  (Secure; HttpOnly; SameSite=Strict)
//! curl -si $J $B/login -d '{"email":"ana@example.com","password":"ana-demo-password"}'
//! #   200 {"status":"logged_in"}: the remembered device skips the code
//! curl -si $J $B/login/resend -d '{"challenge_id":"…"}'           # another code, after 30 s
//! curl -si $J $B/me
//! curl -si $J -X POST $B/devices/revoke                            # next login is challenged
//! curl -si $J $B/email/change  -d '{"new_email":"ana@example.net","password":"ana-demo-password"}'
//! curl -si $J $B/email/confirm -d '{"challenge_id":"…","code":"…","new_email":"ana@example.net"}'
//! ```
//!
//! It keeps everything in memory (vericode's `MemoryStore`). For Redis, run
//! the same `app.rs` from the Redis crate (this crate cannot depend on
//! `vericode-redis`, which depends on it):
//! `REDIS_URL=redis://127.0.0.1:6379/ cargo run -p vericode-redis --example web_service_redis`.

// Some of its items (the quiet outbox and its readers) serve the test only.
#[allow(dead_code)]
mod app;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use vericode::{MemoryStore, SecretKey, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::var("PORT") {
        Ok(p) => p.parse::<u16>()?,
        Err(_) => 8080,
    };
    if std::env::var_os("REDIS_URL").is_some() {
        eprintln!(
            "note: REDIS_URL is set; for Redis run `cargo run -p vericode-redis --example web_service_redis`"
        );
    }
    // A real service loads its signing key from a secret manager; a key made
    // at start means a restart forgets every code and device.
    let state = app::AppState::new(
        MemoryStore::new(),
        app::DemoDelivery::printing(),
        Arc::new(SystemClock),
        SecretKey::generate(),
        None,
    )?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("demo accounts (demo only):");
    for (_, email, password) in app::DEMO_USERS {
        println!("  {email} / {password}");
    }
    axum::serve(
        listener,
        app::app(Arc::new(state)).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
