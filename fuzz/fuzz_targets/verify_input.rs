//! Whatever a person types, verify answers with a typed result, never a panic.
#![no_main]
use std::sync::OnceLock;

use vericode::{
    Destination, IssueRequest, KeyId, MemoryStore, Policy, Purpose, RecordingDelivery, SecretKey,
    Subject, Ticket, Verifier,
};

type V = Verifier<MemoryStore, RecordingDelivery, vericode::SystemClock>;

fn setup() -> &'static (V, Ticket) {
    static S: OnceLock<(V, Ticket)> = OnceLock::new();
    S.get_or_init(|| {
        let v = Verifier::builder()
            .store(MemoryStore::new())
            .delivery(RecordingDelivery::new())
            .policy(Policy::default().without_abuse_limits().max_attempts(20))
            .signing_key(KeyId::new(1), SecretKey::from_bytes(&[7; 32]).unwrap())
            .app_name("Fuzz")
            .build()
            .unwrap();
        let req = IssueRequest::new(
            Purpose::StepUp,
            Subject::new("fuzz").unwrap(),
            Destination::sms("+14155550123").unwrap(),
        );
        let t = pollster::block_on(v.issue(&req)).unwrap();
        (v, t)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (v, t) = setup();
    // Only malformed input is interesting here: well-formed guesses would use up
    // the challenge; they are covered by the model test.
    if let Err(vericode::VerifyError::Malformed(_)) =
        pollster::block_on(v.verify(t.challenge_id(), text))
    {}
});
