//! vericode-redis against a real redis-server: the conformance suite, round
//! trips per operation, key layout, server-side expiry, typed errors, and the
//! two-servers example.
//!
//! Each test starts its own redis-server on a free loopback port when the
//! binary is installed (or uses REDIS_URL), and prints a skip otherwise;
//! VERICODE_REQUIRE_REDIS=1 turns a skip into a failure.

mod common;

#[path = "../examples/two_servers.rs"]
#[allow(dead_code)]
mod two_servers;

use std::sync::Arc;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use time::{Duration, OffsetDateTime};
use vericode::testing::Conformance;
use vericode::{
    Attempt, CodeStore, Commit, Destination, FailureDelay, IssueRequest, KeyId, KeyKind, Limit,
    Policy, Purpose, RateLimit, RecordingDelivery, SecretKey, StoreError, StoreKey, Subject,
    Timestamp, Verifier, VerifyError, Write,
};
use vericode_redis::{RedisStore, RedisStoreError};

use common::{Counting, RoundRobin, connection, redis_for, unique_prefix, verifier_on};

/// Straight to stderr, past the test harness's capture, so CI logs show it.
fn report(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn rate(count: u32, period: Duration) -> RateLimit {
    RateLimit::new(count, period).unwrap()
}

fn now() -> Timestamp {
    Timestamp::from_datetime(OffsetDateTime::now_utc())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_passes_on_redis() {
    let Some(redis) = redis_for("conformance_suite_passes_on_redis") else {
        return;
    };
    let store = RedisStore::new(connection(&redis.url).await)
        .with_prefix(unique_prefix("conformance"))
        .unwrap();
    // The second verifier of each check talks to Redis over its own
    // connection, as another server would.
    let other = connection(&redis.url).await;
    let passed = common::conformance(store, other).await;
    report(format_args!(
        "conformance on Redis: {} checks passed",
        passed.len()
    ));
    assert_eq!(
        passed,
        Conformance::<RedisStore<MultiplexedConnection>>::CHECKS
    );
}

/// The store's default connection, what `RedisStore::connect` makes (a
/// `ConnectionManager`), passes the conformance suite too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_passes_over_the_default_connection() {
    let Some(redis) = redis_for("conformance_suite_passes_over_the_default_connection") else {
        return;
    };
    let store = RedisStore::connect(&redis.url)
        .await
        .unwrap()
        .with_prefix(unique_prefix("conformance-managed"))
        .unwrap();
    let other =
        redis::aio::ConnectionManager::new(redis::Client::open(redis.url.as_str()).unwrap())
            .await
            .unwrap();
    let passed = common::conformance(store, other).await;
    assert_eq!(passed, Conformance::<RedisStore>::CHECKS);
}

/// A store made by `RedisStore::connect` outlives a Redis restart: the calls
/// that meet the dropped connection fail (closed), and once Redis is back the
/// next ones succeed, without a new store. (A review: over a
/// `MultiplexedConnection`, every call failed until the process restarted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_store_reconnects_after_redis_restarts() {
    let Some(mut redis) = redis_for("a_connected_store_reconnects_after_redis_restarts") else {
        return;
    };
    let store = RedisStore::connect(&redis.url)
        .await
        .unwrap()
        .with_prefix(unique_prefix("restart"))
        .unwrap();
    let verifier = Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .signing_key(KeyId::new(1), SecretKey::from_bytes(&[1; 32]).unwrap())
        .lookup_key(SecretKey::from_bytes(&[2; 32]).unwrap())
        .app_name("Acme")
        .build()
        .unwrap();
    let request = |n: u32| {
        IssueRequest::new(
            Purpose::StepUp,
            Subject::new(&format!("restart-{n}")).unwrap(),
            Destination::email(&format!("r{n}@example.com")).unwrap(),
        )
    };
    verifier.issue(&request(0)).await.unwrap();
    if !redis.restart() {
        report(format_args!(
            "SKIPPED the restart: the Redis at REDIS_URL is not this test's to restart"
        ));
        return;
    }
    // Bounded: 100 tries, 50 ms apart (Redis is already accepting).
    let mut failed = 0;
    let mut back = false;
    for n in 1..=100 {
        match verifier.issue(&request(n)).await {
            Ok(_) => {
                back = true;
                break;
            }
            Err(vericode::IssueError::Store(_)) => {
                failed += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(back, "still failing after {failed} tries");
    report(format_args!(
        "after a Redis restart: {failed} call(s) failed, then the store was back"
    ));
}

/// The concurrency checks with every request on the next of 8 connections,
/// so racing reads and commits travel on different TCP connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_across_connections() {
    let Some(redis) = redis_for("linearizable_across_connections") else {
        return;
    };
    let store = RedisStore::new(RoundRobin::new(&redis.url, 8).await)
        .with_prefix(unique_prefix("connections"))
        .unwrap();
    let suite = Conformance::new(
        move || store.clone(),
        |task| {
            tokio::spawn(task);
        },
    )
    .tasks(8)
    .increments(25);
    suite
        .linearizable_increments()
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    suite
        .atomic_transfers()
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    suite.one_success().await.unwrap_or_else(|f| panic!("{f}"));
    suite
        .attempts_capped()
        .await
        .unwrap_or_else(|f| panic!("{f}"));
}

struct Measured {
    issue: usize,
    resend: usize,
    wrong: usize,
    right: usize,
    replay: usize,
}

async fn measure(url: &str, policy: Policy) -> Measured {
    let conn = Counting::new(connection(url).await);
    let store = RedisStore::new(conn.clone())
        .with_prefix(unique_prefix("trips"))
        .unwrap();
    store.load_scripts().await.unwrap();
    // No cooldown, so that a resend can follow at once (it changes no
    // round trip).
    let verifier = verifier_on(
        store,
        policy.resend_cooldown(Duration::ZERO, Duration::ZERO),
    );
    let tag = now().as_millis() % 1_000_000;
    let client = vericode::ClientKey::new(&format!("ip:trips-{tag}")).unwrap();
    let request = IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new(&format!("trips-{tag}-{}", std::process::id())).unwrap(),
        Destination::sms(&format!("+1415555{:04}", tag % 10_000)).unwrap(),
    )
    // Every limit of the policy applies, the client's included.
    .client(client.clone());

    let before = conn.trips();
    let ticket = verifier.issue(&request).await.unwrap();
    let issue = conn.trips() - before;

    let before = conn.trips();
    verifier
        .resend_from(ticket.challenge_id(), &client)
        .await
        .unwrap();
    let resend = conn.trips() - before;

    let code = verifier.delivery().last_code().unwrap();
    let wrong_code = format!("{}{}", &code[..5], (code.as_bytes()[5] - b'0' + 1) % 10);
    let before = conn.trips();
    let wrong = verifier
        .verify_attempt(
            Attempt::new(ticket.purpose(), ticket.challenge_id(), &wrong_code).client(&client),
        )
        .await;
    assert!(
        matches!(wrong, Err(VerifyError::WrongCode { .. })),
        "{wrong:?}"
    );
    let wrong = conn.trips() - before;

    let before = conn.trips();
    verifier
        .verify_attempt(
            Attempt::new(ticket.purpose(), ticket.challenge_id(), &code).client(&client),
        )
        .await
        .unwrap();
    let right = conn.trips() - before;

    let before = conn.trips();
    let replay = verifier
        .verify(ticket.purpose(), ticket.challenge_id(), &code)
        .await;
    assert!(
        matches!(replay, Err(VerifyError::UnknownChallenge)),
        "{replay:?}"
    );
    let replay = conn.trips() - before;
    Measured {
        issue,
        resend,
        wrong,
        right,
        replay,
    }
}

#[tokio::test]
async fn round_trips_per_operation() {
    let Some(redis) = redis_for("round_trips_per_operation") else {
        return;
    };
    // The defaults minus the conversion guard: every rate limit and the
    // failure delay on.
    let without_guard = Policy::default()
        .without_abuse_limits()
        .limit(Limit::Destination, rate(5, Duration::minutes(10)))
        .limit(Limit::Subject, rate(10, Duration::hours(1)))
        .limit(Limit::Client, rate(20, Duration::hours(1)))
        .limit(Limit::VerifyClient, rate(50, Duration::hours(1)))
        .failure_delay(FailureDelay::standard());
    for (name, policy) in [
        // A success also credits the destination prefix's conversion record,
        // read in the first round trip (where the id's hint says) and written
        // in the same pipeline as the outcome.
        ("default policy", Policy::default()),
        ("defaults without the conversion guard", without_guard),
        (
            "without abuse limits",
            Policy::default().without_abuse_limits(),
        ),
    ] {
        let m = measure(&redis.url, policy).await;
        report(format_args!(
            "round trips ({name}): issue {}, resend {}, verify wrong {}, verify right {}, \
             verify replay {}",
            m.issue, m.resend, m.wrong, m.right, m.replay
        ));
        // A read, the send's claim (with the rate limits' charges), the code.
        assert_eq!(m.issue, 3, "issue took {} round trips ({name})", m.issue);
        // A resend learns its destination, and so its limits, from the
        // challenge: one more read when it has limits to charge.
        assert!(
            m.resend <= 4,
            "resend took {} round trips ({name})",
            m.resend
        );
        assert!(
            m.wrong <= 2,
            "a wrong verify took {} round trips ({name})",
            m.wrong
        );
        assert!(
            m.replay <= 2,
            "a replayed verify took {} round trips ({name})",
            m.replay
        );
        assert!(
            m.right <= 2,
            "a right verify took {} round trips ({name})",
            m.right
        );
    }

    // The first commit on a server without the script: EVALSHA, SCRIPT LOAD,
    // EVALSHA again, once.
    let conn = Counting::new(connection(&redis.url).await);
    let mut raw = connection(&redis.url).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    let store = RedisStore::new(conn.clone())
        .with_prefix(unique_prefix("cold"))
        .unwrap();
    let key = StoreKey::new(KeyKind::Subject, [1; 16], [0; 8]);
    let write = |expected| Write::Put {
        key,
        record: sample_record(),
        expected,
        version: vericode::Version::fresh(),
        expires_at: now().saturating_add(Duration::hours(1)),
    };
    assert_eq!(
        store.commit(&[write(None)], now()).await.unwrap(),
        Commit::Applied
    );
    let cold = conn.trips();
    let v = store.get_many(&[key], now()).await.unwrap()[0]
        .clone()
        .unwrap()
        .version;
    let before = conn.trips();
    assert_eq!(
        store.commit(&[write(Some(v))], now()).await.unwrap(),
        Commit::Applied
    );
    let warm = conn.trips() - before;
    report(format_args!(
        "round trips: first commit after SCRIPT FLUSH {cold}, next commit {warm}"
    ));
    assert_eq!((cold, warm), (3, 1));

    // Batches: one round trip, even after a flush (the reload aside).
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    let keys: Vec<StoreKey> = (0..4u8)
        .map(|i| StoreKey::new(KeyKind::Rate, [i; 16], [0; 8]))
        .collect();
    let writes: Vec<Vec<Write>> = keys
        .iter()
        .map(|k| {
            vec![Write::Put {
                key: *k,
                record: sample_record(),
                expected: None,
                version: vericode::Version::fresh(),
                expires_at: now().saturating_add(Duration::hours(1)),
            }]
        })
        .collect();
    let batches: Vec<&[Write]> = writes.iter().map(Vec::as_slice).collect();
    let before = conn.trips();
    let out = store.commit_batches(&batches, now()).await.unwrap();
    assert_eq!(out, vec![Commit::Applied; 4]);
    assert_eq!(
        conn.trips() - before,
        3,
        "4 batches after a flush: pipeline, load, pipeline"
    );
    let before = conn.trips();
    let out = store.commit_batches(&batches, now()).await.unwrap();
    assert_eq!(out, vec![Commit::Conflict; 4]);
    assert_eq!(conn.trips() - before, 1, "4 batches: one pipeline");
}

fn sample_record() -> vericode::Record {
    // A record from the verifier's own encoding: issue one on a memory store
    // would need internals; the subject record's byte form is documented.
    // Format 3, kind 2: failures, last failure, no lock, none forgiven.
    let mut bytes = vec![3u8, 2];
    bytes.extend_from_slice(&7u32.to_be_bytes());
    bytes.extend_from_slice(&0i64.to_be_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&0i64.to_be_bytes());
    bytes.extend_from_slice(&[0; 12]);
    vericode::Record::decode(&bytes).expect("a subject record")
}

#[tokio::test]
async fn key_layout_and_server_side_expiry() {
    let Some(redis) = redis_for("key_layout_and_server_side_expiry") else {
        return;
    };
    let prefix = unique_prefix("layout");
    let store = RedisStore::new(connection(&redis.url).await)
        .with_prefix(prefix.clone())
        .unwrap();
    // A group of this run's own, so a shared Redis's other data never matches.
    let mut group = [0u8; 16];
    group[..8].copy_from_slice(&now().as_millis().to_be_bytes());
    group[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    let group_hex: String = group.iter().map(|b| format!("{b:02x}")).collect();
    let challenge = StoreKey::new(KeyKind::Challenge, group, [0, 0, 0, 0, 0, 0, 0, 1]);
    let subject = StoreKey::new(KeyKind::Subject, group, [0; 8]);
    let name = store.redis_key(&challenge);
    assert_eq!(name, format!("{prefix}{{{group_hex}}}:c:0000000000000001"));
    // Same hash tag: one slot on a cluster.
    let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_owned();
    assert_eq!(tag(&name), tag(&store.redis_key(&subject)));

    let expires_at = now().saturating_add(Duration::minutes(10));
    let writes = [
        Write::Put {
            key: challenge,
            record: sample_record(),
            expected: None,
            version: vericode::Version::fresh(),
            expires_at,
        },
        Write::Put {
            key: subject,
            record: sample_record(),
            expected: None,
            version: vericode::Version::fresh(),
            expires_at: expires_at.saturating_add(Duration::days(30)),
        },
    ];
    assert_eq!(store.commit(&writes, now()).await.unwrap(), Commit::Applied);

    let mut raw = connection(&redis.url).await;
    let fields: Vec<String> = raw.hkeys(&name).await.unwrap();
    let mut fields = fields;
    fields.sort();
    assert_eq!(fields, ["d", "e", "v"]);
    let e: i64 = raw.hget(&name, "e").await.unwrap();
    assert_eq!(e, expires_at.as_millis());
    let v: String = raw.hget(&name, "v").await.unwrap();
    assert!(v.parse::<u64>().is_ok());
    // PEXPIREAT set to expires_at plus the slack: the ten minutes left and
    // ten more.
    let pttl: i64 = raw.pttl(&name).await.unwrap();
    assert!(
        pttl > 19 * 60 * 1000 && pttl <= 20 * 60 * 1000,
        "PTTL {pttl} ms, expected about 20 minutes"
    );
    let pttl_subject: i64 = raw.pttl(store.redis_key(&subject)).await.unwrap();
    assert!(pttl_subject > 30 * 24 * 3600 * 1000);

    // Nothing outside the prefix was written.
    let outside: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{{{group_hex}}}*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        outside.iter().all(|k| k.starts_with(&prefix)),
        "{outside:?}"
    );
}

/// Found by an audit: with Redis's clock ahead of the verifier's, a record
/// whose expiry was near (a rate limit's state expires when the limit is
/// refilled) was dropped by Redis at once, refunding sends. Redis now keeps
/// every record `EXPIRY_SLACK_MS` past its expiry.
#[tokio::test]
async fn a_redis_clock_ahead_of_the_servers_drops_no_record_they_still_count() {
    let Some(redis) = redis_for("a_redis_clock_ahead_of_the_servers_drops_no_record") else {
        return;
    };
    let store = RedisStore::new(connection(&redis.url).await)
        .with_prefix(unique_prefix("skew"))
        .unwrap();
    // The verifier's clock 50 s behind Redis's (within the minute the store
    // allows): a record it keeps for 20 s more is already past its expiry
    // by Redis's clock.
    let verifier_now = now().saturating_add(Duration::seconds(-50));
    let mut group = [0u8; 16];
    group[..8].copy_from_slice(&now().as_millis().to_be_bytes());
    let key = StoreKey::new(KeyKind::Rate, group, [0, 0, 0, 0, 0, 0, 0, 1]);
    let write = Write::Put {
        key,
        record: sample_record(),
        expected: None,
        version: vericode::Version::fresh(),
        expires_at: verifier_now.saturating_add(Duration::seconds(20)),
    };
    assert_eq!(
        store.commit(&[write], verifier_now).await.unwrap(),
        Commit::Applied
    );
    let read = store.get_many(&[key], verifier_now).await.unwrap();
    assert!(
        read[0].is_some(),
        "Redis dropped a record the verifier counts"
    );
    // And the verifier's clock still decides: past its expiry, it reads absent.
    let later = verifier_now.saturating_add(Duration::seconds(21));
    assert!(store.get_many(&[key], later).await.unwrap()[0].is_none());
}

/// A server whose clock is far from Redis's would decide expiry, cooldowns,
/// locks and limits on its own time (one running ahead sees them end
/// early): every commit compares its `now` with Redis's `TIME` and, past the
/// store's limit, writes nothing.
#[tokio::test]
async fn commits_refuse_a_clock_too_far_from_redis() {
    let Some(redis) = redis_for("commits_refuse_a_clock_too_far_from_redis") else {
        return;
    };
    let store = RedisStore::new(connection(&redis.url).await)
        .with_prefix(unique_prefix("clock"))
        .unwrap();
    assert_eq!(
        store.max_clock_skew(),
        Some(vericode_redis::DEFAULT_MAX_CLOCK_SKEW)
    );
    let put = |item: u8, at: Timestamp| Write::Put {
        key: StoreKey::new(KeyKind::Subject, [7; 16], [item; 8]),
        record: sample_record(),
        expected: None,
        version: vericode::Version::fresh(),
        expires_at: at.saturating_add(Duration::hours(2)),
    };
    let key = |item: u8| StoreKey::new(KeyKind::Subject, [7; 16], [item; 8]);
    // Two minutes either way: refused, and nothing written.
    for (item, offset) in [(1u8, 120i64), (2, -120)] {
        let at = now().saturating_add(Duration::seconds(offset));
        let refused = store.commit(&[put(item, at)], at).await;
        match refused {
            Err(RedisStoreError::ClockSkew { skew_ms, max_ms }) => {
                assert_eq!(max_ms, 60_000);
                let expected = offset * 1000;
                assert!(
                    (skew_ms - expected).abs() < 10_000,
                    "skew {skew_ms} ms, expected about {expected}"
                );
            }
            other => panic!("a clock {offset} s off Redis's was not refused: {other:?}"),
        }
        assert!(store.get_many(&[key(item)], at).await.unwrap()[0].is_none());
    }
    // Within the minute: applied.
    let near = now().saturating_add(Duration::seconds(30));
    assert_eq!(
        store.commit(&[put(3, near)], near).await.unwrap(),
        Commit::Applied
    );
    // A tighter limit refuses what the default allows; no check takes any.
    let tight = store
        .clone()
        .with_max_clock_skew(std::time::Duration::from_secs(5))
        .unwrap();
    let refused = tight.commit(&[put(4, near)], near).await;
    assert!(
        matches!(
            refused,
            Err(RedisStoreError::ClockSkew { max_ms: 5_000, .. })
        ),
        "{refused:?}"
    );
    let hours_ahead = now().saturating_add(Duration::hours(3));
    let unchecked = store.clone().without_clock_check();
    assert_eq!(
        unchecked
            .commit(&[put(5, hours_ahead)], hours_ahead)
            .await
            .unwrap(),
        Commit::Applied
    );
    for bad in [
        std::time::Duration::from_millis(999),
        std::time::Duration::from_millis(600_001),
    ] {
        assert!(matches!(
            store.clone().with_max_clock_skew(bad),
            Err(RedisStoreError::InvalidClockSkew(_))
        ));
    }

    // Through the verifier: a server an hour ahead sends nothing.
    let clock = vericode::ManualClock::new(OffsetDateTime::now_utc() + Duration::hours(1));
    let ahead = Verifier::builder()
        .store(store.clone())
        .delivery(RecordingDelivery::new())
        .clock(clock)
        .policy(Policy::default())
        .signing_key(KeyId::new(1), SecretKey::generate())
        .lookup_key(SecretKey::generate())
        .app_name("Acme")
        .build()
        .unwrap();
    let request = IssueRequest::new(
        Purpose::PasswordReset,
        Subject::new("clock-subject").unwrap(),
        Destination::email("clock@example.com").unwrap(),
    );
    let issued = ahead.issue(&request).await;
    let skewed = match &issued {
        Err(vericode::IssueError::Store(StoreError::Backend(e))) => e
            .downcast_ref::<RedisStoreError>()
            .is_some_and(|e| matches!(e, RedisStoreError::ClockSkew { .. })),
        _ => false,
    };
    assert!(skewed, "{issued:?}");
    assert!(ahead.delivery().sent().is_empty(), "a code went out");
}

/// Found by an audit: under an eviction policy, a Redis at its `maxmemory`
/// drops live records (failure counts, limits). `load_scripts` refuses one
/// that may evict.
#[tokio::test]
async fn load_scripts_refuses_a_redis_that_may_evict() {
    let Some(redis) = redis_for("load_scripts_refuses_a_redis_that_may_evict") else {
        return;
    };
    let store = RedisStore::new(connection(&redis.url).await)
        .with_prefix(unique_prefix("evict"))
        .unwrap();
    let mut raw = connection(&redis.url).await;
    let get = |name: &'static str| redis::cmd("CONFIG").arg("GET").arg(name).clone();
    let set =
        |name: &str, value: &str| redis::cmd("CONFIG").arg("SET").arg(name).arg(value).clone();
    let Ok((_, max)): Result<(String, String), _> = get("maxmemory").query_async(&mut raw).await
    else {
        report(format_args!(
            "SKIPPED eviction check: CONFIG is not allowed here"
        ));
        return;
    };
    let (_, policy): (String, String) =
        get("maxmemory-policy").query_async(&mut raw).await.unwrap();
    let () = set("maxmemory", "1gb").query_async(&mut raw).await.unwrap();
    let () = set("maxmemory-policy", "volatile-lru")
        .query_async(&mut raw)
        .await
        .unwrap();
    let refused = store.load_scripts().await;
    let () = set("maxmemory-policy", "noeviction")
        .query_async(&mut raw)
        .await
        .unwrap();
    let accepted = store.load_scripts().await;
    let () = set("maxmemory", &max).query_async(&mut raw).await.unwrap();
    let () = set("maxmemory-policy", &policy)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        matches!(&refused, Err(RedisStoreError::EvictionPolicy(p)) if p == "volatile-lru"),
        "{refused:?}"
    );
    accepted.unwrap();
}

