//! The step-up web service of `examples/web_service/` on Redis: the same
//! routes and flows (`app.rs` is included as it is), with challenges,
//! counters, rate limits and remembered devices in Redis. The demo's own
//! state (accounts, sessions, pending logins, password failures) stays in
//! each process: run one instance, or keep that state shared too.
//!
//! ```sh
//! redis-server --port 6379 --save "" &
//! export VERICODE_KEY_HEX=$(openssl rand -hex 32) VERICODE_LOOKUP_KEY_HEX=$(openssl rand -hex 32)
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run -p vericode-redis --example web_service_redis
//! ```
//!
//! Every instance needs the same signing and lookup keys: this demo reads
//! them from `VERICODE_KEY_HEX` and `VERICODE_LOOKUP_KEY_HEX` (64 hex digits
//! each) and will not start without them. A key made up at start would name
//! records no other instance finds: the silent split of limits that the
//! lookup-key check at start turns into an error.

#[allow(dead_code)]
#[path = "../../../examples/web_service/app.rs"]
mod app;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use vericode::{SecretKey, SystemClock};
use vericode_redis::RedisStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let port = match std::env::var("PORT") {
        Ok(p) => p.parse::<u16>()?,
        Err(_) => 8080,
    };
    let key_from = |var: &str| -> Result<SecretKey, Box<dyn std::error::Error>> {
        let hex = std::env::var(var).map_err(|_| {
            format!("set {var} to the same 64 hex digits on every instance (openssl rand -hex 32)")
        })?;
        Ok(SecretKey::from_hex(&hex)?)
    };
    let (key, lookup) = (
        key_from("VERICODE_KEY_HEX")?,
        key_from("VERICODE_LOOKUP_KEY_HEX")?,
    );
    let store = RedisStore::connect(&url)
        .await?
        .with_prefix("vericode-demo:")?;
    store.load_scripts().await?;
    let state = app::AppState::new(
        store,
        app::DemoDelivery::printing(),
        Arc::new(SystemClock),
        key,
        Some(lookup),
    )?;
    // Every instance on this Redis must hold the same lookup key. (A real
    // service also checks again from time to time while serving.)
    state.check_keys().await?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    println!(
        "listening on http://{} (store: {url})",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        app::app(Arc::new(state)).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
