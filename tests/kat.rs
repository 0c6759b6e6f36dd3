//! Known answers: the exact bytes of the record format and of the digest
//! input. A change to either breaks every stored challenge, so it must be
//! deliberate (a new format version), never an accident.

mod common;

use common::*;
use time::Duration;
use vericode::{Record, RecordingDelivery};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn subject_record_bytes_are_pinned() {
    // Format 3, kind 2: failures 3, last failure at 5 ms, lock until 99 ms,
    // 2 forgiven since 7 ms.
    let bytes = concat!(
        "0302",
        "00000003",
        "0000000000000005",
        "01",
        "0000000000000063",
        "00000002",
        "0000000000000007"
    );
    let raw = unhex(bytes);
    let r = Record::decode(&raw).unwrap();
    assert_eq!(hex(&r.encode()), bytes);
    // The first format (no forgiveness) is not read as this one.
    let mut old = raw[..raw.len() - 12].to_vec();
    old[0] = 1;
    assert!(Record::decode(&old).is_err());
}

#[test]
fn a_challenge_keeps_its_attempts_then_the_failures_they_counted() {
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("user-42"))).unwrap();
    f.clock.advance(Duration::seconds(30));
    block_on(f.verifier.resend(t.challenge_id())).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    // One wrong guess, compared with both live codes: one attempt, two
    // failures counted.
    assert!(f.check(&t, &wrong(&code)).is_err());
    let written = f.store.writes();
    let challenge = written
        .iter()
        .rev()
        .find(|b| b[..2] == [3, 1])
        .expect("a challenge was written");
    // After the nonce and three times: sends, attempts, failures counted.
    assert_eq!(&challenge[42..45], &[2, 1, 2]);
}

#[test]
fn lookup_key_fingerprint_record_bytes_are_pinned() {
    // Kind 7: the 16-byte fingerprint, then when it was renewed (i64 ms).
    let bytes = format!("0307{}{}", "ab".repeat(16), "0000000000000063");
    let raw = unhex(&bytes);
    let r = Record::decode(&raw).unwrap();
    assert_eq!(hex(&r.encode()), bytes);
    assert!(Record::decode(&raw[..25]).is_err(), "short");
    let mut long = raw.clone();
    long.push(0);
    assert!(Record::decode(&long).is_err(), "trailing");
}

#[test]
fn challenge_record_layout_is_pinned() {
    let f = fixture();
    let _ = block_on(f.verifier.issue(&login("user-42"))).unwrap();
    let written = f.store.writes();
    // The last write: the send's claim came first, without the code.
    let bytes = written.last().unwrap();
    // format 3, kind challenge, 16-byte nonce, three i64 times.
    assert_eq!(&bytes[..2], &[3, 1]);
    let created = i64::from_be_bytes(bytes[18..26].try_into().unwrap());
    let expires = i64::from_be_bytes(bytes[26..34].try_into().unwrap());
    let next = i64::from_be_bytes(bytes[34..42].try_into().unwrap());
    let t0 = vericode::Timestamp::from_datetime(start()).as_millis();
    assert_eq!(created, t0);
    assert_eq!(
        expires,
        t0 + Duration::minutes(10).whole_milliseconds() as i64
    );
    assert_eq!(next, t0 + 30_000);
    // sends 1, attempts 0, failures counted 0, then the purpose, subject,
    // channel, address as str8.
    assert_eq!(&bytes[42..45], &[1, 0, 0]);
    let rest = &bytes[45..];
    let mut expect = Vec::new();
    for s in ["login_new_device", "user-42", "sms", "+14155550123"] {
        expect.push(s.len() as u8);
        expect.extend_from_slice(s.as_bytes());
    }
    assert_eq!(&rest[..expect.len()], &expect[..]);
    // No context; one code: key id 1, a 32-byte digest, sent to the
    // destination (via 0); no alternates; locale "en"; no details.
    let tail = &rest[expect.len()..];
    assert_eq!(tail[0], 0);
    assert_eq!(tail[1], 1);
    assert_eq!(&tail[2..6], &1u32.to_be_bytes());
    assert_eq!(&tail[6 + 32..], &[0, 0, 2, b'e', b'n', 0]);
}

