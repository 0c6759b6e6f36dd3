//! Codes: their format ([`CodeFormat`], [`Alphabet`]), how they are drawn from
//! a CSPRNG without bias, how what a person typed is normalised, and the
//! plaintext [`Code`] handed to [`Delivery`](crate::Delivery).
//!
//! What lives elsewhere: hashing codes (the `keys` module) and deciding whether
//! a code is right (the verifier).

use std::fmt;

use zeroize::Zeroize;

use crate::error::{ConfigError, InputError};

/// The longest code vericode makes.
pub const MAX_CODE_LEN: usize = 12;
/// The shortest code vericode makes (NIST SP 800-63B-4 asks for at least 6 digits;
/// shorter codes need a policy override, see [`Policy`](crate::Policy)).
pub const MIN_CODE_LEN: usize = 4;
/// How many bytes of what a person typed are looked at; longer input is refused
/// unread.
pub const MAX_INPUT_LEN: usize = 64;

const DIGITS: &[u8] = b"0123456789";
/// Upper-case letters and digits without the look-alikes 0/O, 1/I/L.
const UNAMBIGUOUS: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// The characters a code is drawn from.
///
/// ```
/// use vericode::Alphabet;
/// assert_eq!(Alphabet::Digits.len(), 10);
/// assert_eq!(Alphabet::Unambiguous.len(), 31);
/// let hex = Alphabet::custom("0123456789abcdef")?; // letters are case-insensitive
/// assert_eq!(hex.len(), 16);
/// # Ok::<(), vericode::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Alphabet {
    /// The decimal digits `0-9` (the default).
    Digits,
    /// Upper-case letters and digits without look-alikes (no `0`/`O`, `1`/`I`/`L`):
    /// `23456789ABCDEFGHJKMNPQRSTUVWXYZ`.
    Unambiguous,
    /// An application's own set of characters; build it with [`Alphabet::custom`].
    Custom(CustomAlphabet),
}

/// A validated custom alphabet: 2 to 64 distinct printable ASCII characters,
/// letters upper-cased, no space and no `-` (those are separators people type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomAlphabet {
    chars: Box<[u8]>,
}

impl Alphabet {
    /// A custom alphabet from its characters.
    ///
    /// Letters are upper-cased (input is case-insensitive), so `"aA"` is refused
    /// as a duplicate. Refused: fewer than 2 or more than 64 characters,
    /// non-ASCII, control characters, space, `-`, duplicates, and the
    /// characters an SMS cannot carry as one GSM-7 character (`` ` `` would
    /// turn the whole text into UCS-2, `^ { } \ [ ] ~ |` count twice): a code
    /// with one would not fit the segment `build()` checked, and its issue
    /// would fail.
    ///
    /// ```
    /// use vericode::Alphabet;
    /// assert!(Alphabet::custom("0123456789#*").is_ok());
    /// assert!(Alphabet::custom("0123456789{}").is_err());
    /// ```
    pub fn custom(chars: &str) -> Result<Alphabet, ConfigError> {
        let mut out: Vec<u8> = Vec::with_capacity(chars.len());
        for c in chars.bytes() {
            if !c.is_ascii_graphic() || c == b'-' {
                return Err(ConfigError::Alphabet(
                    "only printable ASCII characters other than space and '-'",
                ));
            }
            if crate::message::gsm7::gsm7_septets(c as char) != Some(1) {
                return Err(ConfigError::Alphabet(
                    "only characters of SMS's basic GSM-7 set (not ` ^ { } \\ [ ] ~ |)",
                ));
            }
            let c = c.to_ascii_uppercase();
            if out.contains(&c) {
                return Err(ConfigError::Alphabet(
                    "characters must be distinct (letters are case-insensitive)",
                ));
            }
            out.push(c);
        }
        if !(2..=64).contains(&out.len()) {
            return Err(ConfigError::Alphabet("between 2 and 64 characters"));
        }
        Ok(Alphabet::Custom(CustomAlphabet {
            chars: out.into_boxed_slice(),
        }))
    }

    /// The characters, upper-case.
    pub fn chars(&self) -> &[u8] {
        match self {
            Alphabet::Digits => DIGITS,
            Alphabet::Unambiguous => UNAMBIGUOUS,
            Alphabet::Custom(c) => &c.chars,
        }
    }

