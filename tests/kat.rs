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

#[test]
fn subject_record_bytes_are_pinned() {
    // failures 3, last failure at 5 ms, lock until 99 ms.
    let bytes = "0102000000030000000000000005010000000000000063";
    let raw: Vec<u8> = (0..bytes.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&bytes[i..i + 2], 16).unwrap())
        .collect();
    let r = Record::decode(&raw).unwrap();
    assert_eq!(hex(&r.encode()), bytes);
}

#[test]
fn challenge_record_layout_is_pinned() {
    let f = fixture();
    let _ = block_on(f.verifier.issue(&login("user-42"))).unwrap();
    let written = f.store.writes();
    let bytes = &written[0];
    // format 1, kind challenge, 16-byte nonce, three i64 times.
    assert_eq!(&bytes[..2], &[1, 1]);
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
    // sends 1, attempts 0, then the purpose, subject, channel, address as str8.
    assert_eq!(&bytes[42..44], &[1, 0]);
    let rest = &bytes[44..];
    let mut expect = Vec::new();
    for s in ["login_new_device", "user-42", "sms", "+14155550123"] {
        expect.push(s.len() as u8);
        expect.extend_from_slice(s.as_bytes());
    }
    assert_eq!(&rest[..expect.len()], &expect[..]);
    // No context; one code: key id 1 and a 32-byte digest; no alternates;
    // locale "en"; no details.
    let tail = &rest[expect.len()..];
    assert_eq!(tail[0], 0);
    assert_eq!(tail[1], 1);
    assert_eq!(&tail[2..6], &1u32.to_be_bytes());
    assert_eq!(&tail[6 + 32..], &[0, 2, b'e', b'n', 0]);
}

#[test]
fn code_digest_is_hmac_sha256_over_the_documented_fields() {
    // Recompute the stored digest independently from the documented layout:
    // HMAC-SHA256(key, lp("vericode/v1/code") lp(purpose) lp(challenge id bytes 0..40)
    //                  lp(context digest or empty) lp(code)), lp = u32 BE length + bytes.
    // The id's last 16 bytes (the conversion hint) are not digested.
    use hmac::{KeyInit, Mac};
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("user-42"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let bytes = f.store.writes()[0].clone();
    let stored = &bytes[bytes.len() - 37..bytes.len() - 5];
    let id = b64decode(&t.challenge_id().to_string());
    assert_eq!(id.len(), 56);
    let id = &id[..40];
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&[1u8; 32]).unwrap();
    for part in [
        &b"vericode/v1/code"[..],
        b"login_new_device",
        id,
        b"",
        code.as_bytes(),
    ] {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    assert_eq!(&mac.finalize().into_bytes()[..], stored);
    let _ = RecordingDelivery::new();
}
