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
    // Most texts are ASCII: count them by byte, from a table.
    if text.is_ascii() {
        // Without a branch per byte: sum the septets, and note whether any
        // byte had none (0 in the table).
        let (mut septets, mut missing) = (0usize, 0u8);
        for &b in text.as_bytes() {
            let n = ASCII_SEPTETS[usize::from(b & 0x7f)];
            septets += usize::from(n);
            missing |= u8::from(n == 0);
        }
        return if missing == 0 {
            SmsLength {
                encoding: SmsEncoding::Gsm7,
                units: septets,
            }
        } else {
            SmsLength {
                encoding: SmsEncoding::Ucs2,
                units: text.len(),
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

/// [`gsm7_septets`] for every ASCII byte, 0 for none.
const ASCII_SEPTETS: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = match gsm7_septets(b as u8 as char) {
            Some(n) => n as u8,
            None => 0,
        };
        b += 1;
    }
    table
};

/// Septets for one character in GSM-7, `None` if it has no GSM-7 form.
const fn gsm7_septets(c: char) -> Option<usize> {
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