    /// How many characters the alphabet has.
    pub fn len(&self) -> usize {
        self.chars().len()
    }

    /// Always `false`: an alphabet has at least two characters.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn contains(&self, c: u8) -> bool {
        match self {
            Alphabet::Digits => c.is_ascii_digit(),
            _ => self.chars().contains(&c),
        }
    }
}

/// The shape of codes: alphabet and length.
///
/// ```
/// use vericode::CodeFormat;
/// let six = CodeFormat::default();
/// assert_eq!(six.len(), 6);
/// assert_eq!(six.space(), 1_000_000.0);
/// let eight = CodeFormat::unambiguous(8)?;
/// assert!(eight.space() > 8.5e11);
/// assert!(CodeFormat::digits(3).is_err());
/// # Ok::<(), vericode::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeFormat {
    alphabet: Alphabet,
    len: usize,
}

impl Default for CodeFormat {
    /// Six decimal digits (NIST SP 800-63B-4 §3.1.3.2).
    fn default() -> Self {
        CodeFormat {
            alphabet: Alphabet::Digits,
            len: 6,
        }
    }
}

impl CodeFormat {
    /// `len` decimal digits, `len` in 4..=12.
    pub fn digits(len: usize) -> Result<Self, ConfigError> {
        Self::new(Alphabet::Digits, len)
    }

    /// `len` unambiguous upper-case alphanumerics, `len` in 4..=12.
    pub fn unambiguous(len: usize) -> Result<Self, ConfigError> {
        Self::new(Alphabet::Unambiguous, len)
    }

    /// Any alphabet, `len` in 4..=12.
    pub fn new(alphabet: Alphabet, len: usize) -> Result<Self, ConfigError> {
        if !(MIN_CODE_LEN..=MAX_CODE_LEN).contains(&len) {
            return Err(ConfigError::CodeLength(len));
        }
        Ok(CodeFormat { alphabet, len })
    }

    /// The number of characters in a code.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The alphabet.
    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }

    /// How many distinct codes there are (alphabet size to the power of length).
    pub fn space(&self) -> f64 {
        (self.alphabet.len() as f64).powi(self.len as i32)
    }

    /// Draws a code uniformly at random from `rng`, which must be a CSPRNG.
    pub(crate) fn generate<R: rand::CryptoRng + ?Sized>(&self, rng: &mut R) -> Code {
        let chars = self.alphabet.chars();
        let mut buf = [0u8; MAX_CODE_LEN];
        for slot in buf.iter_mut().take(self.len) {
            *slot = chars[uniform_index(rng, chars.len())];
        }
        Code {
            buf,
            len: self.len as u8,
        }
    }

    /// Normalises what a person typed: drops spaces and dashes (of any
    /// width), reads full-width forms and the digits of other scripts as the
    /// ASCII ones (see [`typed_as_ascii`]), upper-cases letters; refuses
    /// characters with no ASCII equivalent, characters outside the alphabet,
    /// a wrong length, and input longer than [`MAX_INPUT_LEN`] bytes
    /// (unread). What it has read is zeroed on every path.
    pub(crate) fn normalize(&self, input: &str) -> Result<Code, InputError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(InputError::CodeTooLong);
        }
        // Dropped on every early return: `Code` zeroes itself.
        let mut code = Code {
            buf: [0u8; MAX_CODE_LEN],
            len: 0,
        };
        // What is typed most: exactly the code's characters. Each is its own
        // ASCII form, kept as it is by `read_typed` (an alphabet holds printable
        // ASCII but space and `-`, letters as capitals), so that would give the
        // same code, one character at a time.
        if input.len() == self.len && input.bytes().all(|b| self.alphabet.contains(b)) {
            code.buf[..self.len].copy_from_slice(input.as_bytes());
            code.len = self.len as u8;
            return Ok(code);
        }
        self.read_typed(input, code)
    }

    /// [`normalize`](Self::normalize) character by character, into `code`
    /// (empty).
    fn read_typed(&self, input: &str, mut code: Code) -> Result<Code, InputError> {
        for c in input.chars() {
            let b = typed_as_ascii(c).ok_or(InputError::CodeNotAscii)?;
            if b == b' ' || b == b'-' || b == b'\t' || b == b'\r' || b == b'\n' {
                continue;
            }
            let b = b.to_ascii_uppercase();
            if !self.alphabet.contains(b) {
                return Err(InputError::CodeCharacter);
            }
            let at = usize::from(code.len);
            if at == self.len {
                return Err(InputError::CodeLength { expected: self.len });
            }
            code.buf[at] = b;
            code.len += 1;
        }
        if usize::from(code.len) != self.len {
            return Err(InputError::CodeLength { expected: self.len });
        }
        Ok(code)
    }
}

