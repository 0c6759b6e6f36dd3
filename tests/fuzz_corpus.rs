//! Replays the committed fuzz corpus (fuzz/corpus/) through the same checks
//! as the cargo-fuzz targets in fuzz/fuzz_targets/, plus random inputs from
//! proptest, so the properties hold in every `cargo test` even where cargo-fuzz
//! (which needs nightly features) cannot run.

mod common;

use std::path::Path;

use common::*;
use proptest::prelude::*;
use vericode::{ChallengeId, Destination, Record, VerifyError};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus for {target}");
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn decode_record(data: &[u8]) {
    if let Ok(record) = Record::decode(data) {
        assert_eq!(record.encode(), data);
    }
}

fn parse_destination(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = Destination::sms(text) {
        assert_eq!(
            Destination::sms(d.address()).unwrap().address(),
            d.address()
        );
        let _ = (d.masked(), d.calling_code());
    }
    if let Ok(d) = Destination::email(text) {
        assert_eq!(
            Destination::email(d.address()).unwrap().address(),
            d.address()
        );
        let _ = d.masked();
    }
}

fn parse_challenge_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<ChallengeId>() {
        assert_eq!(id.to_string(), text);
    }
}

#[test]
fn the_record_corpus_holds_a_current_record_of_every_kind() {
    // Seeds of an old format stop at the format byte: the fuzzer would never
    // reach the decoders behind it (a review found the corpus at format 1).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_record");
    for kind in [
        "challenge",
        "subject",
        "rate",
        "conversion",
        "device",
        "epoch",
        "fingerprint",
    ] {
        let bytes = std::fs::read(dir.join(kind)).unwrap();
        let record = Record::decode(&bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(record.encode(), bytes, "{kind}");
    }
}

#[test]
fn replay_the_corpus() {
    corpus("decode_record")
        .iter()
        .for_each(|d| decode_record(d));
    corpus("parse_destination")
        .iter()
        .for_each(|d| parse_destination(d));
    corpus("parse_challenge_id")
        .iter()
        .for_each(|d| parse_challenge_id(d));
    let f = fixture_with(relaxed().max_attempts(20));
    let t = block_on(f.verifier.issue(&login("fuzz"))).unwrap();
    for data in corpus("verify_input") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        match f.check(&t, text) {
            Err(VerifyError::Malformed(_) | VerifyError::WrongCode { .. }) => {}
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        decode_record(&data);
        parse_destination(&data);
        parse_challenge_id(&data);
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,80}") {
        parse_destination(text.as_bytes());
        parse_challenge_id(text.as_bytes());
        let f = fixture();
        let t = block_on(f.verifier.issue(&login("fuzz"))).unwrap();
        let _ = f.check(&t, &text);
    }

    #[test]
    fn mutated_records_never_panic(
        which in 0usize..4,
        flips in prop::collection::vec((0usize..200, any::<u8>()), 1..6),
    ) {
        // Real records, mutated: a challenge bound and with a fallback (its
        // send's claim, without a code, then with its code), then after a
        // wrong guess the challenge and the subject's failure record.
        let f = fixture();
        let ctx = vericode::Context::new("ctx").unwrap();
        let req = login("fuzz")
            .bind(ctx.clone())
            .fallback(Destination::email("f@example.com").unwrap());
        let t = block_on(f.verifier.issue(&req)).unwrap();
        let code = f.verifier.delivery().last_code().unwrap();
        let r = block_on(f.verifier.verify_bound(t.purpose(), t.challenge_id(), &wrong(&code), &ctx));
        prop_assert!(r.is_err());
        let writes = f.store.writes();
        prop_assert_eq!(writes.len(), 4);
        let mut bytes = writes[which].clone();
        decode_record(&bytes);
        for (i, b) in flips {
            let n = bytes.len();
            bytes[i % n] ^= b;
        }
        decode_record(&bytes);
    }
}
