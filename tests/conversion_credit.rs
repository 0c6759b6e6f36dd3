//! A success is counted for its destination's prefix (the conversion guard)
//! in the verification's own round trips, exactly once, whatever races it:
//! read where the challenge id's hint says, credited in the same batch of
//! commits as the outcome, taken back when the outcome lost its race, and
//! never where a forged hint points.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use common::*;
use time::Duration;
use vericode::{
    ChallengeId, Clock, CodeStore, Commit, ConversionGuard, Destination, IssueRequest, KeyId,
    KeyKind, ManualClock, MemoryStore, Policy, Purpose, RecordingDelivery, StoreKey, Subject,
    Timestamp, Verifier, VerifyError, Write,
};

/// The guard on, with a threshold no test here reaches.
fn guarded() -> Policy {
    relaxed().conversion_guard(ConversionGuard::new(Duration::hours(1), 10_000, 0.2).unwrap())
}

fn request(subject: &str, phone: &str) -> IssueRequest {
    IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new(subject).unwrap(),
        Destination::sms(phone).unwrap(),
    )
}

fn counts<S: CodeStore, D: vericode::Delivery, C: Clock>(
    v: &Verifier<S, D, C>,
    phone: &str,
) -> (f64, f64) {
    let seen = block_on(v.prefix_conversion(&Destination::sms(phone).unwrap()))
        .unwrap()
        .unwrap();
    (seen.sends, seen.verified)
}

/// A store that counts calls: each is one round trip on a remote store.
#[derive(Default)]
struct Counting {
    reads: AtomicUsize,
    commits: AtomicUsize,
}

impl Counting {
    /// The reads and commits `op` makes.
    fn calls(&self, op: impl FnOnce()) -> (usize, usize) {
        let (r, c) = (
            self.reads.load(Ordering::SeqCst),
            self.commits.load(Ordering::SeqCst),
        );
        op();
        (
            self.reads.load(Ordering::SeqCst) - r,
            self.commits.load(Ordering::SeqCst) - c,
        )
    }
}