/// The ASCII character a typed one stands for, if any: ASCII itself;
/// full-width forms (U+FF01 to U+FF5E, from East Asian input methods; NFKC
/// maps them so too, as NIST SP 800-63B asks for typed secrets); the
/// ideographic, no-break and other spaces, and the hyphens, dashes and
/// minus signs a paste or a keyboard may give, as a space or `-` (both
/// dropped); and the digits of the Arabic-Indic, Persian, Devanagari,
/// Bengali, Thai and Myanmar scripts, which some phone keyboards type by
/// default. Anything else (emoji, format characters such as direction
/// marks, letters of other scripts) has none.
fn typed_as_ascii(c: char) -> Option<u8> {
    let from = |zero: char| u8::try_from(u32::from(c) - u32::from(zero)).ok();
    match c {
        '\0'..='\u{7F}' => u8::try_from(c).ok(),
        '\u{FF01}'..='\u{FF5E}' => from('\u{FF01}').map(|d| d + 0x21),
        '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => Some(b' '),
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' => Some(b'-'),
        '\u{0660}'..='\u{0669}' => from('\u{0660}').map(|d| b'0' + d),
        '\u{06F0}'..='\u{06F9}' => from('\u{06F0}').map(|d| b'0' + d),
        '\u{0966}'..='\u{096F}' => from('\u{0966}').map(|d| b'0' + d),
        '\u{09E6}'..='\u{09EF}' => from('\u{09E6}').map(|d| b'0' + d),
        '\u{0E50}'..='\u{0E59}' => from('\u{0E50}').map(|d| b'0' + d),
        '\u{1040}'..='\u{1049}' => from('\u{1040}').map(|d| b'0' + d),
        _ => None,
    }
}

/// An index uniform over `0..n` by rejection sampling: draws below the largest
/// multiple of `n` that fits in a `u32` are kept, the rest redrawn, so no index
/// is favoured (no modulo bias). `n` is at most 64, so a redraw happens with
/// probability below 2^-26.
pub(crate) fn uniform_index<R: rand::Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    debug_assert!((2..=64).contains(&n));
    let n = n as u64;
    // Accept draws below the largest multiple of n that is at most 2^32.
    let zone = (1u64 << 32) - ((1u64 << 32) % n);
    loop {
        let x = u64::from(rng.next_u32());
        if x < zone {
            return (x % n) as usize;
        }
    }
}

/// A one-time code in plain text: what a person reads in the message.
///
/// It exists only on its way to [`Delivery`](crate::Delivery): vericode stores
/// its keyed digest, never the code. `Debug` prints it redacted, and the
/// buffer is zeroed on drop.
///
/// ```
/// # use vericode::Code;
/// # fn show(code: &Code) {
/// assert_eq!(format!("{code:?}"), "Code(<redacted>)");
/// let text: &str = code.expose(); // only to put it in a message
/// # let _ = text; }
/// ```
#[derive(Clone)]
pub struct Code {
    buf: [u8; MAX_CODE_LEN],
    len: u8,
}

impl Code {
    /// The code's characters, to put in a message. Do not log them.
    pub fn expose(&self) -> &str {
        // Codes are built from ASCII alphabets only.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The shortcut for input that is exactly a code reads what reading
        /// character by character reads, for every alphabet and length.
        #[test]
        fn the_shortcut_reads_as_the_loop_does(
            picks in proptest::collection::vec(0usize..64, 0..14),
            which in 0usize..4,
            len in MIN_CODE_LEN..=MAX_CODE_LEN,
        ) {
            let alphabet = match which {
                0 => Alphabet::Digits,
                1 => Alphabet::Unambiguous,
                2 => Alphabet::custom("0123456789#*").unwrap(),
                _ => Alphabet::custom("abcxyz").unwrap(),
            };
            let f = CodeFormat::new(alphabet, len).unwrap();
            // Characters of the alphabet, their lower case, and others.
            let pool: Vec<char> = "0123456789ABCXYZabcxyz#*O1l -\u{FF11}\u{0663}\u{00A0}".chars().collect();
            let input: String = picks.iter().map(|&i| pool[i % pool.len()]).collect();
            let empty = || Code { buf: [0u8; MAX_CODE_LEN], len: 0 };
            let shown = |r: Result<Code, InputError>| r.map(|c| c.expose().to_owned());
            proptest::prop_assert_eq!(
                shown(f.normalize(&input)),
                shown(f.read_typed(&input, empty()))
            );
        }
    }