/// A Redis at its `maxmemory` under `noeviction` (the setting the crate
/// asks for) refuses a right code's commit as it refuses a wrong guess's, so
/// uncounted guesses cannot be followed by a success. (The commit script
/// deleted before it put: Redis checks a script for memory only at its
/// first write that may grow it, so a success, whose commit began with the
/// challenge's `DEL`, went through where every wrong guess's `HSET` was
/// refused, uncounted: a review's finding.)
#[tokio::test]
async fn a_full_redis_refuses_right_and_wrong_codes_alike() {
    let Some(redis) = redis_for("a_full_redis_refuses_right_and_wrong_codes_alike") else {
        return;
    };
    if !redis.is_own() {
        report(format_args!(
            "SKIPPED a_full_redis_refuses_right_and_wrong_codes_alike: it reconfigures its \
             server, and the one at REDIS_URL is shared"
        ));
        return;
    }
    let store = RedisStore::new(connection(&redis.url).await)
        .with_prefix(unique_prefix("oom"))
        .unwrap();
    store.load_scripts().await.unwrap();
    let verifier = verifier_on(store, Policy::default());
    let request = IssueRequest::new(
        Purpose::PasswordReset,
        Subject::new("victim").unwrap(),
        Destination::email("victim@example.com").unwrap(),
    );
    let ticket = verifier.issue(&request).await.unwrap();
    let code = verifier.delivery().last_code().unwrap();
    let (purpose, id) = (ticket.purpose(), ticket.challenge_id());
    let client = vericode::ClientKey::new("ip:203.0.113.9").unwrap();

    let mut raw = connection(&redis.url).await;
    let mut set = async |name: &str, value: &str| {
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(&mut raw)
            .await
            .unwrap();
    };
    set("maxmemory-policy", "noeviction").await;
    set("maxmemory", "1").await;
    let mut outcomes = Vec::new();
    let wrong: String = code
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    for typed in [wrong, code.clone()] {
        outcomes.push(verifier.verify(purpose, id, &typed).await);
        outcomes.push(
            verifier
                .verify_attempt(Attempt::new(purpose, id, &typed).client(&client))
                .await,
        );
    }
    set("maxmemory", "0").await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Err(VerifyError::Store(_)))),
        "a full Redis must refuse right and wrong codes alike: {outcomes:?}"
    );
    // Nothing was written: no attempt counted, and the code still works.
    let verified = verifier.verify(purpose, id, &code).await;
    assert!(verified.is_ok(), "{verified:?}");
}

