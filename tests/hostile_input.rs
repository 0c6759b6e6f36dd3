//! Hostile input, table-driven: each input gets a typed error, never a panic,
//! and leaves the store as it was (no write, no attempt used).

mod common;

use common::*;
use vericode::{ChallengeId, CodeFormat, InputError, VerifyError};

/// A named input and the error it must get.
type Case = (&'static str, String, fn(&VerifyError) -> bool);

#[test]
fn hostile_codes_are_refused_typed_and_cost_nothing() {
    let megabyte = "1".repeat(1 << 20);
    let cases: Vec<Case> = vec![
        ("empty", String::new(), |e| {
            matches!(e, VerifyError::Malformed(InputError::CodeLength { .. }))
        }),
        ("1 MB", megabyte, |e| {
            matches!(e, VerifyError::Malformed(InputError::CodeTooLong))
        }),
        ("65 bytes", "1".repeat(65), |e| {
            matches!(e, VerifyError::Malformed(InputError::CodeTooLong))
        }),
        ("NUL bytes", "12\u{0}456".into(), |e| {
            matches!(e, VerifyError::Malformed(InputError::CodeCharacter))
        }),
        (
            "an Arabic letter among Arabic-Indic digits",
            "١٢٣٤٥ب".into(),
            |e| matches!(e, VerifyError::Malformed(InputError::CodeNotAscii)),
        ),
        (
            "a full-width letter in a digit code",
            "１２３４５Ａ".into(),
            |e| matches!(e, VerifyError::Malformed(InputError::CodeCharacter)),
        ),
        ("right-to-left mark", "\u{200f}123456".into(), |e| {
            matches!(e, VerifyError::Malformed(InputError::CodeNotAscii))
        }),
        ("letters in a digit code", "12345a".into(), |e| {
            matches!(e, VerifyError::Malformed(InputError::CodeCharacter))
        }),
        ("seven digits", "1234567".into(), |e| {
            matches!(
                e,
                VerifyError::Malformed(InputError::CodeLength { expected: 6 })
            )
        }),
        ("emoji", "12345😀".into(), |e| {
            matches!(e, VerifyError::Malformed(InputError::CodeNotAscii))
        }),
    ];
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    let writes = f.store.writes().len();
    for (name, input, expected) in &cases {
        let r = f.check(&t, input);
        match r {
            Err(ref e) if expected(e) => assert!(!e.counted(), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(f.store.writes().len(), writes, "{name} wrote to the store");
    }
    // Nothing was counted: the first wrong guess still leaves 4 of 5.
    let r = f.check(&t, &wrong(&code));
    assert!(
        matches!(r, Err(VerifyError::WrongCode { attempts_left: 4 })),
        "{r:?}"
    );
    // Surrounding spaces are forgiven.
    assert!(f.check(&t, &format!("  {code}\t\n")).is_ok());
}

#[test]
fn lower_case_alphanumerics_are_accepted_and_look_alikes_refused() {
    let f = fixture_with(relaxed().code_format(CodeFormat::unambiguous(6).unwrap()));
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let code = f.verifier.delivery().last_code().unwrap();
    for bad in ["O00000", "111111", "IIIIII", "LLLLLL"] {
        let r = f.check(&t, bad);
        assert!(
            matches!(r, Err(VerifyError::Malformed(InputError::CodeCharacter))),
            "{bad}: {r:?}"
        );
    }
    assert!(f.check(&t, &code.to_lowercase()).is_ok());
}

#[test]
fn malformed_and_foreign_challenge_ids() {
    for bad in [
        "",
        "short",
        // The right length (75), with padding, a NUL, or non-ASCII inside.
        &format!("{}=", "A".repeat(74)),
        &format!("{}\u{0}A", "A".repeat(73)),
        &format!("{}éA", "A".repeat(72)),
        // The old 54-character form, and one too many.
        &"A".repeat(54),
        &"A".repeat(76),
        &"é".repeat(37),
        &"A".repeat(1 << 20),
    ] {
        assert_eq!(
            bad.parse::<ChallengeId>(),
            Err(InputError::ChallengeId),
            "{bad:.20?}"
        );
    }
    // Another subject's challenge id: the code of one does not open the other,
    // and a wrong guess there is charged to that challenge, not this one.
    let f = fixture();
    let mine = block_on(f.verifier.issue(&login("alice"))).unwrap();
    let my_code = f.verifier.delivery().last_code().unwrap();
    let theirs = block_on(f.verifier.issue(&login("bob"))).unwrap();
    let their_code = f.verifier.delivery().last_code().unwrap();
    if my_code != their_code {
        let r = f.check(&theirs, &my_code);
        assert!(matches!(r, Err(VerifyError::WrongCode { .. })), "{r:?}");
    }
    let ok = f.check(&mine, &my_code).unwrap();
    assert_eq!(ok.subject().as_str(), "alice");
}

#[test]
fn details_refuse_invisible_characters_that_change_how_they_read() {
    // Found by an audit: details (often a payee's name, text someone else
    // wrote) took direction overrides, isolates, zero-width characters and
    // line separators, and the messages showed them as they were.
    for bad in [
        "pay 1.00 EUR to \u{202E}EMCA",
        "pay 1.00 EUR to \u{2066}ACME\u{2069}",
        "pay 1.00 EUR to AC\u{200B}ME",
        "pay 1.00 EUR to ACME\u{2028}\u{2028}(test)",
        "pay 1.00 EUR to \u{FEFF}ACME",
        "pay 1.00 EUR to \u{200F}ACME",
        "pay 1.00 EUR to ACME\u{E0041}",
        "pay 1.00 EUR to AC\u{00AD}ME",
        // A second audit: characters that render as nothing.
        "pay 1.00 EUR to AC\u{034F}ME",
        "pay 1.00 EUR to AC\u{115F}ME",
        "pay 1.00 EUR to AC\u{3164}ME",
        "pay 1.00 EUR to AC\u{FFA0}ME",
        "pay 1.00 EUR to AC\u{1D173}ME",
        "pay 1.00 EUR to AC\u{FE0F}ME",
        "pay 1.00 EUR to AC\u{E0100}ME",
        "pay 1.00 EUR to AC\u{17B4}ME",
        "pay 1.00 EUR to AC\u{180B}ME",
        // A review: the rest of Unicode's default-ignorable code points.
        "pay 1.00 EUR to AC\u{1BCA0}ME",
        "pay 1.00 EUR to AC\u{2065}ME",
        "pay 1.00 EUR to AC\u{FFF0}ME",
        "pay 1.00 EUR to AC\u{E0080}ME",
        "pay 1.00 EUR to AC\u{E01F0}ME",
    ] {
        assert!(vericode::Details::new(bad).is_err(), "{bad:?}");
    }
    for good in [
        "pay 1.00 EUR to Zoë Müller",
        "pagar 1,00 € a Peña",
        "支付 1.00 EUR 给 ACME",
        "pay 1.00 EUR to ACME 🚀",
    ] {
        assert!(vericode::Details::new(good).is_ok(), "{good:?}");
    }
}

#[test]
fn a_logged_ticket_does_not_carry_its_challenge_id() {
    // Found by an audit: `Debug` printed the whole id, which lets whoever
    // holds it guess at, resend or cancel the challenge; `Ticket` derives
    // `Debug`, so logging a ticket logged the handle.
    let f = fixture();
    let t = block_on(f.verifier.issue(&login("u1"))).unwrap();
    let text = t.challenge_id().to_string();
    let logged = format!("{t:?} {:?}", t.challenge_id());
    // The nonce's characters (bytes 24 to 40) are not there.
    assert!(!logged.contains(&text[32..54]), "{logged}");
    assert!(logged.contains(&text[..8]), "ids stay apart in logs");
    // Equality (constant-time now) still compares the challenge.
    let parsed: vericode::ChallengeId = text.parse().unwrap();
    assert_eq!(&parsed, t.challenge_id());
    let other = block_on(f.verifier.issue(&login("u2"))).unwrap();
    assert_ne!(other.challenge_id(), t.challenge_id());
}
