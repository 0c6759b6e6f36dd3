//! SMS length: how many units a text takes in one segment, by the GSM 03.38
//! (3GPP TS 23.038) rules.
//!
//! A text made only of characters of the GSM 7-bit default alphabet is sent
//! in GSM-7: one segment holds 160 septets, each basic character takes one
//! and each character of the extension table (`^ { } \ [ ~ ] |`, `€` and form
//! feed) takes two (an escape, then the character). Any other character makes
//! the whole message UCS-2, where one segment holds 70 UTF-16 code units (a
//! character outside the Basic Multilingual Plane, such as most emoji, takes
//! two). Either way a segment is 140 bytes, the limit of Android's SMS
//! Retriever.

use std::fmt;

/// The largest GSM-7 text in one segment, in septets.
pub(crate) const GSM7_LIMIT: usize = 160;
/// The largest UCS-2 text in one segment, in UTF-16 code units.
pub(crate) const UCS2_LIMIT: usize = 70;

/// How an SMS text is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SmsEncoding {
    /// The GSM 7-bit default alphabet and its extension table: 160 septets a
    /// segment.
    Gsm7,
    /// UCS-2 (UTF-16 code units): 70 a segment.
    Ucs2,
}

impl SmsEncoding {
    /// The most units one segment holds: 160 for GSM-7, 70 for UCS-2.
    pub fn segment_limit(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => GSM7_LIMIT,
            SmsEncoding::Ucs2 => UCS2_LIMIT,
        }
    }
}

impl fmt::Display for SmsEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmsEncoding::Gsm7 => "GSM-7",
            SmsEncoding::Ucs2 => "UCS-2",
        })
    }
}

/// The length of an SMS text: its encoding and how many units it takes.
///
/// ```
/// use vericode::{SmsEncoding, sms_length};
/// let plain = sms_length("123456 is your Acme code.");
/// assert_eq!((plain.encoding(), plain.units()), (SmsEncoding::Gsm7, 25));
/// assert_eq!(sms_length("{€}").units(), 6); // extension characters count twice
/// let accented = sms_length("Código: 123456"); // 'ó' is not in GSM-7
/// assert_eq!((accented.encoding(), accented.units(), accented.limit()), (SmsEncoding::Ucs2, 14, 70));
/// assert!(accented.fits_one_segment());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsLength {
    encoding: SmsEncoding,
    units: usize,
}

impl SmsLength {
    /// The encoding the text needs.
    pub fn encoding(&self) -> SmsEncoding {
        self.encoding
    }

    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub fn units(&self) -> usize {
        self.units
    }

    /// The most units one segment holds in this encoding.
    pub fn limit(&self) -> usize {
        self.encoding.segment_limit()
    }

    /// `true` if the text fits one segment (and so 140 bytes).
    pub fn fits_one_segment(&self) -> bool {
        self.units <= self.limit()
    }
}

/// The length of `text` as an SMS: GSM-7 septets if every character is in the
/// GSM 03.38 default alphabet or its extension table, else UTF-16 code units.
pub fn sms_length(text: &str) -> SmsLength {
    // Most texts are ASCII: count them by byte, in a form the compiler turns
    // into vector instructions (a table lookup per byte took about three
    // times as long).
    if text.is_ascii() {
        let (extended, missing) = ascii_classes(text.as_bytes());
        return if missing {
            SmsLength {
                encoding: SmsEncoding::Ucs2,
                units: text.len(),
            }
        } else {
            SmsLength {
                encoding: SmsEncoding::Gsm7,
                units: text.len() + extended,
            }
        };
    }
    let mut septets = 0usize;
    for c in text.chars() {
        match gsm7_septets(c) {
            Some(n) => septets += n,
            None => {
                return SmsLength {
                    encoding: SmsEncoding::Ucs2,
                    units: text.encode_utf16().count(),
                };
            }
        }
    }
    SmsLength {
        encoding: SmsEncoding::Gsm7,
        units: septets,
    }
}

/// For ASCII `bytes`: how many are in the extension table (two septets
/// each), and whether any has no GSM-7 form. Without a branch or a lookup per
/// byte, counted per run of 255 bytes in one-byte counters, so it compiles to
/// vector instructions.
fn ascii_classes(bytes: &[u8]) -> (usize, bool) {
    // `[ \ ] ^` are 0x5B-0x5E and `{ | } ~` 0x7B-0x7E: setting bit 5 maps
    // both runs (and nothing else) onto 0x7B-0x7E. Form feed is the other.
    let extended = |b: u8| (b | 0x20).wrapping_sub(0x7B) < 4 || b == 0x0C;
    // Control characters but line feed, carriage return and form feed; the
    // grave accent; delete.
    let missing =
        |b: u8| (b < 0x20 && b != b'\n' && b != b'\r' && b != 0x0C) || b == b'`' || b == 0x7F;
    let (mut total, mut any_missing) = (0usize, 0u8);
    for run in bytes.chunks(255) {
        let (mut n, mut m) = (0u8, 0u8);
        for &b in run {
            n += u8::from(extended(b));
            m |= u8::from(missing(b));
        }
        total += usize::from(n);
        any_missing |= m;
    }
    (total, any_missing != 0)
}

