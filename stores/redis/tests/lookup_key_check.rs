//! `Verifier::check_lookup_key` on a real Redis: servers with different
//! lookup keys are told apart, a fleet with one key starts together without
//! contending, and a key replaced on purpose is handed over.

mod common;

use redis::AsyncCommands;
use vericode::{KeyId, LookupKeyError, RecordingDelivery, SecretKey, Verifier};
use vericode_redis::RedisStore;

use common::{connection, redis_for, unique_prefix};

async fn server(
    url: &str,
    prefix: &str,
    lookup: &SecretKey,
) -> Verifier<RedisStore<redis::aio::MultiplexedConnection>, RecordingDelivery, vericode::SystemClock>
{
    let store = RedisStore::new(connection(url).await)
        .with_prefix(prefix)
        .unwrap();
    Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .signing_key(KeyId::new(1), SecretKey::from_bytes(&[1; 32]).unwrap())
        .lookup_key(lookup.clone())
        .app_name("Acme")
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_with_different_lookup_keys_are_told_apart() {
    let Some(redis) = redis_for("servers_with_different_lookup_keys_are_told_apart") else {
        return;
    };
    let prefix = unique_prefix("lookup-check");
    let (k1, k2) = (SecretKey::generate(), SecretKey::generate());
    let a = server(&redis.url, &prefix, &k1).await;
    let b = server(&redis.url, &prefix, &k1).await;
    let stray = server(&redis.url, &prefix, &k2).await;
    a.check_lookup_key().await.unwrap();
    b.check_lookup_key().await.unwrap();
    assert!(matches!(
        stray.check_lookup_key().await,
        Err(LookupKeyError::Mismatch)
    ));
    // One record, at the documented name, kept about 400 days.
    let mut conn = connection(&redis.url).await;
    let name = format!("{prefix}{{{}}}:k:{}", "0".repeat(32), "0".repeat(16));
    let keys: Vec<String> = conn.keys(format!("{prefix}*")).await.unwrap();
    assert_eq!(keys, vec![name.clone()]);
    let ttl: i64 = conn.pttl(&name).await.unwrap();
    assert!(ttl > 399 * 86_400_000, "{ttl}");
    // The key replaced on purpose: handed over once, then the old is told.
    stray.replace_lookup_key_check(&k1).await.unwrap();
    stray.check_lookup_key().await.unwrap();
    assert!(matches!(
        a.check_lookup_key().await,
        Err(LookupKeyError::Mismatch)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_with_one_key_starting_together_all_pass() {
    // Found by a review: every check renewed the one record, and 18 to 20 of
    // 64 servers starting together failed with `Contention`.
    let Some(redis) = redis_for("a_fleet_with_one_key_starting_together_all_pass") else {
        return;
    };
    const N: usize = 64;
    let prefix = unique_prefix("lookup-fleet");
    let key = SecretKey::generate();
    let mut servers = Vec::new();
    for _ in 0..N {
        servers.push(std::sync::Arc::new(server(&redis.url, &prefix, &key).await));
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(N));
    let tasks: Vec<_> = servers
        .into_iter()
        .map(|v| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                v.check_lookup_key().await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
}
