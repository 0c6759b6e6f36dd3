//! vericode-redis on a real Redis Cluster of three primaries (feature
//! `cluster`): the conformance suite, the verifier's flows with every limit
//! (whose reads and batches span groups, so slots and nodes), and the
//! eviction check on every node.
//!
//! Each test starts its own cluster when `redis-server` and `redis-cli` are
//! installed, and prints a skip otherwise; VERICODE_REQUIRE_REDIS=1 turns a
//! skip into a failure.
#![cfg(feature = "cluster")]

mod common;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use vericode::testing::Conformance;
use vericode::{
    Attempt, ClientKey, Destination, IssueRequest, Limit, Policy, Purpose, RateLimit, Subject,
    VerifyError,
};
use vericode_redis::{RedisStore, RedisStoreError};

/// Three primaries on free loopback ports, stopped (and their files
/// removed) on drop.
struct TestCluster {
    children: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestCluster {
    fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }

    async fn connection(&self) -> ClusterConnection {
        ClusterClient::new(self.urls())
            .expect("valid node URLs")
            .get_async_connection()
            .await
            .expect("connect to the test cluster")
    }
}

/// A port that is free, and whose cluster bus port (10 000 above) is too.
fn free_port() -> Result<u16, String> {
    for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free pair of ports".into())
}

fn redis_cli(args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn start_cluster() -> Result<TestCluster, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("vericode-cluster-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("no temporary directory: {e}"))?;
    let mut cluster = TestCluster {
        children: Vec::new(),
        ports: Vec::new(),
        dir,
    };
    for _ in 0..3 {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .arg("--dir")
            .arg(&cluster.dir)
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        cluster.children.push(child);
        cluster.ports.push(port);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for &port in &cluster.ports {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("redis-server on {port} did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let nodes: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(nodes.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    redis_cli(&args)?;
    // Every node must see every slot covered before the tests start.
    let deadline = Instant::now() + Duration::from_secs(30);
    for &port in &cluster.ports {
        loop {
            let info = redis_cli(&["-p", &port.to_string(), "cluster", "info"])?;
            if info.contains("cluster_state:ok") {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the cluster on {port} did not become ok"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(cluster)
}

/// A cluster for `test`, or `None` (printed as a skip) without redis-server
/// and redis-cli; with VERICODE_REQUIRE_REDIS=1, a failure instead.
fn cluster_for(test: &str) -> Option<TestCluster> {
    match start_cluster() {
        Ok(cluster) => Some(cluster),
        Err(why) => {
            if std::env::var("VERICODE_REQUIRE_REDIS").as_deref() == Ok("1") {
                panic!("{test}: VERICODE_REQUIRE_REDIS=1 but no Redis Cluster: {why}");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no Redis Cluster ({why}); install redis-server and redis-cli"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_passes_on_a_cluster() {
    let Some(cluster) = cluster_for("conformance_suite_passes_on_a_cluster") else {
        return;
    };
    let store = RedisStore::cluster(cluster.connection().await);
    store.load_scripts().await.unwrap();
    // The second verifier of each check has a cluster connection of its own.
    let other = cluster.connection().await;
    let passed = common::conformance(store, other).await;
    assert_eq!(passed, Conformance::<RedisStore<ClusterConnection>>::CHECKS);
}

/// Every limit on: an issue reads and charges records of five groups (the
/// subject's, the destination's, the client's, the prefix's, the number
/// range's), which the cluster spreads over its nodes. A review found every
/// such issue refused (`CrossSlot`) before reads and batches were split per
/// group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_works_on_a_cluster_with_every_limit() {
    let Some(cluster) = cluster_for("the_verifier_works_on_a_cluster_with_every_limit") else {
        return;
    };
    let store = RedisStore::cluster(cluster.connection().await);
    store.load_scripts().await.unwrap();
    let roomy = RateLimit::new(100, time::Duration::hours(1)).unwrap();
    let policy = Policy::default()
        .limit(Limit::DestinationPrefix, roomy)
        .limit(Limit::Global, roomy);
    let verifier = common::verifier_on(store, policy);
    let client = ClientKey::new("ip:203.0.113.7").unwrap();
    for n in 0..5 {
        let request = IssueRequest::new(
            Purpose::LoginNewDevice,
            Subject::new(&format!("user-{n}")).unwrap(),
            Destination::sms(&format!("+1415555010{n}")).unwrap(),
        )
        .client(client.clone());
        let ticket = verifier.issue(&request).await.unwrap();
        let code = verifier.delivery().last_code().unwrap();
        let wrong: String = code
            .chars()
            .map(|c| if c == '0' { '1' } else { '0' })
            .collect();
        let attempt =
            |typed| Attempt::new(ticket.purpose(), ticket.challenge_id(), typed).client(&client);
        let r = verifier.verify_attempt(attempt(&wrong)).await;
        assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
        let verified = verifier.verify_attempt(attempt(&code)).await.unwrap();
        assert_eq!(verified.subject().as_str(), format!("user-{n}"));
        let r = verifier.verify_attempt(attempt(&code)).await;
        assert!(matches!(r, Err(VerifyError::UnknownChallenge)), "{r:?}");
    }
    // The successes were credited to the number range, across the cluster.
    let phone = Destination::sms("+14155550100").unwrap();
    let seen = verifier.prefix_conversion(&phone).await.unwrap().unwrap();
    assert_eq!((seen.sends, seen.verified), (5.0, 5.0));
}

/// `load_scripts` reads every primary's eviction policy: one that may evict
/// is refused.
#[tokio::test]
async fn load_scripts_checks_every_node_of_a_cluster() {
    let Some(cluster) = cluster_for("load_scripts_checks_every_node_of_a_cluster") else {
        return;
    };
    let store = RedisStore::cluster(cluster.connection().await);
    store.load_scripts().await.unwrap();
    let last = cluster.ports[2].to_string();
    redis_cli(&["-p", &last, "config", "set", "maxmemory", "100mb"]).unwrap();
    redis_cli(&[
        "-p",
        &last,
        "config",
        "set",
        "maxmemory-policy",
        "allkeys-lru",
    ])
    .unwrap();
    let refused = store.load_scripts().await;
    assert!(
        matches!(&refused, Err(RedisStoreError::EvictionPolicy(p)) if p == "allkeys-lru"),
        "{refused:?}"
    );
}
