//! What each operation of vericode costs, against the floor the cryptography
//! sets (issue 6; the targets are in `/work/shared/design.md`, "Performance").
//!
//! Groups:
//!
//! - `floor`: one HMAC-SHA256 of a short message with a precomputed key (a
//!   clone of a keyed `Hmac<Sha256>`, then update and finalize): the least a
//!   verify can cost. `48B` has exactly the length and layout of vericode's
//!   code digest input for a six-digit code of a built-in purpose: two
//!   SHA-256 compressions (one for the inner hash, as the message fits
//!   beside the padding in one block, and one for the outer), as the design
//!   notes count. It is the floor every ratio divides by. `98B` is the
//!   length of the earlier, length-prefixed input (three compressions), kept
//!   to compare with figures measured against it.
//! - `code_generation`: vericode has no public way to draw a code alone
//!   (`CodeFormat::generate` is crate-private); its public path is `issue`,
//!   measured in `issue`. This group measures a replica of the generator (six
//!   digits by rejection sampling over `rand::rng()`) as the generator's share.
//! - `sms_length`: `vericode::sms_length` of a 131-byte ASCII text, the size
//!   of a login message with its autofill line: every SMS `issue` renders
//!   is measured so, to pick the text that fits one segment.
//! - `issue`: `Verifier::issue` on `MemoryStore` with a delivery that does
//!   nothing, for distinct subjects: `no_limits` (the core path),
//!   `default_limits` (the abuse limits that are on by default) and
//!   `every_limit` (those and the ones off by default). Limits are set to
//!   rates no bench reaches, since the clock stands still: every check reads,
//!   decides and writes its state, and allows.
//! - `rate_limit`: `issue` with exactly one limit on; less `issue/no_limits`,
//!   one rate-limit check (there is no public call that checks a limit alone).
//! - `verify`: `Verifier::verify_attempt` with the right code (which consumes
//!   the challenge) and with a wrong code (which counts an attempt and a
//!   subject failure), with the default limits and a client key, and
//!   `Verifier::verify` with no limits (`_no_limits`). Challenges are issued
//!   before, and expired and subjects unlocked after, the timed part, in
//!   rounds of 1000.
//! - `verify_pending`: verify with the right code on challenges drawn at
//!   random among 1 thousand, 100 thousand and 1 million pending ones (no
//!   abuse limits, so the store holds the challenges and little else); each
//!   verified challenge's subject is unlocked and its challenge issued again
//!   (untimed) so the store stays at size (a success leaves its subject a
//!   record of no failures for a minute, which the standing clock would
//!   otherwise keep: the store would come to hold twice the records). The
//!   ids and codes of a round are copied out of the pool before the timer
//!   starts, as a server has them in hand from the request.
//! - `store_calls`: the two calls a right-code `verify` without limits makes
//!   to its `MemoryStore` (`get_many` of three keys, a `commit` of a delete
//!   and a put), made directly on a store of 1,000 challenges: the store's
//!   share of a verify, beside the floor's HMAC.
//! - `pending_floor`: the same sizes on a bare map of the store's shape (64
//!   locked `HashMap`s of random `u64` keys to reference-counted 272-byte
//!   records, the size of a challenge record, sharing two strings; one
//!   operation removes a record, reads its nonce and drops it): the least a
//!   store of this shape pays as it grows on this machine, the reference
//!   for `verify_pending` as `threads/hmac_floor` is for two threads.
//! - `full_store`: a new record refused by a `MemoryStore` whose 100
//!   thousand records are all live (what each request of a flood costs once
//!   the store is full).
//! - `threads`: one issue followed by one verify, on distinct subjects, by 1
//!   and by 2 threads sharing one verifier and store; the time per operation
//!   falls as throughput rises, so the throughput ratio is `1_thread / 2_threads`.
//!   `issue_verify` has the default limits and every number in +1 415, one
//!   range, so both threads update its conversion record;
//!   `issue_verify_over_ranges` spreads the numbers over 800 ranges, as a
//!   service's sends are.
//!   `hmac_floor` runs the floor's HMAC the same way: work that shares
//!   nothing, so its ratio is the most this machine gives any work.
//!   `shared_map` replaces records in 64 shared, locked maps the same way
//!   (each thread its own records): the store's shape with nothing else, so
//!   its ratio is what moving lock and table lines between the cores leaves.
//!
//! Futures are polled once on the bench thread with a no-op waker (every
//! future on `MemoryStore` is ready at once), and the clock is a
//! `ManualClock` standing still, so the figures hold no executor and no
//! system-clock read.
//!
//! After the groups, the target ratios are printed from criterion's estimates
//! of this run (medians), then measured again as paired ratios: the two sides
//! of each ratio timed in alternation, 21 rounds of about 25 ms a side, and
//! the median of the rounds' ratios with the middle half of them (about 45 s
//! more: run by a whole `cargo bench --bench ops`, or alone by
//! `cargo bench --bench ops -- paired`; a run filtered to other benches skips
//! them). On
//! a shared host a neighbour's load comes and goes over seconds; criterion's
//! two medians of a ratio are taken minutes apart, the paired rounds 25 ms
//! apart.
//!
//! ```sh
//! cargo bench --bench ops
//! cargo bench --bench ops -- --warm-up-time 1 --measurement-time 3   # a quick pass
//! ```

mod common;

// The library's base64url (crate-private), to read challenge ids' bytes.
#[path = "../src/base64url.rs"]
#[allow(dead_code, unused_imports)]
mod base64url;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use vericode::{
    Attempt, ChallengeId, ClientKey, Clock, CodeStore, IssueRequest, KeyKind, ManualClock,
    MemoryStore, MemoryStoreError, Policy, Record, StoreKey, Timestamp, Verifier, VerifyError,
    Write,
};

use common::{CaptureDelivery, NullDelivery, clients, requests, run, store_for, verifier, wrong};

/// Operations timed between two untimed setups.
const BATCH: usize = 1_000;
/// Challenges verified (then issued again) per round of `verify_pending`.
const PENDING_BATCH: usize = 500;
/// Store sizes of `verify_pending`.
const PENDING: [usize; 3] = [1_000, 100_000, 1_000_000];

