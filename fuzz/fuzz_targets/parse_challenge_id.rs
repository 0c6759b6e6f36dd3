//! Challenge id parsing never panics and round-trips what it accepts.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<vericode::ChallengeId>() {
        assert_eq!(id.to_string(), text);
    }
});