#[tokio::test]
async fn errors_are_typed_and_fail_closed() {
    // A port nothing listens on: a connection error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = RedisStore::connect(&format!("redis://127.0.0.1:{port}/")).await;
    assert!(
        matches!(refused, Err(RedisStoreError::Connection(_))),
        "{refused:?}"
    );
    let bad_url = RedisStore::connect("not a url").await;
    assert!(
        matches!(bad_url, Err(RedisStoreError::Connection(_))),
        "{bad_url:?}"
    );

    let Some(redis) = redis_for("errors_are_typed_and_fail_closed") else {
        return;
    };
    let store = RedisStore::new(connection(&redis.url).await)
        .with_prefix(unique_prefix("errors"))
        .unwrap();
    assert!(matches!(
        store.clone().with_prefix("a{b}:"),
        Err(RedisStoreError::InvalidPrefix(_))
    ));
    assert!(matches!(
        store.clone().with_prefix("x".repeat(129)),
        Err(RedisStoreError::InvalidPrefix(_))
    ));
    let mut raw = connection(&redis.url).await;
    let t = now();
    let exp = t.saturating_add(Duration::hours(1));

    // A key of another type: the read is refused, the script fails.
    let wrong_type = StoreKey::new(KeyKind::Subject, [1; 16], [1; 8]);
    let _: () = raw.set(store.redis_key(&wrong_type), "x").await.unwrap();
    let read = store.get_many(&[wrong_type], t).await;
    assert!(matches!(read, Err(RedisStoreError::Command(_))), "{read:?}");
    let write = store
        .commit(
            &[Write::Put {
                key: wrong_type,
                record: sample_record(),
                expected: None,
                version: vericode::Version::fresh(),
                expires_at: exp,
            }],
            t,
        )
        .await;
    assert!(
        matches!(write, Err(RedisStoreError::Script(_))),
        "{write:?}"
    );

    // Bytes that do not decode; fields missing; a version that is no number.
    let corrupt = StoreKey::new(KeyKind::Subject, [2; 16], [0; 8]);
    let name = store.redis_key(&corrupt);
    let _: () = redis::cmd("HSET")
        .arg(&name)
        .arg("v")
        .arg("1")
        .arg("e")
        .arg(exp.as_millis())
        .arg("d")
        .arg(&b"\x01\x02\xff"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    let read = store.get_many(&[corrupt], t).await;
    assert!(matches!(read, Err(RedisStoreError::Decode(_))), "{read:?}");
    let _: () = raw.hset(&name, "v", "not-a-number").await.unwrap();
    let read = store.get_many(&[corrupt], t).await;
    assert!(matches!(read, Err(RedisStoreError::Reply(_))), "{read:?}");
    let _: () = raw.hdel(&name, "e").await.unwrap();
    let read = store.get_many(&[corrupt], t).await;
    assert!(matches!(read, Err(RedisStoreError::Reply(_))), "{read:?}");
    let write = store
        .commit(
            &[Write::Delete {
                key: corrupt,
                expected: vericode::Version(1),
            }],
            t,
        )
        .await;
    assert!(
        matches!(write, Err(RedisStoreError::Script(_))),
        "{write:?}"
    );

    // The verifier fails closed on a store error, typed.
    let verifier = verifier_on(
        Arc::new(store.clone()),
        Policy::default().without_abuse_limits(),
    );
    let request = IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new("errors-subject").unwrap(),
        Destination::email("errors@example.com").unwrap(),
    );
    let ticket = verifier.issue(&request).await.unwrap();
    let code = verifier.delivery().last_code().unwrap();
    // Break the challenge's record in place.
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*:c:*", store.prefix()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let _: () = raw.hset(keys.pop().unwrap(), "d", "garbage").await.unwrap();
    let r = verifier
        .verify(ticket.purpose(), ticket.challenge_id(), &code)
        .await;
    assert!(
        matches!(r, Err(VerifyError::Store(StoreError::Backend(_)))),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_example_runs() {
    let Some(redis) = redis_for("two_servers_example_runs") else {
        return;
    };
    two_servers::run(&redis.url)
        .await
        .unwrap_or_else(|e| panic!("the example failed: {e}"));
}