    #[test]
    fn normalization_accepts_people_typing() {
        let f = CodeFormat::default();
        assert_eq!(f.normalize(" 123 456 ").unwrap().expose(), "123456");
        assert_eq!(f.normalize("123-456").unwrap().expose(), "123456");
        let a = CodeFormat::unambiguous(6).unwrap();
        assert_eq!(a.normalize("abc-def").unwrap().expose(), "ABCDEF");
    }

    #[test]
    fn normalization_refuses_with_types() {
        let f = CodeFormat::default();
        assert_eq!(
            f.normalize("12345").unwrap_err(),
            InputError::CodeLength { expected: 6 }
        );
        assert_eq!(
            f.normalize("1234567").unwrap_err(),
            InputError::CodeLength { expected: 6 }
        );
        assert_eq!(
            f.normalize("12345a").unwrap_err(),
            InputError::CodeCharacter
        );
        // Digits of other scripts, full-width forms and wide spaces and
        // dashes read as what they stand for.
        for typed in [
            "١٢٣٤٥٦",
            "۱۲۳۴۵۶",
            "१२३४५६",
            "১২৩৪৫৬",
            "๑๒๓๔๕๖",
            "၁၂၃၄၅၆",
            "１２３４５６",
            "１２３\u{3000}４５６",
            "123\u{00A0}456",
            "123\u{2013}456",
            "123\u{FF0D}456",
        ] {
            assert_eq!(f.normalize(typed).unwrap().expose(), "123456", "{typed:?}");
        }
        let letters = CodeFormat::unambiguous(6).unwrap();
        assert_eq!(
            letters.normalize("ａｂｃ２３４").unwrap().expose(),
            "ABC234"
        );
        for foreign in [
            "12345😀",
            "\u{200F}123456",
            "12345\u{0663}\u{0301}",
            "12345Ａ",
        ] {
            assert!(f.normalize(foreign).is_err(), "{foreign:?}");
        }
        assert_eq!(
            f.normalize("12345😀").unwrap_err(),
            InputError::CodeNotAscii
        );
        assert_eq!(
            f.normalize(&"1".repeat(65)).unwrap_err(),
            InputError::CodeTooLong
        );
        assert_eq!(
            f.normalize("").unwrap_err(),
            InputError::CodeLength { expected: 6 }
        );
        assert_eq!(
            f.normalize("12\x0034").unwrap_err(),
            InputError::CodeCharacter
        );
        let a = CodeFormat::unambiguous(6).unwrap();
        assert_eq!(
            a.normalize("ABCDE0").unwrap_err(),
            InputError::CodeCharacter
        );
    }

    #[test]
    fn uniform_index_rejects_the_biased_tail() {
        // A generator that yields the very top of the u32 range first: with n = 10
        // those values lie in the biased tail and must be redrawn.
        struct Seq(Vec<u32>);
        impl rand::TryRng for Seq {
            type Error = std::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                Ok(self.0.remove(0))
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                unreachable!()
            }
            fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
                unreachable!()
            }
        }
        let mut rng = Seq(vec![u32::MAX, u32::MAX - 3, 4_294_967_289, 7]);
        // 4_294_967_290 = 429_496_729 * 10 is the size of the unbiased zone:
        // 4_294_967_289 is its last value and is accepted (…289 % 10 = 9).
        assert_eq!(uniform_index(&mut rng, 10), 9);
        let mut rng = Seq(vec![4_294_967_290, 7]);
        assert_eq!(uniform_index(&mut rng, 10), 7);
        // Powers of two need no rejection at all.
        let mut rng = Seq(vec![u32::MAX]);
        assert_eq!(uniform_index(&mut rng, 16), 15);
    }
}