/// Runs `round` on batches of at most `batch` until `iters` operations were
/// timed; `round(n)` sets up `n` operations, times them, cleans up, and
/// returns the time of the timed part only.
fn batched(iters: u64, batch: usize, mut round: impl FnMut(usize) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(batch as u64) as usize;
        total += round(n);
        left -= n as u64;
    }
    total
}

/// The bytes vericode's code digest hashes, with its layout (README,
/// "Security model"): a tag byte, the challenge id's 40 bytes, the code's
/// length and the code (no details, a built-in purpose).
fn digest_input(code: &[u8]) -> Vec<u8> {
    let mut msg = vec![0x81];
    msg.extend_from_slice(&[0x5a; 40]);
    msg.push(code.len() as u8);
    msg.extend_from_slice(code);
    msg
}

/// The floor's key: an HMAC-SHA256 key schedule, computed once.
fn floor_key() -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(&[7u8; 32]).expect("any key length")
}

/// The floor's message: vericode's digest input for a six-digit code, 48 bytes.
fn floor_message() -> Vec<u8> {
    let exact = digest_input(b"123456");
    assert_eq!(exact.len(), 48);
    exact
}

/// The floor: one HMAC of `msg` with the precomputed `key`.
#[inline]
fn floor_once(key: &Hmac<Sha256>, msg: &[u8]) {
    let mut mac = key.clone();
    mac.update(black_box(msg));
    black_box(mac.finalize().into_bytes());
}

fn floor(c: &mut Criterion) {
    let key = floor_key();
    let exact = floor_message();
    let earlier = vec![0x5a_u8; 98];
    let mut group = c.benchmark_group("floor");
    for (name, msg) in [("hmac_sha256_48B", &exact), ("hmac_sha256_98B", &earlier)] {
        group.bench_function(name, |b| b.iter(|| floor_once(&key, msg)));
    }
    group.finish();
}

/// A replica of `CodeFormat::generate` for six digits: each digit by
/// rejection sampling of a `u32` (no modulo bias), from the thread's CSPRNG.
fn replica_code<R: rand::Rng>(rng: &mut R) -> [u8; 6] {
    const DIGITS: &[u8; 10] = b"0123456789";
    let zone = (1u64 << 32) - ((1u64 << 32) % 10);
    let mut code = [0u8; 6];
    for slot in &mut code {
        *slot = loop {
            let x = u64::from(rng.next_u32());
            if x < zone {
                break DIGITS[(x % 10) as usize];
            }
        };
    }
    code
}

fn code_generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("code_generation");
    group.bench_function("replica_6_digits", |b| {
        let mut rng = rand::rng();
        b.iter(|| replica_code(&mut rng))
    });
    group.finish();
}

fn sms_length(c: &mut Criterion) {
    let text = "123456 is your Acme code to sign in from a new device. It expires in 10 \
                minutes. Never share it with anyone.\n\n@acme.example #123456";
    assert_eq!(text.len(), 131);
    let mut group = c.benchmark_group("sms_length");
    group.bench_function("ascii_131B", |b| {
        b.iter(|| vericode::sms_length(std::hint::black_box(text)))
    });
    group.finish();
}

/// `issue` under a policy (distinct subjects, a delivery that does
/// nothing); after each round the clock moves on and every challenge and
/// rate-limit state expires, untimed.
struct IssueBench {
    clock: ManualClock,
    v: Verifier<MemoryStore, NullDelivery, ManualClock>,
    reqs: Vec<IssueRequest>,
    ids: Vec<ChallengeId>,
}

impl IssueBench {
    fn new(policy: Policy) -> IssueBench {
        let clock = ManualClock::new(common::start());
        let v = verifier(store_for(BATCH), NullDelivery, policy, &clock);
        IssueBench {
            clock,
            v,
            reqs: requests("issue", BATCH),
            ids: Vec::with_capacity(BATCH),
        }
    }

    /// The time of `iters` issues.
    fn time(&mut self, iters: u64) -> Duration {
        let IssueBench {
            clock,
            v,
            reqs,
            ids,
        } = self;
        batched(iters, BATCH, |n| {
            ids.clear();
            let start = Instant::now();
            for r in &reqs[..n] {
                if let Ok(ticket) = run(v.issue(r)) {
                    ids.push(*ticket.challenge_id());
                }
            }
            let took = start.elapsed();
            assert_eq!(ids.len(), n, "every issue succeeds");
            common::expire_all(clock, v.store());
            took
        })
    }
}

fn bench_issue(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, policy: Policy) {
    let mut bench = IssueBench::new(policy);
    group.bench_function(name, |b| b.iter_custom(|iters| bench.time(iters)));
}

fn issue(c: &mut Criterion) {
    let mut group = c.benchmark_group("issue");
    bench_issue(&mut group, "no_limits", common::no_limits());
    bench_issue(&mut group, "default_limits", common::default_limits());
    bench_issue(&mut group, "every_limit", common::every_limit());
    group.finish();
}

/// One rate-limit check. vericode has no public call that checks a limit
/// alone (`RateLimit::decide` is crate-private, and a check is a store read,
/// a decision and a conditional write, done inside `issue` and `verify`), so
/// this is `issue` with exactly one limit on (per destination); its cost less
/// `issue/no_limits` is the check's, printed with the ratios.
fn rate_limit(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit");
    bench_issue(&mut group, "issue_one_limit", common::one_limit());
    group.finish();
}

/// Issues a challenge for each request, untimed; returns its id and code.
fn issue_all<'a>(
    v: &Verifier<MemoryStore, CaptureDelivery, ManualClock>,
    reqs: impl IntoIterator<Item = &'a IssueRequest>,
    out: &mut Vec<(ChallengeId, String)>,
) {
    for r in reqs {
        let ticket = run(v.issue(r)).expect("issue");
        out.push((*ticket.challenge_id(), CaptureDelivery::take()));
    }
}

/// `verify` with the right or a wrong code under a policy; with clients,
/// through `verify_attempt` naming the client (so the per-client attempt
/// limit is charged). Challenges are issued before, and expired and subjects
/// unlocked after, the timed part.
struct VerifyBench {
    clock: ManualClock,
    v: Verifier<MemoryStore, CaptureDelivery, ManualClock>,
    reqs: Vec<IssueRequest>,
    clients: Option<Vec<ClientKey>>,
    pending: Vec<(ChallengeId, String)>,
}