/// The code digest recomputed independently from the documented layout
/// (README, "Security model"):
/// `0x81 ‖ id[0..40] ‖ len(code) ‖ code` without details,
/// `0x82 ‖ id[0..40] ‖ details digest ‖ len(code) ‖ code` with them, then
/// `len(name) ‖ name` for a custom purpose. The id's last 16 bytes (the
/// conversion hint) are not digested.
fn documented_code_digest(
    id: &vericode::ChallengeId,
    details_digest: Option<&[u8]>,
    code: &[u8],
    custom_name: Option<&str>,
) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let id = b64decode(&id.to_string());
    assert_eq!(id.len(), 56);
    let mut msg = vec![if details_digest.is_some() { 0x82 } else { 0x81 }];
    msg.extend_from_slice(&id[..40]);
    msg.extend_from_slice(details_digest.unwrap_or_default());
    msg.push(code.len() as u8);
    msg.extend_from_slice(code);
    if let Some(name) = custom_name {
        msg.push(name.len() as u8);
        msg.extend_from_slice(name.as_bytes());
    }
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&[1u8; 32]).unwrap();
    mac.update(&msg);
    mac.finalize().into_bytes().into()
}

#[test]
fn code_digest_is_hmac_sha256_over_the_documented_fields() {
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("user-42"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let bytes = f.store.writes().last().unwrap().clone();
    // The digest, then via, no alternates, locale "en" and no details.
    let stored = &bytes[bytes.len() - 38..bytes.len() - 6];
    let expect = documented_code_digest(t.challenge_id(), None, code.as_bytes(), None);
    assert_eq!(&expect[..], stored);
    let _ = RecordingDelivery::new();
}

#[test]
fn bound_and_custom_purpose_digests_follow_the_documented_layout() {
    use hmac::{KeyInit, Mac};
    use vericode::{Destination, Details, IssueRequest, Purpose, Subject};
    let f = fixture();
    // Details: their digest is HMAC(lp("vericode/v1/context") ‖ lp(id[0..40]) ‖ lp(text)).
    let text = "pay 42.00 EUR to ACME";
    let req = IssueRequest::new(
        Purpose::StepUp,
        Subject::new("user-42").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    )
    .details(Details::new(text).unwrap());
    let t = block_on(f.verifier.issue(&req)).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let id = b64decode(&t.challenge_id().to_string());
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&[1u8; 32]).unwrap();
    for part in [&b"vericode/v1/context"[..], &id[..40], text.as_bytes()] {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    let details_digest: [u8; 32] = mac.finalize().into_bytes().into();
    let expect = documented_code_digest(
        t.challenge_id(),
        Some(&details_digest),
        code.as_bytes(),
        None,
    );
    let record = f.store.writes().last().unwrap().clone();
    assert!(record.windows(32).any(|w| w == details_digest));
    assert!(record.windows(32).any(|w| w == expect));

    // A custom purpose's name follows the code.
    let name = "export.report";
    let req = IssueRequest::new(
        Purpose::custom(name).unwrap(),
        Subject::new("user-42").unwrap(),
        Destination::sms("+14155550123").unwrap(),
    );
    let t = block_on(f.verifier.issue(&req)).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let expect = documented_code_digest(t.challenge_id(), None, code.as_bytes(), Some(name));
    let without_name = documented_code_digest(t.challenge_id(), None, code.as_bytes(), None);
    let record = f.store.writes().last().unwrap().clone();
    assert!(record.windows(32).any(|w| w == expect));
    assert!(!record.windows(32).any(|w| w == without_name));
}
