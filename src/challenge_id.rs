//! [`ChallengeId`]: the opaque, unguessable handle a client holds between
//! "send me a code" and "here is the code".
//!
//! It carries where the challenge lives (the subject's group, a hash under the
//! lookup key that does not tell the subject, and the purpose), a random nonce
//! (secret enough: 128 bits, so ids cannot be guessed to cancel or probe
//! someone else's challenge) and a hint
//! of where the conversion guard counts the destination's number range, so that a
//! verification can read that count in its first round trip. It never carries
//! the code or anything derived from it.
//!
//! The hint is the range's group (a keyed hash of the range, or zeros)
//! masked with a keyed hash of the nonce: without the key it looks random and
//! differs between any two challenges, so it tells neither the range nor
//! whether two destinations share one (nor a decoy from a real challenge).
//! It is not trusted either: a verification credits the range only when the
//! unmasked hint equals what it computes from the stored destination. Code
//! digests and id equality cover the first 40 bytes (where and which
//! challenge), not the hint.

use std::fmt;
use std::str::FromStr;

use crate::error::InputError;

pub(crate) const SUBJECT_LEN: usize = 16;
pub(crate) const PURPOSE_LEN: usize = 8;
pub(crate) const NONCE_LEN: usize = 16;
const HINT_LEN: usize = 16;
/// The bytes that name the challenge: subject, purpose, nonce.
const CORE_LEN: usize = SUBJECT_LEN + PURPOSE_LEN + NONCE_LEN;
const RAW_LEN: usize = CORE_LEN + HINT_LEN;
/// Length of the text form: 56 bytes in unpadded base64url.
pub const CHALLENGE_ID_LEN: usize = crate::base64url::encoded_len(RAW_LEN);

/// Identifies one challenge; safe to hand to the client (it reveals nothing
/// about the code), compared in constant time where it matters.
///
/// Its text form is 75 characters of base64url. Two ids are equal when they
/// name the same challenge: the last 16 bytes (a hint for the conversion
/// guard, see the module docs) are left out of equality and hashing, since
/// two ids of one challenge may carry different hints (a re-issue to another
/// destination, the guard turned on or off, another lookup key).
///
/// ```
/// use vericode::ChallengeId;
/// // Subject group, purpose (sign-in: seven zero bytes and 1), nonce, hint.
/// let text = format!("{}B{}", "A".repeat(31), "A".repeat(43));
/// let id: ChallengeId = text.parse()?;
/// assert_eq!(id.to_string(), text);
/// assert_eq!(text.len(), vericode::CHALLENGE_ID_LEN);
/// assert!("not an id".parse::<ChallengeId>().is_err());
/// // No purpose has all-zero bytes.
/// assert!("A".repeat(75).parse::<ChallengeId>().is_err());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, Copy)]
pub struct ChallengeId([u8; RAW_LEN]);

impl PartialEq for ChallengeId {
    /// In constant time: an application comparing an id a client posted with
    /// one it keeps learns nothing of the nonce from the time taken.
    fn eq(&self, other: &Self) -> bool {
        let core = |id: &ChallengeId| -> [u8; CORE_LEN] {
            id.0[..CORE_LEN].try_into().unwrap_or([0; CORE_LEN])
        };
        crate::ct_eq::ct_eq(&core(self), &core(other)).into()
    }
}

impl Eq for ChallengeId {}

impl std::hash::Hash for ChallengeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl ChallengeId {
    pub(crate) fn new(
        subject: [u8; SUBJECT_LEN],
        purpose: [u8; PURPOSE_LEN],
        nonce: [u8; NONCE_LEN],
    ) -> Self {
        let mut raw = [0u8; RAW_LEN];
        raw[..SUBJECT_LEN].copy_from_slice(&subject);
        raw[SUBJECT_LEN..SUBJECT_LEN + PURPOSE_LEN].copy_from_slice(&purpose);
        raw[SUBJECT_LEN + PURPOSE_LEN..CORE_LEN].copy_from_slice(&nonce);
        ChallengeId(raw)
    }