impl VerifyBench {
    fn new(policy: Policy, clients: Option<Vec<ClientKey>>, store: MemoryStore) -> VerifyBench {
        let clock = ManualClock::new(common::start());
        let v = verifier(store, CaptureDelivery, policy, &clock);
        VerifyBench {
            clock,
            v,
            reqs: requests("verify", BATCH),
            clients,
            pending: Vec::with_capacity(BATCH),
        }
    }

    /// The time of `iters` verifications with the right code (each consumes
    /// its challenge).
    fn right(&mut self, iters: u64) -> Duration {
        self.rounds(iters, false)
    }

    /// The time of `iters` verifications with a wrong code (each counts an
    /// attempt and a subject failure).
    fn wrong(&mut self, iters: u64) -> Duration {
        self.rounds(iters, true)
    }

    fn rounds(&mut self, iters: u64, wrong_code: bool) -> Duration {
        let VerifyBench {
            clock,
            v,
            reqs,
            clients,
            pending,
        } = self;
        let login = vericode::Purpose::LoginNewDevice;
        let attempt = |i: usize, id: &ChallengeId, code: &str| {
            let mut a = Attempt::new(&login, id, code);
            if let Some(c) = clients.as_deref() {
                a = a.client(&c[i]);
            }
            run(v.verify_attempt(a))
        };
        batched(iters, BATCH, |n| {
            pending.clear();
            issue_all(v, &reqs[..n], pending);
            if wrong_code {
                for (_, code) in pending.iter_mut() {
                    *code = wrong(code);
                }
            }
            let mut expected = 0usize;
            let start = Instant::now();
            for (i, (id, code)) in pending.iter().enumerate() {
                expected += usize::from(match attempt(i, id, code) {
                    Ok(_) => !wrong_code,
                    Err(VerifyError::WrongCode { .. }) => wrong_code,
                    Err(_) => false,
                });
            }
            let took = start.elapsed();
            assert_eq!(
                expected, n,
                "every right code verifies, every wrong one is refused as wrong"
            );
            // A fresh start for the next round: no challenge, no failures.
            common::expire_all(clock, v.store());
            if wrong_code {
                for r in &reqs[..n] {
                    run(v.unlock(r.subject())).expect("unlock");
                }
            }
            took
        })
    }
}

/// Times `verify` with the right and with a wrong code.
fn bench_verify(
    group: &mut BenchmarkGroup<'_, WallTime>,
    suffix: &str,
    policy: Policy,
    clients: Option<Vec<ClientKey>>,
    store: MemoryStore,
) {
    let mut bench = VerifyBench::new(policy, clients, store);
    group.bench_function(format!("right_code{suffix}"), |b| {
        b.iter_custom(|iters| bench.right(iters))
    });
    group.bench_function(format!("wrong_code{suffix}"), |b| {
        b.iter_custom(|iters| bench.wrong(iters))
    });
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    bench_verify(
        &mut group,
        "",
        common::default_limits(),
        Some(clients("verify", BATCH)),
        store_for(BATCH),
    );
    bench_verify(
        &mut group,
        "_no_limits",
        common::no_limits(),
        None,
        store_for(BATCH),
    );
    // The compact layout: records decoded on every read.
    let compact = MemoryStore::compact(store_for(BATCH).capacity());
    bench_verify(
        &mut group,
        "_no_limits_compact",
        common::no_limits(),
        None,
        compact,
    );
    group.finish();
}

/// The bytes of a challenge id, from its text (decoded by the library's own
/// base64url, compiled here): subject (16 bytes), purpose (8), nonce (16),
/// hint.
fn id_bytes(id: &ChallengeId) -> Vec<u8> {
    let text = id.to_string();
    let mut raw = vec![0u8; text.len() * 6 / 8];
    base64url::decode(&text, &mut raw).expect("a challenge id is base64url");
    raw
}

/// A subject's failure record, unlocked, from its byte form (format 3, kind
/// 2: failures, the last failure's time in milliseconds, no lock, none
/// forgiven).
fn subject_record(failures: u32, last_failure_ms: i64) -> Record {
    let mut bytes = vec![3u8, 2];
    bytes.extend_from_slice(&failures.to_be_bytes());
    bytes.extend_from_slice(&last_failure_ms.to_be_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&0i64.to_be_bytes());
    bytes.extend_from_slice(&[0; 12]);
    Record::decode(&bytes).expect("a subject record")
}

/// The keys a verify reads for `id`: the challenge, its decoy slot, the
/// subject's failure record (the layout of `StoreKey`'s constructors in
/// `src/store/mod.rs`; `StoreCallsBench::new` checks all three against
/// records the verifier wrote, so a change there stops the bench rather than
/// letting it measure misses).
fn verify_keys(id: &ChallengeId) -> [StoreKey; 3] {
    let raw = id_bytes(id);
    let subject: [u8; 16] = raw[..16].try_into().expect("subject bytes");
    let purpose: [u8; 8] = raw[16..24].try_into().expect("purpose bytes");
    let mut decoy = purpose;
    decoy[0] |= 0x40;
    [
        StoreKey::new(KeyKind::Challenge, subject, purpose),
        StoreKey::new(KeyKind::Challenge, subject, decoy),
        StoreKey::new(KeyKind::Subject, subject, [0; 8]),
    ]
}

/// The two calls a right-code `verify` without limits makes to its
/// `MemoryStore`, made directly on a store built as
/// `verify/right_code_no_limits` builds its own, with 1,000 challenges:
/// `get_many` of the challenge, its decoy slot and the subject's failure
/// record, then a `commit` that deletes the challenge and puts a record of no
/// failures (dropping what was read frees the challenge, as a verify does).
/// What the store alone costs of a verify.
struct StoreCallsBench {
    clock: ManualClock,
    v: Verifier<MemoryStore, CaptureDelivery, ManualClock>,
    reqs: Vec<IssueRequest>,
    pending: Vec<(ChallengeId, String)>,
    clean: Record,
}