impl Around for Counting {
    fn read(&self, _: &[StoreKey]) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }

    fn round_trip(&self) {
        self.commits.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_success_is_credited_in_one_read_and_one_batch_of_commits() {
    let store = Arc::new(Wrapped::<Counting>::default());
    let v = verifier_with(store.clone(), guarded());
    let t = block_on(v.issue(&request("u1", "+447700900001"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    let trips = store.calls(|| {
        block_on(v.verify(t.purpose(), t.challenge_id(), &code)).unwrap();
    });
    assert_eq!(
        trips,
        (1, 1),
        "a successful verify: one read, one batch of commits"
    );
    assert_eq!(counts(&v, "+447700900002"), (1.0, 1.0));
}

#[test]
fn in_the_process_a_success_is_credited_after_its_outcome() {
    // MemoryStore is not remote: no hint is unmasked, the credit has its own
    // read and write, and each success still counts once.
    let v = verifier_with(MemoryStore::new(), guarded());
    assert!(!v.store().is_remote());
    let t = block_on(v.issue(&request("u1", "+447700900001"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    assert!(block_on(v.verify(t.purpose(), t.challenge_id(), &wrong(&code))).is_err());
    assert_eq!(counts(&v, "+447700900002"), (1.0, 0.0));
    block_on(v.verify(t.purpose(), t.challenge_id(), &code)).unwrap();
    assert_eq!(counts(&v, "+447700900002"), (1.0, 1.0));
    assert!(block_on(v.verify(t.purpose(), t.challenge_id(), &code)).is_err());
    assert_eq!(counts(&v, "+447700900002"), (1.0, 1.0));
}

#[test]
fn a_forged_hint_credits_the_real_prefix_not_the_named_one() {
    let f = fixture_with(guarded());
    let pumped = block_on(f.verifier.issue(&request("p1", "+882160000001"))).unwrap();
    let t = block_on(f.verifier.issue(&request("u1", "+447700900001"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    // The UK challenge's id with the pumped prefix's hint (bytes 40..56).
    let mut raw = b64decode(&t.challenge_id().to_string());
    let other = b64decode(&pumped.challenge_id().to_string());
    assert_eq!(raw.len(), 56);
    assert_ne!(raw[40..], other[40..], "the hints name the two prefixes");
    raw[40..].copy_from_slice(&other[40..]);
    let forged: ChallengeId = b64encode(&raw).parse().unwrap();
    // The hint is not bound into the code digest: the code still verifies...
    block_on(f.verifier.verify(t.purpose(), &forged, &code)).unwrap();
    // ...and the success counts for the UK, where the code went.
    assert_eq!(counts(&f.verifier, "+447700900009"), (1.0, 1.0));
    assert_eq!(counts(&f.verifier, "+882160000009"), (1.0, 0.0));
}

/// A store where the first commit that consumes a challenge finds it already
/// consumed by someone else: the hook deletes it, runs `meanwhile`, and
/// answers a conflict. Commits of other records (the credit sent in the same
/// round trip) go through. The flag tells whether it happened.
fn consumed_by_someone_else(
    raced: &Arc<AtomicBool>,
    meanwhile: impl Fn() + Send + Sync + 'static,
) -> HookedStore<impl Fn(&MemoryStore, &[Write]) -> Option<Commit> + Send + Sync> {
    let flag = raced.clone();
    hooked(move |inner: &MemoryStore, writes: &[Write]| {
        let consumes = writes
            .iter()
            .find(|w| matches!(w, Write::Delete { .. }) && w.key().kind() == KeyKind::Challenge)?;
        if flag.swap(true, Ordering::SeqCst) {
            return None;
        }
        let gone = Write::Delete {
            key: *consumes.key(),
            expected: consumes.expected().unwrap(),
        };
        let now = Timestamp::from_datetime(start());
        assert_eq!(
            block_on(inner.commit(&[gone], now)).unwrap(),
            Commit::Applied
        );
        meanwhile();
        Some(Commit::Conflict)
    })
}

#[test]
fn a_credit_whose_success_lost_its_race_is_taken_back() {
    // The first commit that consumes a challenge finds it already consumed by
    // someone else (the hook deletes it and answers a conflict); the credit
    // sent in the same round trip is applied all the same.
    let raced = Arc::new(AtomicBool::new(false));
    let store = consumed_by_someone_else(&raced, || {});
    let v = verifier_with(store, guarded());
    let t = block_on(v.issue(&request("u1", "+447700900001"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    assert!(matches!(
        block_on(v.verify(t.purpose(), t.challenge_id(), &code)),
        Err(VerifyError::UnknownChallenge)
    ));
    assert!(raced.load(Ordering::SeqCst));
    assert_eq!(
        counts(&v, "+447700900002"),
        (1.0, 0.0),
        "the lost success is not counted"
    );
}

#[test]
fn racing_right_answers_and_sends_count_each_success_once() {
    // A remote store (the credit sent with the outcome) and the in-process
    // one (the credit after the outcome).
    race_on(Wrapped::<Counting>::default());
    race_on(MemoryStore::new());
}

fn race_on<S: CodeStore>(store: S) {
    const CHALLENGES: usize = 24;
    const RACERS: usize = 4;
    const SENDERS: usize = 2;
    const SENDS_EACH: usize = 15;
    let v = Arc::new(verifier_with(store, guarded()));
    let mut issued = Vec::new();
    for i in 0..CHALLENGES {
        let t = block_on(v.issue(&request(&format!("u{i}"), &format!("+4477009{i:05}")))).unwrap();
        issued.push((*t.challenge_id(), v.delivery().last_code().unwrap()));
    }
    let successes = AtomicUsize::new(0);
    let barrier = Barrier::new(CHALLENGES * RACERS + SENDERS);
    std::thread::scope(|s| {
        for (id, code) in &issued {
            for _ in 0..RACERS {
                s.spawn(|| {
                    barrier.wait();
                    match block_on(v.verify(&Purpose::LoginNewDevice, id, code)) {
                        Ok(_) => {
                            successes.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(VerifyError::UnknownChallenge) => {}
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                });
            }
        }
        for sender in 0..SENDERS {
            let v = &v;
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for j in 0..SENDS_EACH {
                    // The same range as the challenges' numbers (+44 770).
                    let phone = format!("+447705{sender}{j:05}");
                    block_on(v.issue(&request(&format!("s{sender}-{j}"), &phone))).unwrap();
                }
            });
        }
    });
    assert_eq!(successes.load(Ordering::SeqCst), CHALLENGES);
    assert_eq!(
        counts(&v, "+447700999999"),
        (
            (CHALLENGES + SENDERS * SENDS_EACH) as f64,
            CHALLENGES as f64
        )
    );
}

#[test]
fn a_success_is_not_counted_twice_when_its_first_commit_conflicts() {
    // The consuming commit loses a race once (nothing written), its credit
    // goes through; the retry succeeds and must not credit again.
    let raced = Arc::new(AtomicBool::new(false));
    let flag = raced.clone();
    let store = hooked(move |_: &MemoryStore, writes: &[Write]| {
        let consumes = writes
            .iter()
            .any(|w| matches!(w, Write::Delete { .. }) && w.key().kind() == KeyKind::Challenge);
        (consumes && !flag.swap(true, Ordering::SeqCst)).then_some(Commit::Conflict)
    });
    let v = verifier_with(store, guarded());
    let t = block_on(v.issue(&request("u1", "+447700900001"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    block_on(v.verify(t.purpose(), t.challenge_id(), &code)).unwrap();
    assert!(raced.load(Ordering::SeqCst));
    assert_eq!(counts(&v, "+447700900002"), (1.0, 1.0));
}

#[test]
fn a_credit_taken_back_in_the_next_window_comes_off_the_window_it_was_counted_in() {
    let clock = ManualClock::new(start());
    let hook_clock = clock.clone();
    // Someone else consumed it, and the guard's hour ends meanwhile.
    let raced = Arc::new(AtomicBool::new(false));
    let store = consumed_by_someone_else(&raced, move || hook_clock.advance(Duration::hours(1)));
    let v = Verifier::builder()
        .store(store)
        .delivery(RecordingDelivery::new())
        .clock(clock)
        .policy(guarded())
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap();
    let t = block_on(v.issue(&request("u1", "+447700900001"))).unwrap();
    let code = v.delivery().last_code().unwrap();
    assert!(matches!(
        block_on(v.verify(t.purpose(), t.challenge_id(), &code)),
        Err(VerifyError::UnknownChallenge)
    ));
    // At the start of the next window the previous one weighs in full.
    assert_eq!(counts(&v, "+447700900002"), (1.0, 0.0));
}

#[test]
fn ids_tell_neither_the_prefix_nor_a_decoy() {
    let f = fixture_with(guarded());
    let mut hints = Vec::new();
    for (i, phone) in ["+447700900001", "+447700900002", "+14155550100"]
        .iter()
        .enumerate()
    {
        let t = block_on(f.verifier.issue(&request(&format!("u{i}"), phone))).unwrap();
        hints.push(b64decode(&t.challenge_id().to_string())[40..].to_vec());
    }
    let decoy = block_on(f.verifier.issue_decoy(&request("nobody", "+447700900003"))).unwrap();
    hints.push(b64decode(&decoy.challenge_id().to_string())[40..].to_vec());
    let email = IssueRequest::new(
        Purpose::StepUp,
        Subject::new("u9").unwrap(),
        Destination::email("ana@example.com").unwrap(),
    );
    let t = block_on(f.verifier.issue(&email)).unwrap();
    hints.push(b64decode(&t.challenge_id().to_string())[40..].to_vec());
    for (i, a) in hints.iter().enumerate() {
        assert_ne!(a, &vec![0u8; 16]);
        for b in &hints[i + 1..] {
            assert_ne!(a, b, "two ids share a hint");
        }
    }
}

#[test]
fn resends_and_repeated_issues_answer_the_same_id_text() {
    let f = fixture_with(guarded().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let req = request("u1", "+447700900001");
    let t = block_on(f.verifier.issue(&req)).unwrap();
    let again = block_on(f.verifier.resend(t.challenge_id())).unwrap();
    assert_eq!(
        again.challenge_id().to_string(),
        t.challenge_id().to_string()
    );
    let reissued = block_on(f.verifier.issue(&req)).unwrap();
    assert_eq!(
        reissued.challenge_id().to_string(),
        t.challenge_id().to_string()
    );
}

/// SMS is down (retryably); email is delivered.
#[derive(Default)]
struct SmsDown {
    codes: std::sync::Mutex<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("SMS gateway unavailable")]
struct GatewayDown;

impl vericode::Delivery for SmsDown {
    type Error = GatewayDown;
    fn deliver(
        &self,
        m: &vericode::Message<'_>,
    ) -> impl Future<Output = Result<vericode::Receipt, GatewayDown>> + Send {
        let r = if m.destination().channel() == &vericode::Channel::Sms {
            Err(GatewayDown)
        } else {
            self.codes
                .lock()
                .unwrap()
                .push(m.code().expose().to_owned());
            Ok(vericode::Receipt::default())
        };
        std::future::ready(r)
    }
    fn is_retryable(&self, _: &GatewayDown) -> bool {
        true
    }
}

#[test]
fn a_fallback_delivery_credits_the_fallback_prefix_in_the_same_round_trips() {
    let store = Arc::new(Wrapped::<Counting>::default());
    let v = Verifier::builder()
        .store(store.clone())
        .delivery(SmsDown::default())
        .clock(ManualClock::new(start()))
        .policy(guarded())
        .signing_key(KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap();
    let voice = Destination::voice("+447700900100").unwrap();
    let req = request("u1", "+14155550100").fallback(voice.clone());
    let t = block_on(v.issue(&req)).unwrap();
    let code = v.delivery().codes.lock().unwrap()[0].clone();
    let trips = store.calls(|| {
        block_on(v.verify(t.purpose(), t.challenge_id(), &code)).unwrap();
    });
    assert_eq!(trips, (1, 1));
    let seen = block_on(v.prefix_conversion(&voice)).unwrap().unwrap();
    assert_eq!((seen.sends, seen.verified), (1.0, 1.0));
    // The number SMS could not reach was charged, but never credited.
    assert_eq!(counts(&v, "+14155550199"), (1.0, 0.0));
}

#[test]
fn after_a_key_rotation_a_success_is_still_credited_once_in_the_same_round_trips() {
    // A store that counts as shared (remote): the verify unmasks the id's hint
    // to read the prefix's counts in its first round trip.
    let store = Arc::new(Wrapped::<Counting>::default());
    let clock = ManualClock::new(start());
    let build = |signing: u32, older: Option<u32>| {
        let mut b = Verifier::builder()
            .store(store.clone())
            .delivery(RecordingDelivery::new())
            .clock(clock.clone())
            .policy(guarded())
            .signing_key(KeyId::new(signing), key(signing as u8))
            .lookup_key(key(200))
            .app_name("Acme");
        if let Some(k) = older {
            b = b.verification_key(KeyId::new(k), key(k as u8));
        }
        b.build().unwrap()
    };
    let before = build(1, None);
    let t = block_on(before.issue(&request("u1", "+447700900001"))).unwrap();
    let code = before.delivery().last_code().unwrap();
    let after = build(2, Some(1));
    let trips = store.calls(|| {
        block_on(after.verify(t.purpose(), t.challenge_id(), &code)).unwrap();
    });
    // The hint is masked under the lookup key, which the rotation left alone:
    // still one read and one batch of commits (a stale hint takes four).
    assert_eq!(trips, (1, 1));
    // Counts live under the lookup key's group of the prefix, which a new
    // signing key leaves alone: the send and its success meet in one record.
    assert_eq!(counts(&after, "+447700900002"), (1.0, 1.0));
}

/// A success is credited to the range of the number whose code was typed,
/// not of the challenge's destination at the time: a code sent to the
/// requester's own phone (a fallback) and typed after the challenge was
/// moved back to a pumped number counts for the own phone's range. (A
/// review laundered twelve successes into a pumped range so.)
#[test]
fn a_success_is_credited_to_the_range_of_the_number_whose_code_was_typed() {
    let f = fixture_with(guarded().resend_cooldown(Duration::ZERO, Duration::ZERO));
    let (pumped, own) = ("+447700900123", "+14155550123");
    let t = block_on(
        f.verifier
            .issue(&request("s1", pumped).fallback(Destination::sms(own).unwrap())),
    )
    .unwrap();
    let own_d = Destination::sms(own).unwrap();
    let pumped_d = Destination::sms(pumped).unwrap();
    block_on(f.verifier.resend_via(t.challenge_id(), &own_d)).unwrap();
    let own_code = f.verifier.delivery().last_code().unwrap();
    block_on(f.verifier.resend_via(t.challenge_id(), &pumped_d)).unwrap();
    let ok = f.check(&t, &own_code).unwrap();
    assert_eq!(ok.destination(), &own_d, "the own phone got the code typed");
    assert_eq!(counts(&f.verifier, pumped), (2.0, 0.0));
    assert_eq!(counts(&f.verifier, own), (1.0, 1.0));
}
