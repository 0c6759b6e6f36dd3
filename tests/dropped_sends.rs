//! Sends while the message is with the provider. Dropped there (a client
//! that went away, a timeout around a slow SMS gateway): a send claims its
//! slot before it delivers, and a dropped one cannot give it back, so it
//! counts as a send (the message may well have gone out), and it never takes
//! away what was there before (a replacement happens only when its code is
//! written). Overtaken there by another send: its code is stored only on the
//! challenge as the other send left it, if it still names the address.

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use common::*;
use time::Duration;
use vericode::{
    Delivery, Destination, IssueError, IssueRequest, ManualClock, MemoryStore, Message, Purpose,
    Receipt, RecordingDelivery, Subject, Verifier,
};

/// A delivery that keeps every message, and hangs (never answers) on the
/// next one once `hang` is set.
#[derive(Default)]
struct Gateway {
    kept: RecordingDelivery,
    hang: AtomicBool,
}

/// A delivery's answer: ready, or never.
struct Answer(Option<Result<Receipt, vericode::Never>>);

impl Future for Answer {
    type Output = Result<Receipt, vericode::Never>;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.take().map_or(Poll::Pending, Poll::Ready)
    }
}

impl Delivery for Gateway {
    type Error = vericode::Never;
    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, vericode::Never>> + Send {
        let answer = block_on(self.kept.deliver(message));
        Answer((!self.hang.swap(false, Ordering::SeqCst)).then_some(answer))
    }
}

impl Gateway {
    fn last_code(&self) -> String {
        self.kept.last_code().unwrap()
    }
}

fn verifier(clock: &ManualClock) -> Verifier<MemoryStore, Gateway, ManualClock> {
    Verifier::builder()
        .store(MemoryStore::new())
        .delivery(Gateway::default())
        .clock(clock.clone())
        .policy(relaxed())
        .signing_key(vericode::KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap()
}

/// Polls `send` until it waits on the provider, then drops it.
fn drop_in_delivery<F: Future>(send: F) {
    let mut send = Box::pin(send);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(
        send.as_mut().poll(&mut cx).is_pending(),
        "the send should wait on the provider"
    );
}

fn request(phone: &str) -> IssueRequest {
    IssueRequest::new(
        Purpose::LoginNewDevice,
        Subject::new("u1").unwrap(),
        Destination::sms(phone).unwrap(),
    )
}

/// Asking for a code to another number replaces the challenge only once the
/// new code is written: dropped before, it leaves the live code working.
/// (A review found the first version of the claim replacing the challenge
/// up front: the person's code died with a send that never finished.)
#[test]
fn a_dropped_replacement_leaves_the_live_code_working() {
    let clock = ManualClock::new(start());
    let v = verifier(&clock);
    let t = block_on(v.issue(&request("+14155550123"))).unwrap();
    let live = v.delivery().last_code();
    clock.advance(Duration::seconds(30));
    v.delivery().hang.store(true, Ordering::SeqCst);
    drop_in_delivery(v.issue(&request("+14155550199")));
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &live));
    assert!(r.is_ok(), "{r:?}");
}

/// A dropped resend counts as a send: its message may have gone out, so the
/// cooldown stands (fail closed), and the codes sent before keep working.
#[test]
fn a_dropped_resend_counts_as_a_send() {
    let clock = ManualClock::new(start());
    let v = verifier(&clock);
    let t = block_on(v.issue(&request("+14155550123"))).unwrap();
    let first = v.delivery().last_code();
    clock.advance(Duration::seconds(30));
    v.delivery().hang.store(true, Ordering::SeqCst);
    drop_in_delivery(v.resend(t.challenge_id()));
    let r = block_on(v.resend(t.challenge_id()));
    assert!(matches!(r, Err(IssueError::ResendTooSoon { .. })), "{r:?}");
    // The second cooldown (60 s) from the dropped resend, then a resend.
    clock.advance(Duration::seconds(60));
    block_on(v.resend(t.challenge_id())).unwrap();
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &first));
    assert!(r.is_ok(), "{r:?}");
}

/// A dropped first issue leaves a challenge with no code and a cooldown:
/// asking again waits for it, then starts a challenge whose code works.
#[test]
fn a_dropped_first_issue_holds_its_cooldown_then_is_replaced() {
    let clock = ManualClock::new(start());
    let v = verifier(&clock);
    v.delivery().hang.store(true, Ordering::SeqCst);
    drop_in_delivery(v.issue(&request("+14155550123")));
    let r = block_on(v.issue(&request("+14155550123")));
    assert!(matches!(r, Err(IssueError::ResendTooSoon { .. })), "{r:?}");
    clock.advance(Duration::seconds(30));
    let t = block_on(v.issue(&request("+14155550123"))).unwrap();
    let code = v.delivery().last_code();
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &code));
    assert!(r.is_ok(), "{r:?}");
}

/// SMS fails (retryably) while `sms_down`; email is held at the provider
/// while `mail_held`, then accepted.
#[derive(Default)]
struct Switchboard {
    kept: RecordingDelivery,
    sms_down: AtomicBool,
    mail_held: std::sync::Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the SMS gateway is down")]
struct SmsDown;

/// A delivery's answer, ready once `held` is clear.
struct Held {
    held: std::sync::Arc<AtomicBool>,
    answer: Option<Result<Receipt, SmsDown>>,
}

impl Future for Held {
    type Output = Result<Receipt, SmsDown>;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if self.held.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        self.answer.take().map_or(Poll::Pending, Poll::Ready)
    }
}

