//! Issue and verify on Redis, and the round trips of each (issue 6).
//!
//! Starts its own redis-server on a free loopback port when the binary is
//! installed (or uses REDIS_URL); without either it prints a skip and exits.
//! Run it with `cargo bench -p vericode-redis --bench redis`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::Criterion;
use vericode::{
    ConversionGuard, Destination, IssueRequest, Policy, Purpose, RecordingDelivery, Subject,
    SystemClock, Verifier,
};
use vericode_redis::RedisStore;

type V = Verifier<RedisStore<common::Counting>, RecordingDelivery, SystemClock>;

fn request(n: u64) -> IssueRequest {
    IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new(&format!("bench-{n}")).unwrap(),
        Destination::sms(&format!("+1415{:07}", n % 10_000_000)).unwrap(),
    )
}

fn main() {
    let Some(redis) = common::redis_for("redis bench") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conn = common::Counting::new(rt.block_on(common::connection(&redis.url)));
    let store = RedisStore::new(conn.clone())
        .with_prefix(common::unique_prefix("bench"))
        .unwrap();
    rt.block_on(store.load_scripts()).unwrap();
    // The default policy, with a conversion guard that reads and writes its
    // record on every send but never trips (the bench never verifies most
    // codes it sends): every default limit costs what it costs in service.
    let guard = ConversionGuard::new(time::Duration::days(7), u32::MAX, 1.0).unwrap();
    let configs = [
        ("no_limits", Policy::default().without_abuse_limits()),
        ("default_limits", Policy::default().conversion_guard(guard)),
    ];
    let next = AtomicU64::new(0);
    let mut c = Criterion::default().configure_from_args();
    let mut trips = Vec::new();
    for (name, policy) in configs {
        let verifier: V = common::verifier_on(store.clone(), policy);
        let mut group = c.benchmark_group(format!("redis_{name}"));
        group.bench_function("issue", |b| {
            b.iter(|| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                rt.block_on(verifier.issue(&request(n))).unwrap()
            })
        });
        group.bench_function("issue_then_verify_right_code", |b| {
            b.iter(|| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let t = rt.block_on(verifier.issue(&request(n))).unwrap();
                let code = verifier.delivery().last_code().unwrap();
                rt.block_on(verifier.verify(t.purpose(), t.challenge_id(), &code))
                    .unwrap()
            })
        });
        group.finish();

        // Round trips, counted on the connection.
        let n = next.fetch_add(1, Ordering::Relaxed);
        let before = conn.trips();
        let t = rt.block_on(verifier.issue(&request(n))).unwrap();
        let issue = conn.trips() - before;
        let code = verifier.delivery().last_code().unwrap();
        let before = conn.trips();
        rt.block_on(verifier.verify(t.purpose(), t.challenge_id(), &code))
            .unwrap();
        trips.push((name, issue, conn.trips() - before));
    }
    for (name, issue, verify) in trips {
        println!("round trips ({name}): issue {issue}, verify {verify}");
    }
    c.final_summary();
}
