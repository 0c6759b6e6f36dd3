//! Record decoding is total: any bytes give a record or an error, and a
//! decoded record encodes back to the same bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(record) = vericode::Record::decode(data) {
        assert_eq!(record.encode(), data);
    }
});