/// Septets for one character in GSM-7, `None` if it has no GSM-7 form.
pub(crate) const fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        // The extension table: an escape septet, then the character.
        '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' | '\u{0C}' => Some(2),
        // The one printable ASCII character the default alphabet lacks.
        '`' => None,
        '\n' | '\r' | ' '..='~' => Some(1),
        // The rest of the default alphabet (0x00-0x7F of GSM 03.38).
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' | 'Δ' | 'Φ' | 'Γ'
        | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä'
        | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_fast_path_agrees_with_the_general_one() {
        // 'é' is GSM-7 but not ASCII: it sends the text down the general path.
        for b in 0u8..128 {
            let c = b as char;
            let ascii = sms_length(&format!("{c}{c}"));
            let general = sms_length(&format!("é{c}{c}"));
            match gsm7_septets(c) {
                Some(n) => {
                    assert_eq!(ascii.encoding(), SmsEncoding::Gsm7, "{b}");
                    assert_eq!(ascii.units(), 2 * n, "{b}");
                    assert_eq!(general.units(), 2 * n + 1, "{b}");
                }
                None => {
                    assert_eq!(ascii.encoding(), SmsEncoding::Ucs2, "{b}");
                    assert_eq!(ascii.units(), 2, "{b}");
                    assert_eq!(general.encoding(), SmsEncoding::Ucs2, "{b}");
                    assert_eq!(general.units(), 3, "{b}");
                }
            }
        }
    }

    #[test]
    fn long_ascii_texts_agree_with_the_general_path() {
        // Texts up to 700 bytes, drawn mostly from the one-septet characters
        // with extension characters and, now and then, one without a GSM-7
        // form, against a count by `gsm7_septets`.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..2_000 {
            let n = next(700) as usize;
            let text: String = (0..n)
                .map(|_| match next(100) {
                    0 if next(20) == 0 => (next(128) as u8) as char,
                    0..=9 => ['^', '{', '}', '\\', '[', '~', ']', '|', '\u{0C}'][next(9) as usize],
                    // Printable ASCII but the grave accent (no GSM-7 form).
                    _ => match (b' ' + next(95) as u8) as char {
                        '`' => 'a',
                        c => c,
                    },
                })
                .collect();
            let expected = text
                .chars()
                .map(gsm7_septets)
                .sum::<Option<usize>>()
                .map_or((SmsEncoding::Ucs2, text.len()), |n| (SmsEncoding::Gsm7, n));
            let got = sms_length(&text);
            assert_eq!((got.encoding(), got.units()), expected, "{text:?}");
        }
    }

    #[test]
    fn runs_of_extension_characters_longer_than_a_counter_holds() {
        // Extension characters are counted in one-byte counters, per run of
        // 255 bytes: texts of them alone, around and far past that size.
        for c in ['{', '^', '\u{0C}'] {
            for n in [254, 255, 256, 510, 511, 766, 70_000] {
                let text = c.to_string().repeat(n);
                assert_eq!(len(&text).0, SmsEncoding::Gsm7);
                assert_eq!(len(&text).1, 2 * n, "{c:?} x {n}");
                let mut refused = text.clone();
                refused.push('`');
                assert_eq!(len(&refused).0, SmsEncoding::Ucs2, "{c:?} x {n}");
                assert_eq!(len(&refused).1, n + 1, "{c:?} x {n}");
            }
        }
    }

    fn len(s: &str) -> (SmsEncoding, usize, bool) {
        let l = sms_length(s);
        (l.encoding(), l.units(), l.fits_one_segment())
    }

    #[test]
    fn gsm7_limit_is_160_septets() {
        assert_eq!(len(&"a".repeat(160)), (SmsEncoding::Gsm7, 160, true));
        assert_eq!(len(&"a".repeat(161)), (SmsEncoding::Gsm7, 161, false));
        assert_eq!(len(""), (SmsEncoding::Gsm7, 0, true));
    }

    #[test]
    fn extension_characters_count_twice() {
        for c in ['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\u{0C}'] {
            assert_eq!(len(&c.to_string()), (SmsEncoding::Gsm7, 2, true), "{c:?}");
        }
        // 158 + one extension character = 160: still one segment; 159 + 1 = 161 is not.
        assert_eq!(
            len(&format!("{}€", "a".repeat(158))),
            (SmsEncoding::Gsm7, 160, true)
        );
        assert_eq!(
            len(&format!("{}€", "a".repeat(159))),
            (SmsEncoding::Gsm7, 161, false)
        );
        assert_eq!(len(&"{}".repeat(40)), (SmsEncoding::Gsm7, 160, true));
        assert_eq!(
            len(&format!("{}a", "{}".repeat(40))),
            (SmsEncoding::Gsm7, 161, false)
        );
    }

    #[test]
    fn the_whole_default_alphabet_is_one_septet() {
        let basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
        assert_eq!(basic.chars().count(), 127); // 128 code points minus the escape
        assert_eq!(len(basic), (SmsEncoding::Gsm7, 127, true));
    }

    #[test]
    fn any_other_character_makes_the_text_ucs2() {
        for c in ['`', 'ó', 'á', 'ç', 'ã', 'ê', 'À', '\t', '\u{a0}', '„', '’'] {
            let s = format!("{}{c}", "a".repeat(69));
            assert_eq!(len(&s), (SmsEncoding::Ucs2, 70, true), "{c:?}");
            let s = format!("{}{c}", "a".repeat(70));
            assert_eq!(len(&s), (SmsEncoding::Ucs2, 71, false), "{c:?}");
        }
        // Extension characters are plain UTF-16 units once the text is UCS-2.
        assert_eq!(
            len(&format!("ó{}", "€".repeat(69))),
            (SmsEncoding::Ucs2, 70, true)
        );
        // A character outside the BMP takes two UTF-16 units.
        assert_eq!(
            len(&format!("{}😀", "a".repeat(68))),
            (SmsEncoding::Ucs2, 70, true)
        );
        assert_eq!(
            len(&format!("{}😀", "a".repeat(69))),
            (SmsEncoding::Ucs2, 71, false)
        );
    }
}
