//! [`ChallengeId`]: the opaque, unguessable handle a client holds between
//! "send me a code" and "here is the code".
//!
//! It carries where the challenge lives (a hash of the subject and the
//! purpose, not secret) and a random nonce (secret enough: 128 bits, so ids
//! cannot be guessed to cancel or probe someone else's challenge). It never
//! carries the code or anything derived from it.

use std::fmt;
use std::str::FromStr;

use crate::error::InputError;

pub(crate) const SUBJECT_LEN: usize = 16;
pub(crate) const PURPOSE_LEN: usize = 8;
pub(crate) const NONCE_LEN: usize = 16;
const RAW_LEN: usize = SUBJECT_LEN + PURPOSE_LEN + NONCE_LEN;
/// Length of the text form: 40 bytes in unpadded base64url.
pub const CHALLENGE_ID_LEN: usize = 54;

/// Identifies one challenge; safe to hand to the client (it reveals nothing
/// about the code), compared in constant time where it matters.
///
/// Its text form is 54 characters of base64url.
///
/// ```
/// use vericode::ChallengeId;
/// let text = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// let id: ChallengeId = text.parse()?;
/// assert_eq!(id.to_string(), text);
/// assert!("not an id".parse::<ChallengeId>().is_err());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChallengeId([u8; RAW_LEN]);

impl ChallengeId {
    pub(crate) fn new(
        subject: [u8; SUBJECT_LEN],
        purpose: [u8; PURPOSE_LEN],
        nonce: [u8; NONCE_LEN],
    ) -> Self {
        let mut raw = [0u8; RAW_LEN];
        raw[..SUBJECT_LEN].copy_from_slice(&subject);
        raw[SUBJECT_LEN..SUBJECT_LEN + PURPOSE_LEN].copy_from_slice(&purpose);
        raw[SUBJECT_LEN + PURPOSE_LEN..].copy_from_slice(&nonce);
        ChallengeId(raw)
    }

    /// Parses the text form; anything else is [`InputError::ChallengeId`].
    pub fn parse(text: &str) -> Result<ChallengeId, InputError> {
        let b = text.as_bytes();
        if b.len() != CHALLENGE_ID_LEN {
            return Err(InputError::ChallengeId);
        }
        let mut raw = [0u8; RAW_LEN];
        for (chunk, out) in b.chunks(4).zip(raw.chunks_mut(3)) {
            let mut acc: u32 = 0;
            for &c in chunk {
                acc = (acc << 6) | u32::from(decode_char(c)?);
            }
            // A final chunk of 2 characters (54 = 13 * 4 + 2) carries one byte.
            let bits = 6 * chunk.len();
            let bytes = bits / 8;
            let spare = bits - bytes * 8;
            if acc & ((1 << spare) - 1) != 0 {
                return Err(InputError::ChallengeId); // non-canonical padding bits
            }
            let acc = acc >> spare;
            for (i, o) in out.iter_mut().take(bytes).enumerate() {
                *o = (acc >> (8 * (bytes - 1 - i))) as u8;
            }
        }
        Ok(ChallengeId(raw))
    }

    pub(crate) fn subject_bytes(&self) -> [u8; SUBJECT_LEN] {
        self.0[..SUBJECT_LEN].try_into().unwrap_or([0; SUBJECT_LEN])
    }

    pub(crate) fn purpose_bytes(&self) -> [u8; PURPOSE_LEN] {
        self.0[SUBJECT_LEN..SUBJECT_LEN + PURPOSE_LEN]
            .try_into()
            .unwrap_or([0; PURPOSE_LEN])
    }

    pub(crate) fn nonce(&self) -> [u8; NONCE_LEN] {
        self.0[SUBJECT_LEN + PURPOSE_LEN..]
            .try_into()
            .unwrap_or([0; NONCE_LEN])
    }

    /// The raw bytes, as bound into code digests.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn decode_char(c: u8) -> Result<u8, InputError> {
    Ok(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return Err(InputError::ChallengeId),
    })
}

impl fmt::Display for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; CHALLENGE_ID_LEN];
        let mut o = 0;
        for chunk in self.0.chunks(3) {
            let mut acc: u32 = 0;
            for &b in chunk {
                acc = (acc << 8) | u32::from(b);
            }
            let bits = 8 * chunk.len();
            let chars = bits.div_ceil(6);
            acc <<= chars * 6 - bits;
            for i in (0..chars).rev() {
                out[o] = ALPHABET[((acc >> (6 * i)) & 63) as usize];
                o += 1;
            }
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChallengeId({self})")
    }
}

impl FromStr for ChallengeId {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChallengeId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_rejects_non_canonical() {
        let mut raw = [0u8; RAW_LEN];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(200);
        }
        let id = ChallengeId(raw);
        let text = id.to_string();
        assert_eq!(text.len(), CHALLENGE_ID_LEN);
        assert_eq!(ChallengeId::parse(&text).unwrap(), id);
        // The last character carries 4 spare bits that must be zero.
        let mut bad = text.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'B' { b'C' } else { b'B' };
        let bad = String::from_utf8(bad).unwrap();
        assert!(ChallengeId::parse(&bad).is_err() || ChallengeId::parse(&bad).unwrap() != id);
        for bad in [
            "",
            "=",
            &"A".repeat(53),
            &"A".repeat(55),
            &format!("{}=", "A".repeat(53)),
            &"é".repeat(27),
        ] {
            assert_eq!(ChallengeId::parse(bad), Err(InputError::ChallengeId));
        }
    }

    #[test]
    fn known_encoding() {
        let id = ChallengeId([0xff; RAW_LEN]);
        assert_eq!(id.to_string(), format!("{}_w", "_".repeat(52)));
        assert!(ChallengeId::parse(&format!("{}_x", "_".repeat(52))).is_err());
    }
}