impl StoreCallsBench {
    fn new() -> StoreCallsBench {
        let clock = ManualClock::new(common::start());
        let v = verifier(
            store_for(BATCH),
            CaptureDelivery,
            common::no_limits(),
            &clock,
        );
        let reqs = requests("verify", BATCH);
        // The rebuilt keys find what the verifier wrote: a wrong guess's
        // failure record, and a decoy.
        let ticket = run(v.issue(&reqs[0])).expect("issue");
        let code = CaptureDelivery::take();
        let refused = run(v.verify(ticket.purpose(), ticket.challenge_id(), &wrong(&code)));
        assert!(matches!(refused, Err(VerifyError::WrongCode { .. })));
        let decoy = run(v.issue_decoy(&reqs[1])).expect("decoy");
        let now = clock.now_timestamp();
        let [.., subject] = verify_keys(ticket.challenge_id());
        let [_, decoy_slot, _] = verify_keys(decoy.challenge_id());
        let got = run(v.store().get_many(&[subject, decoy_slot], now)).expect("read");
        assert!(
            got.iter().all(Option::is_some),
            "the bench's keys are the verifier's"
        );
        run(v.unlock(reqs[0].subject())).expect("unlock");
        common::expire_all(&clock, v.store());
        StoreCallsBench {
            clock,
            v,
            reqs,
            pending: Vec::with_capacity(BATCH),
            // No failures: what a success writes.
            clean: subject_record(0, 0),
        }
    }

    fn time(&mut self, iters: u64) -> Duration {
        let StoreCallsBench {
            clock,
            v,
            reqs,
            pending,
            clean,
        } = self;
        batched(iters, BATCH, |n| {
            pending.clear();
            issue_all(v, &reqs[..n], pending);
            let keys: Vec<[StoreKey; 3]> = pending.iter().map(|(id, _)| verify_keys(id)).collect();
            let store = v.store();
            let now = clock.now_timestamp();
            let expires_at = now.saturating_add(time::Duration::minutes(1));
            let mut applied = 0usize;
            let start = Instant::now();
            for k in &keys {
                let got = run(store.get_many(k, now)).expect("read");
                let Some(challenge) = &got[0] else { continue };
                let writes = [
                    Write::Delete {
                        key: k[0],
                        expected: challenge.version,
                    },
                    Write::Put {
                        key: k[2],
                        record: clean.clone(),
                        expected: got[2].as_ref().map(|s| s.version),
                        version: vericode::Version::fresh(),
                        expires_at,
                    },
                ];
                let done = run(store.commit(&writes, now)).expect("commit");
                applied += usize::from(done == vericode::Commit::Applied);
            }
            let took = start.elapsed();
            assert_eq!(applied, n, "every challenge is found and consumed");
            common::expire_all(clock, store);
            took
        })
    }
}

fn store_calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_calls");
    let mut bench = StoreCallsBench::new();
    group.bench_function("verify_right_code_no_limits", |b| {
        b.iter_custom(|iters| bench.time(iters))
    });
    group.finish();
}

/// A permutation of `0..n` from a fixed seed (xorshift64*, Fisher-Yates).
fn permutation(n: usize) -> Vec<usize> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    order
}

/// A verifier holding `n` pending challenges, their requests, ids and codes.
struct Pending {
    v: Verifier<MemoryStore, CaptureDelivery, ManualClock>,
    reqs: Vec<IssueRequest>,
    pool: Vec<(ChallengeId, String)>,
    draws: Draws,
}

/// Distinct slots at random: a fixed random permutation of `0..n`, walked
/// round after round.
struct Draws {
    order: Vec<usize>,
    cursor: usize,
}

impl Draws {
    fn new(n: usize) -> Draws {
        Draws {
            order: permutation(n),
            cursor: 0,
        }
    }

    /// The next `k` slots (distinct while `k <= n`).
    fn take(&mut self, k: usize) -> Vec<usize> {
        let n = self.order.len();
        let picks = (0..k).map(|j| self.order[(self.cursor + j) % n]).collect();
        self.cursor = (self.cursor + k) % n;
        picks
    }
}

impl Pending {
    fn fill(n: usize) -> Pending {
        let clock = ManualClock::new(common::start());
        let v = verifier(store_for(n), CaptureDelivery, common::no_limits(), &clock);
        let reqs = requests("pending", n);
        let mut pool = Vec::with_capacity(n);
        issue_all(&v, &reqs, &mut pool);
        assert_eq!(v.store().len(), n);
        Pending {
            v,
            reqs,
            pool,
            draws: Draws::new(n),
        }
    }

    /// The time of `iters` verifications.
    fn time(&mut self, iters: u64) -> Duration {
        let batch = PENDING_BATCH.min(self.pool.len());
        batched(iters, batch, |k| self.round(k))
    }

    /// Verifies `k` challenges drawn from the permutation (distinct, as
    /// `k <= n`), timed; then unlocks their subjects and issues them again,
    /// untimed.
    fn round(&mut self, k: usize) -> Duration {
        let picks = self.draws.take(k);
        // The ids and codes in hand, as a server has them from the request:
        // the timed part measures the store, not this pool's cache misses.
        let batch: Vec<(ChallengeId, String)> =
            picks.iter().map(|&i| self.pool[i].clone()).collect();
        let mut ok = 0usize;
        let start = Instant::now();
        for (id, code) in &batch {
            ok += usize::from(
                run(self.v.verify(&vericode::Purpose::LoginNewDevice, id, code)).is_ok(),
            );
        }
        let took = start.elapsed();
        assert_eq!(ok, k, "every right code verifies");
        // A success leaves its subject a record of no failures, which lives
        // a minute; the clock stands still here, so without this the store
        // would come to hold a record per subject beside the n challenges.
        for &i in &picks {
            run(self.v.unlock(self.reqs[i].subject())).expect("unlock");
        }
        let mut fresh = Vec::with_capacity(k);
        issue_all(&self.v, picks.iter().map(|&i| &self.reqs[i]), &mut fresh);
        for (&i, f) in picks.iter().zip(fresh) {
            self.pool[i] = f;
        }
        took
    }
}

fn verify_pending(c: &mut Criterion, sizes: &[usize]) {
    let mut group = c.benchmark_group("verify_pending");
    for &n in sizes {
        // Filled on first use, so a filter that skips this size skips the fill.
        let mut state: Option<Pending> = None;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let p = state.get_or_insert_with(|| Pending::fill(n));
            b.iter_custom(|iters| p.time(iters))
        });
        // Free this store before filling the next one.
        drop(state);
    }
    group.finish();
}

/// A record of the bare map: 272 bytes, the size of vericode's challenge
/// record, sharing two strings (a subject and a destination) with the
/// requests.
struct BareRecord {
    nonce: u64,
    _body: [u64; 29],
    _subject: Arc<str>,
    _destination: Arc<str>,
}

