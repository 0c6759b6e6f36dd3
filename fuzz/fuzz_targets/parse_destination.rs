//! Phone and email parsing never panic, and what they accept is normalised
//! (parsing it again gives the same address).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = vericode::Destination::sms(text) {
        assert_eq!(
            vericode::Destination::sms(d.address()).unwrap().address(),
            d.address()
        );
        let _ = d.masked();
        let _ = d.calling_code();
    }
    if let Ok(d) = vericode::Destination::email(text) {
        assert_eq!(
            vericode::Destination::email(d.address()).unwrap().address(),
            d.address()
        );
        let _ = d.masked();
    }
});