    /// The same challenge with `hint` (masked: see the module docs).
    pub(crate) fn with_hint(mut self, hint: [u8; HINT_LEN]) -> Self {
        self.0[CORE_LEN..].copy_from_slice(&hint);
        self
    }

    /// The hint as carried (masked, untrusted: see the module docs).
    pub(crate) fn hint(&self) -> [u8; HINT_LEN] {
        self.0[CORE_LEN..].try_into().unwrap_or([0; HINT_LEN])
    }

    /// Parses the text form; anything else is [`InputError::ChallengeId`],
    /// as is an id whose purpose bytes no purpose has (so an id cannot be
    /// bent to reach a decoy's slot from a real one's and tell them apart).
    pub fn parse(text: &str) -> Result<ChallengeId, InputError> {
        let mut raw = [0u8; RAW_LEN];
        crate::base64url::decode(text, &mut raw).ok_or(InputError::ChallengeId)?;
        let id = ChallengeId(raw);
        if !crate::purpose::Purpose::is_key_shape(&id.purpose_bytes()) {
            return Err(InputError::ChallengeId);
        }
        Ok(id)
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
        self.0[SUBJECT_LEN + PURPOSE_LEN..CORE_LEN]
            .try_into()
            .unwrap_or([0; NONCE_LEN])
    }

    /// The bytes bound into code and context digests: subject, purpose and
    /// nonce (not the hint).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0[..CORE_LEN]
    }
}

impl fmt::Display for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::base64url::encode(&self.0))
    }
}

/// Shows the first 8 characters only (from the subject's group, a keyed
/// hash): enough to tell subjects apart in a log (every id of one subject
/// shows the same), not enough to use one. The whole
/// id lets whoever holds it guess at, resend or cancel the challenge, so a
/// logged `Ticket` or error must not carry it; [`Display`](fmt::Display) gives
/// the text form for the client.
impl fmt::Debug for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_string();
        write!(f, "ChallengeId({}…)", text.get(..8).unwrap_or_default())
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
        // A custom purpose's bytes: the high bit set, bit 6 clear.
        raw[SUBJECT_LEN] = 0x80 | (raw[SUBJECT_LEN] & 0x3f);
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
            &"A".repeat(74),
            &"A".repeat(76),
            &"A".repeat(54),
            &format!("{}=", "A".repeat(74)),
            &"é".repeat(37),
        ] {
            assert_eq!(ChallengeId::parse(bad), Err(InputError::ChallengeId));
        }
    }

    #[test]
    fn known_encoding() {
        let id = ChallengeId([0xff; RAW_LEN]);
        assert_eq!(id.to_string(), format!("{}8", "_".repeat(74)));
        // The last character's two spare bits must be zero.
        assert!(ChallengeId::parse(&"_".repeat(75)).is_err());
    }

    #[test]
    fn the_hint_is_outside_the_digested_bytes_and_equality() {
        use std::hash::BuildHasher;
        let id = ChallengeId::new([1; 16], [2; 8], [3; 16]);
        assert_eq!(id.hint(), [0; 16]);
        let hinted = id.with_hint([9; 16]);
        assert_eq!(hinted.hint(), [9; 16]);
        assert_eq!(hinted.as_bytes(), id.as_bytes());
        assert_eq!(hinted.as_bytes().len(), 40);
        assert_ne!(hinted.to_string(), id.to_string());
        assert_eq!(hinted, id, "the same challenge");
        let h = std::collections::hash_map::RandomState::new();
        assert_eq!(h.hash_one(hinted), h.hash_one(id));
        assert_ne!(ChallengeId::new([1; 16], [2; 8], [4; 16]), id);
        assert_eq!(hinted.nonce(), [3; 16]);
    }
}