impl Delivery for Switchboard {
    type Error = SmsDown;
    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, SmsDown>> + Send {
        let sms = *message.destination().channel() == vericode::Channel::Sms;
        let answer = if sms && self.sms_down.load(Ordering::SeqCst) {
            Err(SmsDown)
        } else {
            block_on(self.kept.deliver(message)).map_err(|never| match never {})
        };
        let held = if sms {
            std::sync::Arc::new(AtomicBool::new(false))
        } else {
            self.mail_held.clone()
        };
        Held {
            held,
            answer: Some(answer),
        }
    }
    fn is_retryable(&self, _: &SmsDown) -> bool {
        true
    }
}

/// A send whose code went to a fallback while another send renamed the
/// challenge without that fallback does not bring it back: its code is not
/// stored. (A review found the late send renaming the challenge to the
/// dropped address, whose code then verified.)
#[test]
fn a_late_send_does_not_bring_back_a_fallback_another_send_dropped() {
    let clock = ManualClock::new(start());
    let v = Verifier::builder()
        .store(MemoryStore::new())
        .delivery(Switchboard::default())
        .clock(clock.clone())
        .policy(relaxed().resend_cooldown(Duration::ZERO, Duration::ZERO))
        .signing_key(vericode::KeyId::new(1), key(1))
        .lookup_key(key(200))
        .app_name("Acme")
        .build()
        .unwrap();
    let mail = Destination::email("ana@example.com").unwrap();
    let with_mail = request("+14155550123").fallback(mail.clone());
    let t = block_on(v.issue(&with_mail)).unwrap();
    // A: the SMS fails, the mail waits at the provider.
    v.delivery().sms_down.store(true, Ordering::SeqCst);
    v.delivery().mail_held.store(true, Ordering::SeqCst);
    let mut a = Box::pin(v.issue(&with_mail));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(a.as_mut().poll(&mut cx).is_pending());
    // B: the application no longer names the mail; its SMS goes out.
    v.delivery().sms_down.store(false, Ordering::SeqCst);
    block_on(v.issue(&request("+14155550123"))).unwrap();
    // A's mail is accepted; its write finds the challenge renamed.
    v.delivery().mail_held.store(false, Ordering::SeqCst);
    let Poll::Ready(late) = a.as_mut().poll(&mut cx) else {
        panic!("A should finish")
    };
    assert!(matches!(late, Err(IssueError::Store(_))), "{late:?}");
    let sent = v.delivery().kept.sent();
    let to_mail = sent.iter().rev().find(|m| m.destination == mail).unwrap();
    let r = block_on(v.verify(t.purpose(), t.challenge_id(), &to_mail.code));
    assert!(
        matches!(r, Err(vericode::VerifyError::WrongCode { .. })),
        "{r:?}"
    );
}

/// A delivery that takes `delay` on the verifier's clock: a slow provider,
/// or a fallback tried after the first one timed out.
struct Slow {
    clock: ManualClock,
    delay: Duration,
    kept: RecordingDelivery,
}

impl Delivery for Slow {
    type Error = vericode::Never;
    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, vericode::Never>> + Send {
        self.clock.advance(self.delay);
        self.kept.deliver(message)
    }
}

/// How far each commit's `now` was from the clock when it reached the
/// store: the most seen.
struct CommitTimes {
    clock: ManualClock,
    worst: std::sync::Mutex<Duration>,
}

impl Around for CommitTimes {
    fn write(
        &self,
        _: &MemoryStore,
        _: &[vericode::Write],
        now: vericode::Timestamp,
    ) -> WriteAnswer {
        use vericode::Clock;
        let gap = self.clock.now_timestamp().since(now).abs();
        let mut worst = self.worst.lock().unwrap();
        *worst = (*worst).max(gap);
        None
    }
}

/// A send's code is written at the time it is written, not at the time its
/// send began: a store that checks clocks (vericode-redis refuses a commit
/// more than a minute from Redis's time) would take a slow delivery for a
/// server clock that is off, and refuse the code of a message that had
/// gone out (a review found it).
#[test]
fn a_slow_delivery_writes_its_code_at_the_time_it_ends() {
    let clock = ManualClock::new(start());
    let store = Wrapped::new(CommitTimes {
        clock: clock.clone(),
        worst: std::sync::Mutex::new(Duration::ZERO),
    });
    let slow = Slow {
        clock: clock.clone(),
        delay: Duration::seconds(90),
        kept: RecordingDelivery::new(),
    };
    let v = verifier_sending(store, slow, relaxed(), &clock);
    let ticket = block_on(v.issue(&login("u1"))).unwrap();
    assert_eq!(*v.store().worst.lock().unwrap(), Duration::ZERO);
    let code = v.delivery().kept.last_code().unwrap();
    let ok = block_on(v.verify(ticket.purpose(), ticket.challenge_id(), &code));
    assert!(ok.is_ok(), "{ok:?}");
}