/// splitmix64 of a counter: distinct, random-looking keys.
fn splitmix64(x: u64) -> u64 {
    let mut k = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    k = (k ^ (k >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    k = (k ^ (k >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    k ^ (k >> 31)
}

/// Hashes a `u64` key that is random already: as itself.
#[derive(Default)]
struct AsIs(u64);

impl std::hash::Hasher for AsIs {
    fn write(&mut self, _: &[u8]) {
        unreachable!("the bare map hashes u64 keys only")
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type BareTable = HashMap<u64, Arc<BareRecord>, BuildHasherDefault<AsIs>>;

/// The least a store of `MemoryStore`'s shape pays as it grows, the
/// reference for `verify_pending`'s ratios (as `threads/hmac_floor` is for
/// two threads): 64 locked maps of random 8-byte keys to 272-byte records
/// held by reference count, each sharing two strings. One operation locks a
/// map, removes a record, unlocks, reads the record's nonce and drops it (as
/// a verify consumes a challenge); no hashing of keys, no decision, no write
/// back. A smaller record, or strings kept inside it, would pay less.
/// Each removed record is put back under a new key, untimed.
struct BareMap {
    shards: Vec<Mutex<BareTable>>,
    strings: Vec<(Arc<str>, Arc<str>)>,
    keys: Vec<u64>,
    draws: Draws,
    minted: u64,
}

impl BareMap {
    fn fill(n: usize) -> BareMap {
        let mut map = BareMap {
            shards: (0..64).map(|_| Mutex::default()).collect(),
            strings: (0..n)
                .map(|i| {
                    (
                        Arc::from(format!("user-{i}")),
                        Arc::from(format!("+4479{i:08}")),
                    )
                })
                .collect(),
            keys: vec![0; n],
            draws: Draws::new(n),
            minted: 0,
        };
        for slot in 0..n {
            map.put(slot);
        }
        map
    }

    /// Puts slot `slot`'s record back under a fresh key.
    fn put(&mut self, slot: usize) {
        self.minted += 1;
        let k = splitmix64(self.minted);
        self.keys[slot] = k;
        let (subject, destination) = self.strings[slot].clone();
        let record = Arc::new(BareRecord {
            nonce: k,
            _body: [k; 29],
            _subject: subject,
            _destination: destination,
        });
        self.shard(k).insert(k, record);
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, BareTable> {
        // Bits the map's buckets and tags (its low and top seven bits) do
        // not use, so each shard's map sees keys spread as in any other.
        self.shards[((key >> 32) & 63) as usize]
            .lock()
            .expect("not poisoned")
    }

    fn time(&mut self, iters: u64) -> Duration {
        let batch = PENDING_BATCH.min(self.keys.len());
        batched(iters, batch, |k| self.round(k))
    }

    fn round(&mut self, k: usize) -> Duration {
        let picks = self.draws.take(k);
        let keys: Vec<u64> = picks.iter().map(|&i| self.keys[i]).collect();
        let mut found = 0usize;
        let start = Instant::now();
        for &key in &keys {
            let taken = self.shard(key).remove(&key);
            if let Some(record) = taken {
                found += usize::from(black_box(record.nonce) == key);
            }
        }
        let took = start.elapsed();
        assert_eq!(found, k, "every key is held");
        for slot in picks {
            self.put(slot);
        }
        took
    }
}

fn pending_floor(c: &mut Criterion, sizes: &[usize]) {
    let mut group = c.benchmark_group("pending_floor");
    for &n in sizes {
        let mut state: Option<BareMap> = None;
        group.bench_with_input(BenchmarkId::new("bare_map", n), &n, |b, &n| {
            let m = state.get_or_insert_with(|| BareMap::fill(n));
            b.iter_custom(|iters| m.time(iters))
        });
        drop(state);
    }
    group.finish();
}

/// A put of a new record into a `MemoryStore` holding `n` live records,
/// its capacity: refused as full.
fn full_store(c: &mut Criterion, n: usize) {
    // A subject's failure count: the smallest record.
    let record = subject_record(3, 5);
    let key = |i: u32| {
        let mut group = [0u8; 16];
        group[..4].copy_from_slice(&i.to_le_bytes());
        StoreKey::new(KeyKind::Challenge, group, [0; 8])
    };
    let put = |i: u32| Write::Put {
        key: key(i),
        record: record.clone(),
        expected: None,
        version: vericode::Version::fresh(),
        expires_at: Timestamp::from_millis(3_600_000),
    };
    let now = Timestamp::from_millis(0);
    let store = MemoryStore::with_capacity(n);
    for i in 0..n as u32 {
        let done = run(store.commit(&[put(i)], now)).expect("room");
        assert_eq!(done, vericode::Commit::Applied);
    }
    let refused = [put(n as u32)];
    let mut group = c.benchmark_group("full_store");
    group.bench_with_input(BenchmarkId::new("refuse_new_record", n), &n, |b, _| {
        b.iter(|| {
            let r = run(store.commit(&refused, now));
            assert!(matches!(r, Err(MemoryStoreError::Full { .. })));
        })
    });
    group.finish();
}

/// `n` threads, each running `op(thread, i)` for its share of `iters`
/// operations in all; the wall time from the first thread's start (after a
/// common spinning barrier) to the last thread's end, as each thread reads the clock
/// itself (the spawning thread may wake from the barrier late).
fn on_threads(n: usize, iters: u64, op: impl Fn(usize, usize) + Sync) -> Duration {
    let per_thread = iters.div_ceil(n as u64).max(1);
    // A spinning barrier: a thread that slept in a blocking one would start
    // late by the time its (virtual) CPU takes to wake, which on this kind of
    // host is long enough to show in a 25 ms slice.
    let arrived = AtomicUsize::new(0);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..n)
            .map(|t| {
                let (arrived, op) = (&arrived, &op);
                s.spawn(move || {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    while arrived.load(Ordering::SeqCst) < n {
                        std::hint::spin_loop();
                    }
                    let start = Instant::now();
                    for i in 0..per_thread as usize {
                        op(t, i);
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let start = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("one thread at least");
    let end = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("one thread at least");
    // The threads did `per_thread` each, at least `iters` in all: scale to `iters`.
    let did = per_thread * n as u64;
    end.duration_since(start).mul_f64(iters as f64 / did as f64)
}

/// One issue followed by one verify per operation, by `n` threads sharing
/// one verifier and store, each on subjects of its own.
struct ThreadsBench {
    v: Verifier<MemoryStore, CaptureDelivery, ManualClock>,
    reqs: Vec<Vec<IssueRequest>>,
}

impl ThreadsBench {
    fn new(policy: Policy) -> ThreadsBench {
        ThreadsBench::with(policy, requests)
    }

    /// Each thread's requests made by `make` (its prefix, how many).
    fn with(policy: Policy, make: fn(&str, usize) -> Vec<IssueRequest>) -> ThreadsBench {
        let clock = ManualClock::new(common::start());
        ThreadsBench {
            v: verifier(store_for(BATCH), CaptureDelivery, policy, &clock),
            reqs: (0..2).map(|t| make(&format!("thread{t}"), BATCH)).collect(),
        }
    }

    /// The wall time of `iters` operations shared among `n` threads.
    fn time(&self, n: usize, iters: u64) -> Duration {
        on_threads(n, iters, |t, i| {
            let mine = &self.reqs[t];
            let ticket = run(self.v.issue(&mine[i % mine.len()])).expect("issue");
            let code = CaptureDelivery::take();
            run(self
                .v
                .verify(ticket.purpose(), ticket.challenge_id(), &code))
            .expect("verify");
        })
    }
}

/// The wall time of `iters` of the floor's HMACs shared among `n` threads:
/// work that shares nothing, the most this machine scales any work.
fn floor_on_threads(n: usize, iters: u64) -> Duration {
    let (key, msg) = (floor_key(), floor_message());
    on_threads(n, iters, |_, _| floor_once(&key, &msg))
}

/// A locked map on its own cache lines, as `MemoryStore`'s shards are.
#[repr(align(128))]
struct PaddedTable(Mutex<BareTable>);

/// The least a shared, locked store pays for two threads: 64 padded, locked
/// maps of random 8-byte keys to 272-byte records held by reference count
/// (as `BareMap`), 1,000 records a thread. One operation replaces one of its
/// thread's records: with a new record allocated (sharing the old one's
/// strings), it locks the record's map, reads the record, puts the new one in
/// its place, unlocks and drops the old one: one store call of the simplest
/// kind. The threads share
/// no record, only the maps, as the `threads` bench's subjects share only
/// the store's shards. Its two-thread ratio is what the cache lines of locks
/// and tables moving between the cores leave of the machine's.
struct SharedMap {
    shards: Vec<PaddedTable>,
    /// Each thread's keys.
    keys: Vec<Vec<SharedSlot>>,
}

/// A key of [`SharedMap`], with the two strings its record shares.
type SharedSlot = (u64, Arc<str>, Arc<str>);

impl SharedMap {
    fn new() -> SharedMap {
        let map = SharedMap {
            shards: (0..64).map(|_| PaddedTable(Mutex::default())).collect(),
            keys: (0..2u64)
                .map(|t| {
                    (0..BATCH as u64)
                        .map(|i| {
                            let subject = Arc::from(format!("thread{t}-{i}"));
                            let number = Arc::from(format!("+4479{i:08}"));
                            (splitmix64(t << 32 | i), subject, number)
                        })
                        .collect()
                })
                .collect(),
        };
        for keys in &map.keys {
            for slot in keys {
                let (k, record) = SharedMap::record(slot);
                map.shard(k).insert(k, record);
            }
        }
        map
    }

    fn record((k, subject, destination): &SharedSlot) -> (u64, Arc<BareRecord>) {
        let record = BareRecord {
            nonce: *k,
            _body: [*k; 29],
            _subject: subject.clone(),
            _destination: destination.clone(),
        };
        (*k, Arc::new(record))
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, BareTable> {
        self.shards[((key >> 32) & 63) as usize]
            .0
            .lock()
            .expect("not poisoned")
    }

    /// Replaces a record: the new one is made before the lock is taken (as
    /// a commit's records are), the old one dropped after it is released.
    fn replace(&self, slot: &SharedSlot) {
        let (key, new) = SharedMap::record(slot);
        let old = {
            let mut shard = self.shard(key);
            let Some(old) = shard.get(&key).cloned() else {
                panic!("every key is held");
            };
            shard.insert(key, new);
            old
        };
        assert_eq!(black_box(old.nonce), key);
    }

    /// The wall time of `iters` replacements shared among `n` threads.
    fn time(&self, n: usize, iters: u64) -> Duration {
        on_threads(n, iters, |t, i| {
            let keys = &self.keys[t];
            self.replace(&keys[i % keys.len()]);
        })
    }
}

fn thread_label(n: usize) -> String {
    format!("{n}_thread{}", if n == 1 { "" } else { "s" })
}

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    for (name, bench) in [
        ("issue_verify", ThreadsBench::new(common::default_limits())),
        (
            "issue_verify_no_limits",
            ThreadsBench::new(common::no_limits()),
        ),
        (
            "issue_verify_over_ranges",
            ThreadsBench::with(common::default_limits(), common::requests_over_ranges),
        ),
    ] {
        for n in [1usize, 2] {
            group.bench_function(BenchmarkId::new(name, thread_label(n)), |b| {
                b.iter_custom(|iters| bench.time(n, iters))
            });
        }
    }
    // What a shared, locked map gives (the store's shape, nothing else).
    let map = SharedMap::new();
    for n in [1usize, 2] {
        group.bench_function(BenchmarkId::new("shared_map", thread_label(n)), |b| {
            b.iter_custom(|iters| map.time(n, iters))
        });
    }
    // What the machine itself gives (two vCPUs of a VM may not scale as two
    // cores).
    for n in [1usize, 2] {
        group.bench_function(BenchmarkId::new("hmac_floor", thread_label(n)), |b| {
            b.iter_custom(|iters| floor_on_threads(n, iters))
        });
    }
    group.finish();
}

/// Where criterion keeps its estimates (its own rule: `$CRITERION_HOME`,
/// else `$CARGO_TARGET_DIR/criterion`, else the target directory this bench
/// was built in).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median time in nanoseconds of benchmark `id`, if this run measured it.
fn median_ns(id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir().join(id).join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None; // from an earlier run: not comparable
    }
    let json = std::fs::read_to_string(path).ok()?;
    let median = &json[json.find("\"median\"")?..];
    let at = median.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let rest = &median[at..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// Prints each target as a ratio of two medians of this run.
fn print_ratios(since: SystemTime) {
    let get = |id: &str| median_ns(id, since);
    println!("\nTargets (ratios of medians measured in this run):");
    let line = |what: &str, num: &str, den: &str, target: (&str, f64)| {
        let (Some(a), Some(b)) = (get(num), get(den)) else {
            println!("  {what:<44}    n/a  (not measured in this run)");
            return;
        };
        let r = a / b;
        let met = if target.0 == ">=" {
            r >= target.1
        } else {
            r <= target.1
        };
        let verdict = if met { "met" } else { "MISSED" };
        println!(
            "  {what:<44} {r:>6.2}  (target {} {}) {verdict:<6} [{a:.0} ns / {b:.0} ns]",
            target.0, target.1
        );
    };
    let floor = "floor/hmac_sha256_48B";
    for (what, id) in [
        ("verify right code / floor", "verify/right_code"),
        ("verify wrong code / floor", "verify/wrong_code"),
        (
            "verify right code, no limits / floor",
            "verify/right_code_no_limits",
        ),
        (
            "verify wrong code, no limits / floor",
            "verify/wrong_code_no_limits",
        ),
    ] {
        line(what, id, floor, ("<=", 2.0));
    }
    if let (Some(calls), Some(f)) = (get("store_calls/verify_right_code_no_limits"), get(floor)) {
        println!(
            "  a verify's two store calls alone / floor      {:>6.2}  (the store's share of verify, no limits) [{calls:.0} ns / {f:.0} ns]",
            calls / f
        );
    }
    for (what, id) in [
        ("issue, every limit / floor", "issue/every_limit"),
        ("issue, default limits / floor", "issue/default_limits"),
        ("issue, no limits / floor", "issue/no_limits"),
    ] {
        line(what, id, floor, ("<=", 4.0));
    }
    for (what, name) in [
        ("throughput 2 threads / 1 thread", "issue_verify"),
        (
            "throughput 2 threads / 1, no limits",
            "issue_verify_no_limits",
        ),
        (
            "throughput 2 threads / 1, over 800 ranges",
            "issue_verify_over_ranges",
        ),
    ] {
        line(
            what,
            &format!("threads/{name}/1_thread"),
            &format!("threads/{name}/2_threads"),
            (">=", 1.8),
        );
    }
    if let (Some(one), Some(two)) = (
        get("threads/hmac_floor/1_thread"),
        get("threads/hmac_floor/2_threads"),
    ) {
        println!(
            "  the machine: the floor's HMAC on 2 threads / 1  {:>6.2}  (the most any work scales here)",
            one / two
        );
    }
    if let (Some(one), Some(two)) = (
        get("threads/shared_map/1_thread"),
        get("threads/shared_map/2_threads"),
    ) {
        println!(
            "  a shared, locked map on 2 threads / 1         {:>6.2}  (what locks and tables moving between cores leave)",
            one / two
        );
    }
    line(
        "verify at 100K pending / at 1K",
        "verify_pending/100000",
        "verify_pending/1000",
        ("<=", 1.5),
    );
    line(
        "verify at 1M pending / at 1K",
        "verify_pending/1000000",
        "verify_pending/1000",
        ("<=", 1.5),
    );
    for n in ["100000", "1000000"] {
        if let (Some(large), Some(small)) = (
            get(&format!("pending_floor/bare_map/{n}")),
            get("pending_floor/bare_map/1000"),
        ) {
            println!(
                "  a bare map of the store's shape at {:>4} / at 1K {:>6.2}  (the least a store of this shape grows) [{large:.0} ns / {small:.0} ns]",
                if n == "100000" { "100K" } else { "1M" },
                large / small
            );
        }
    }
    if let (Some(one), Some(none), Some(f)) = (
        get("rate_limit/issue_one_limit"),
        get("issue/no_limits"),
        get(floor),
    ) {
        println!(
            "  one rate-limit check (issue with one limit - without): {:.0} ns = {:.2} x floor (no target)",
            one - none,
            (one - none) / f
        );
    }
    println!("  (bytes per pending challenge: cargo bench --bench memory)");
}

/// Rounds of a paired measurement.
const PAIRED_ROUNDS: usize = 21;
/// About how long each side of a round runs.
const PAIRED_SLICE: Duration = Duration::from_millis(25);

/// How many operations of `time` take about `PAIRED_SLICE`.
fn calibrate(time: &mut dyn FnMut(u64) -> Duration) -> u64 {
    let mut iters = 64u64;
    loop {
        let took = time(iters);
        if took >= PAIRED_SLICE / 4 || iters >= 1 << 24 {
            let per = took.as_secs_f64() / iters as f64;
            return ((PAIRED_SLICE.as_secs_f64() / per.max(1e-12)) as u64).max(1);
        }
        iters *= 4;
    }
}

/// Times `a` and `b` in alternation (which goes first alternates too), in
/// `PAIRED_ROUNDS` rounds of about `PAIRED_SLICE` each, and returns the
/// ratios of their times per operation, one a round, sorted. A load that
/// comes and goes on a shared host then weighs on both sides of most rounds
/// alike, where criterion's medians of `a` and of `b` are taken minutes apart.
fn paired(a: &mut dyn FnMut(u64) -> Duration, b: &mut dyn FnMut(u64) -> Duration) -> Paired {
    let (ia, ib) = (calibrate(a), calibrate(b));
    let mut rounds: Vec<[f64; 3]> = (0..PAIRED_ROUNDS)
        .map(|round| {
            let (ta, tb) = if round % 2 == 0 {
                let ta = a(ia);
                (ta, b(ib))
            } else {
                let tb = b(ib);
                (a(ia), tb)
            };
            let (pa, pb) = (
                ta.as_secs_f64() * 1e9 / ia as f64,
                tb.as_secs_f64() * 1e9 / ib as f64,
            );
            [pa / pb, pa, pb]
        })
        .collect();
    let median = |rounds: &mut Vec<[f64; 3]>, i: usize| {
        rounds.sort_by(|x, y| x[i].total_cmp(&y[i]));
        rounds[rounds.len() / 2][i]
    };
    let (a_ns, b_ns) = (median(&mut rounds, 1), median(&mut rounds, 2));
    rounds.sort_by(|x, y| x[0].total_cmp(&y[0]));
    Paired {
        ratios: rounds.iter().map(|r| r[0]).collect(),
        a_ns,
        b_ns,
    }
}

/// What [`paired`] measured: the ratios of the rounds, sorted, and the
/// median time per operation of each side.
struct Paired {
    ratios: Vec<f64>,
    a_ns: f64,
    b_ns: f64,
}

/// Prints a paired ratio: its median, the middle half of the rounds, and
/// the verdict against `target`, or what the reference it measures means.
fn print_paired(what: &str, p: &Paired, target: Result<(&str, f64), &str>) {
    let ratios = &p.ratios;
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    let median = at(0.5);
    let verdict = match target {
        Ok((">=", t)) => format!(
            "(target >= {t}) {}",
            if median >= t { "met" } else { "MISSED" }
        ),
        Ok((_, t)) => format!(
            "(target <= {t}) {}",
            if median <= t { "met" } else { "MISSED" }
        ),
        Err(reference) => format!("({reference})"),
    };
    println!(
        "  {what:<44} {median:>6.2}  [middle half {:.2}-{:.2}] {verdict} [{:.0} ns / {:.0} ns]",
        at(0.25),
        at(0.75),
        p.a_ns,
        p.b_ns
    );
}

/// The targets again, each measured as a paired ratio (see [`paired`]).
fn paired_ratios() {
    println!(
        "\nTargets, paired ({PAIRED_ROUNDS} alternating rounds of about {} ms a side; median ratio):",
        PAIRED_SLICE.as_millis()
    );
    let (key, msg) = (floor_key(), floor_message());
    let mut floor = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            floor_once(&key, &msg);
        }
        start.elapsed()
    };
    let mut plain = VerifyBench::new(common::no_limits(), None, store_for(BATCH));
    let ratios = paired(&mut |i| plain.right(i), &mut floor);
    print_paired(
        "verify right code, no limits / floor",
        &ratios,
        Ok(("<=", 2.0)),
    );
    let mut calls = StoreCallsBench::new();
    let ratios = paired(&mut |i| calls.time(i), &mut floor);
    print_paired(
        "a verify's two store calls alone / floor",
        &ratios,
        Err("the store's share of verify, no limits"),
    );
    drop(calls);
    let mut limited = VerifyBench::new(
        common::default_limits(),
        Some(clients("verify", BATCH)),
        store_for(BATCH),
    );
    let ratios = paired(&mut |i| limited.right(i), &mut floor);
    print_paired("verify right code / floor", &ratios, Ok(("<=", 2.0)));
    for (what, policy) in [
        ("issue, no limits / floor", common::no_limits()),
        ("issue, every limit / floor", common::every_limit()),
    ] {
        let mut issue = IssueBench::new(policy);
        let ratios = paired(&mut |i| issue.time(i), &mut floor);
        print_paired(what, &ratios, Ok(("<=", 4.0)));
    }
    for (what, bench) in [
        (
            "throughput 2 threads / 1 thread",
            ThreadsBench::new(common::default_limits()),
        ),
        (
            "throughput 2 threads / 1, no limits",
            ThreadsBench::new(common::no_limits()),
        ),
        (
            "throughput 2 threads / 1, over 800 ranges",
            ThreadsBench::with(common::default_limits(), common::requests_over_ranges),
        ),
    ] {
        let ratios = paired(&mut |i| bench.time(1, i), &mut |i| bench.time(2, i));
        print_paired(what, &ratios, Ok((">=", 1.8)));
    }
    let ratios = paired(&mut |i| floor_on_threads(1, i), &mut |i| {
        floor_on_threads(2, i)
    });
    print_paired(
        "the machine: the floor's HMAC on 2 threads / 1",
        &ratios,
        Err("the most any work scales here"),
    );
    let map = SharedMap::new();
    let ratios = paired(&mut |i| map.time(1, i), &mut |i| map.time(2, i));
    print_paired(
        "a shared, locked map on 2 threads / 1",
        &ratios,
        Err("what locks and tables moving between cores leave"),
    );
    drop(map);
    let mut small = Pending::fill(PENDING[0]);
    let mut bare_small = BareMap::fill(PENDING[0]);
    for &n in &PENDING[1..] {
        let label = if n >= 1_000_000 {
            format!("{}M", n / 1_000_000)
        } else {
            format!("{}K", n / 1000)
        };
        let mut large = Pending::fill(n);
        let ratios = paired(&mut |i| large.time(i), &mut |i| small.time(i));
        print_paired(
            &format!("verify at {label} pending / at 1K"),
            &ratios,
            Ok(("<=", 1.5)),
        );
        drop(large);
        let mut bare = BareMap::fill(n);
        let ratios = paired(&mut |i| bare.time(i), &mut |i| bare_small.time(i));
        print_paired(
            &format!("a bare map at {label} / at 1K"),
            &ratios,
            Err("the least a store of this shape grows"),
        );
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    floor(&mut c);
    code_generation(&mut c);
    sms_length(&mut c);
    issue(&mut c);
    verify(&mut c);
    store_calls(&mut c);
    // `cargo bench` passes `--bench`; `cargo test --benches` runs each bench
    // once, unoptimised: keep that quick.
    let full = std::env::args().any(|a| a == "--bench");
    verify_pending(&mut c, if full { &PENDING } else { &PENDING[..1] });
    pending_floor(&mut c, if full { &PENDING } else { &PENDING[..1] });
    full_store(&mut c, if full { 100_000 } else { 1_000 });
    threads(&mut c);
    rate_limit(&mut c);
    c.final_summary();
    print_ratios(since);
    if full && wants_paired() {
        paired_ratios();
    }
}

/// Whether this run asked for the paired ratios: a whole run (no filter), or
/// a filter that names them (`cargo bench --bench ops -- paired`), and not a
/// `--list` or `--profile-time` run.
fn wants_paired() -> bool {
    // Criterion's options that take a value.
    const VALUED: [&str; 14] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--color",
        "--output-format",
        "--plotting-backend",
    ];
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--list" || arg.starts_with("--profile-time") {
            return false;
        }
        if VALUED.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    filters.is_empty() || filters.iter().any(|f| f == "paired")
}
