//! A redis-server of the test's own on a free loopback port (or REDIS_URL),
//! and a connection that counts round trips.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A Redis to test against: one this test started (killed on drop) or the
/// one at REDIS_URL.
pub struct TestRedis {
    child: Option<Child>,
    port: u16,
    pub url: String,
}

impl TestRedis {
    /// Whether this test started the server (and may reconfigure it), rather
    /// than sharing the one at REDIS_URL.
    pub fn is_own(&self) -> bool {
        self.child.is_some()
    }

    /// Stops this test's redis-server and starts another on the same port
    /// (empty: it keeps nothing); `false` for the Redis at REDIS_URL, which is
    /// not this test's to restart.
    pub fn restart(&mut self) -> bool {
        let Some(child) = &mut self.child else {
            return false;
        };
        let _ = child.kill();
        let _ = child.wait();
        match spawn_on(self.port) {
            Ok(child) => self.child = Some(child),
            Err(why) => panic!("could not start redis-server again: {why}"),
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not accept connections again within 10 s");
    }
}

fn spawn_on(port: u16) -> Result<Child, String> {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run redis-server: {e}"))
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Redis for `test`, or `None` (printed as a skip) when there is none;
/// with VERICODE_REQUIRE_REDIS=1 a missing Redis fails the test instead.
pub fn redis_for(test: &str) -> Option<TestRedis> {
    if let Ok(url) = std::env::var("REDIS_URL")
        && !url.is_empty()
    {
        eprintln!("{test}: using the Redis at REDIS_URL");
        return Some(TestRedis {
            child: None,
            port: 0,
            url,
        });
    }
    match start_redis_server() {
        Ok(server) => Some(server),
        Err(why) => {
            if std::env::var("VERICODE_REQUIRE_REDIS").as_deref() == Ok("1") {
                panic!("{test}: VERICODE_REQUIRE_REDIS=1 but no Redis: {why}");
            }
            // Straight to stderr, past the test harness's capture, so the skip
            // shows in a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no Redis ({why}); install redis-server or set REDIS_URL \
                 (VERICODE_REQUIRE_REDIS=1 makes this a failure)"
            );
            None
        }
    }
}

fn start_redis_server() -> Result<TestRedis, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let child = spawn_on(port)?;
        let mut server = TestRedis {
            child: Some(child),
            port,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        // Wait (bounded) for it to accept connections; if it exited, the port
        // was taken meanwhile: try another.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let child = server.child.as_mut().expect("started above");
            if let Ok(Some(status)) = child.try_wait() {
                last = format!("redis-server exited ({status})");
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if last.is_empty() {
            last = "redis-server did not accept connections within 10 s".into();
        }
    }
    Err(last)
}

/// A connection that counts round trips: every command or pipeline sent is one.
#[derive(Clone)]
pub struct Counting {
    inner: MultiplexedConnection,
    trips: Arc<AtomicUsize>,
}

impl Counting {
    pub fn new(inner: MultiplexedConnection) -> Self {
        Counting {
            inner,
            trips: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn trips(&self) -> usize {
        self.trips.load(Ordering::SeqCst)
    }
}

impl ConnectionLike for Counting {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.trips.fetch_add(1, Ordering::SeqCst);
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.trips.fetch_add(1, Ordering::SeqCst);
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

pub async fn connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("a valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test Redis")
}

/// A prefix no other run uses, so runs can share a Redis.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("vericode-test:{test}:{}:{nanos}:", std::process::id())
}

/// Several connections used in turn, one per request: racing requests travel
/// on different TCP connections, as from different servers.
#[derive(Clone)]
pub struct RoundRobin {
    conns: Arc<Vec<MultiplexedConnection>>,
    next: Arc<AtomicUsize>,
}

impl RoundRobin {
    pub async fn new(url: &str, n: usize) -> Self {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(connection(url).await);
        }
        RoundRobin {
            conns: Arc::new(conns),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn pick(&self) -> MultiplexedConnection {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].clone()
    }
}

impl ConnectionLike for RoundRobin {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let mut conn = self.pick();
        Box::pin(async move { conn.req_packed_command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let mut conn = self.pick();
        Box::pin(async move { conn.req_packed_commands(pipeline, offset, count).await })
    }

    fn get_db(&self) -> i64 {
        self.conns[0].get_db()
    }
}

/// Runs vericode's conformance suite on `store`, the second verifier of each
/// check talking to the same data over `other` (as another server would),
/// and answers the checks that passed.
pub async fn conformance<C>(store: vericode_redis::RedisStore<C>, other: C) -> Vec<&'static str>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    // The suite's `expiry` check commits with a `now` an hour past the real
    // time, which the clock check would refuse (tested on its own in
    // `commits_refuse_a_clock_too_far_from_redis`).
    let store = store.without_clock_check();
    let make = {
        let store = store.clone();
        move || store.clone()
    };
    vericode::testing::Conformance::new(make, |task| {
        tokio::spawn(task);
    })
    .second_handle(move |s: &vericode_redis::RedisStore<C>| s.with_connection(other.clone()))
    .run()
    .await
    .unwrap_or_else(|f| panic!("{f}"))
    .checks()
    .to_vec()
}

/// A verifier over `store` with `policy`, fresh keys and a recording delivery.
pub fn verifier_on<S: vericode::CodeStore>(
    store: S,
    policy: vericode::Policy,
) -> vericode::Verifier<S, vericode::RecordingDelivery, vericode::SystemClock> {
    vericode::Verifier::builder()
        .store(store)
        .delivery(vericode::RecordingDelivery::new())
        .policy(policy)
        .signing_key(vericode::KeyId::new(1), vericode::SecretKey::generate())
        .lookup_key(vericode::SecretKey::generate())
        .app_name("Acme")
        .build()
        .unwrap()
}
