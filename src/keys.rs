//! Keys and digests: the [`KeyId`]/[`SecretKey`] pairs an application supplies,
//! the precomputed HMAC-SHA256 states built from them, and the
//! domain-separated messages that are hashed (length-prefixed fields, but for
//! the code digest's fixed layout: see `verifier::code_tag`).
//!
//! Nothing here decides policy; the verifier asks for tags and compares them
//! with [`subtle`].

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::ConfigError;
use crate::limits::Limit;
use crate::subject::Subject;

/// The shortest secret accepted: 32 bytes, the output size of SHA-256.
pub const MIN_SECRET_LEN: usize = 32;

/// Identifies a key in the key set; stored beside each digest so that a
/// record made under an older key still verifies after rotation.
///
/// ```
/// use vericode::KeyId;
/// assert_eq!(KeyId::new(7).get(), 7);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);

impl KeyId {
    /// A key id. Any number; choose a new one for every new secret.
    pub const fn new(id: u32) -> Self {
        KeyId(id)
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// A secret for keyed digests: at least 32 random bytes, zeroed on drop,
/// redacted in `Debug`.
///
/// Load it from your secret manager; never derive it from a password.
///
/// ```
/// use vericode::SecretKey;
/// let key = SecretKey::from_bytes(&[7u8; 32])?;
/// assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
/// assert!(SecretKey::from_bytes(b"too short").is_err());
/// # Ok::<(), vericode::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

impl SecretKey {
    /// A secret from its bytes; fewer than 32 bytes is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(ConfigError::SecretTooShort(bytes.len()));
        }
        Ok(SecretKey(Zeroizing::new(bytes.to_vec())))
    }

    /// A secret from hexadecimal text (upper or lower case, surrounding
    /// whitespace ignored), as secret managers and environment variables hold
    /// it: `openssl rand -hex 32` makes one. Fewer than 32 bytes is refused,
    /// and so is text that is not an even number of hex digits (the error
    /// does not show the text).
    ///
    /// ```
    /// use vericode::{ConfigError, SecretKey};
    /// let hex = "8f".repeat(32);
    /// assert!(SecretKey::from_hex(&hex).is_ok());
    /// assert_eq!(SecretKey::from_hex("8f8f").unwrap_err(), ConfigError::SecretTooShort(2));
    /// assert_eq!(SecretKey::from_hex(&"zz".repeat(32)).unwrap_err(), ConfigError::SecretNotHex);
    /// assert_eq!(SecretKey::from_hex(&hex[1..]).unwrap_err(), ConfigError::SecretNotHex);
    /// assert!(SecretKey::from_hex(&format!(" {}\n", "8F".repeat(32))).is_ok());
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim().as_bytes();
        if !text.len().is_multiple_of(2) {
            return Err(ConfigError::SecretNotHex);
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() / 2));
        for pair in text.chunks_exact(2) {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => bytes.push((hi << 4) | lo),
                _ => return Err(ConfigError::SecretNotHex),
            }
        }
        Self::from_bytes(&bytes)
    }

    /// A fresh random secret from the operating system's CSPRNG, for tests,
    /// examples, and processes that keep codes only in memory.
    ///
    /// A shared store needs every process to hold the same secrets: load them.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; MIN_SECRET_LEN]);
        rand::fill(&mut bytes[..]);
        SecretKey(bytes)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A digest as stored: HMAC-SHA256 output.
pub(crate) type Tag = [u8; 32];

/// Domain separation: a digest made for one use never verifies for another.
///
/// A code digest's input starts with one of these bytes (see
/// `verifier::code_tag`); the other digests' inputs start with their
/// domain's 32-bit length, whose first byte is 0.
pub(crate) const CODE_INPUT: u8 = 0x81;
/// [`CODE_INPUT`] for a code bound to details.
pub(crate) const CODE_INPUT_BOUND: u8 = 0x82;
pub(crate) const DOMAIN_CONTEXT: &[u8] = b"vericode/v1/context";
pub(crate) const DOMAIN_DEVICE: &[u8] = b"vericode/v1/device";
/// Domains of the lookup key's hashes (the subject's and the limits' strings
/// are those of the unkeyed hashes they replace).
const DOMAIN_LOOKUP_KEY: &[u8] = b"vericode/v1/lookup-key";
const DOMAIN_SUBJECT: &[u8] = b"vericode/v1/subject";
const DOMAIN_LIMIT: &[u8] = b"vericode/v1/limit";
const DOMAIN_HINT: &[u8] = b"vericode/v1/hint";
const DOMAIN_FINGERPRINT: &[u8] = b"vericode/v1/lookup-key-fingerprint";
const DOMAIN_SIGNING_FINGERPRINT: &[u8] = b"vericode/v1/signing-key-fingerprint";

/// One secret's HMAC-SHA256 state after the key schedule: cloning it and
/// hashing a short message costs two SHA-256 compressions.
#[derive(Clone)]
pub(crate) struct MacKey(Hmac<Sha256>);

impl MacKey {
    /// HMAC of `domain` and the length-prefixed `parts`.
    pub(crate) fn tag(&self, domain: &[u8], parts: &[&[u8]]) -> Tag {
        let mut mac = self.0.clone();
        absorb(&mut mac, domain);
        for part in parts {
            absorb(&mut mac, part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A fingerprint of the key held under `id`, kept in a shared store so
    /// that servers holding another secret under the same id can tell: a MAC
    /// of its domain and the id, which tells nothing of the key (nor, the id
    /// being in it, whether two ids share a secret).
    pub(crate) fn fingerprint(&self, id: KeyId) -> [u8; 16] {
        let t = self.tag(DOMAIN_SIGNING_FINGERPRINT, &[&id.get().to_be_bytes()]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&t[..16]);
        out
    }

    /// HMAC of `msg` as it is: the caller's encoding must tell every field
    /// apart, and start with a byte no other digest's input starts with.
    pub(crate) fn tag_raw(&self, msg: &[u8]) -> Tag {
        let mut mac = self.0.clone();
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }
}

/// The key set: the current key, which makes new digests, and older keys,
/// which still verify the digests they made.
pub(crate) struct KeyRing {
    current: (KeyId, MacKey),
    older: Vec<(KeyId, MacKey)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current.0)
            .field(
                "older",
                &self.older.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    pub(crate) fn new(
        current: (KeyId, SecretKey),
        older: Vec<(KeyId, SecretKey)>,
    ) -> Result<Self, ConfigError> {
        let schedule = |secret: &SecretKey| {
            <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0)
                .map(MacKey)
                .map_err(|_| ConfigError::SecretTooShort(secret.0.len()))
        };
        let current_mac = schedule(&current.1)?;
        let mut ring = KeyRing {
            current: (current.0, current_mac),
            older: Vec::with_capacity(older.len()),
        };
        for (id, secret) in older {
            if ring.get(id).is_some() {
                return Err(ConfigError::DuplicateKeyId(id));
            }
            ring.older.push((id, schedule(&secret)?));
        }
        Ok(ring)
    }

    /// The key new digests are made with.
    pub(crate) fn current(&self) -> (KeyId, &MacKey) {
        (self.current.0, &self.current.1)
    }

    /// Every key of the set, the signing key first.
    pub(crate) fn all(&self) -> impl Iterator<Item = (KeyId, &MacKey)> {
        std::iter::once((self.current.0, &self.current.1))
            .chain(self.older.iter().map(|(id, mac)| (*id, mac)))
    }

    /// The key with this id, if it is still in the set.
    pub(crate) fn get(&self, id: KeyId) -> Option<&MacKey> {
        if self.current.0 == id {
            return Some(&self.current.1);
        }
        self.older.iter().find(|(k, _)| *k == id).map(|(_, m)| m)
    }
}

/// Names records in the store: a keyed hash of a subject, or of the value a
/// limit counts (a destination, a prefix, a client), cut to 16 bytes. Store
/// keys and challenge ids carry these groups; without the lookup key no one
/// can tell which subject or address a group names, even one who can list
/// every phone number (an unkeyed hash of a phone number is undone by trying
/// them all).
///
/// The construction is SHA-256 over a secret first block, then the domain and
/// the value, cut to 128 bits: one compression a group, as the unkeyed hash
/// it replaces took (HMAC would take two). The inputs are not prefix-free (a
/// subject may be a prefix of another), so it is the cut that makes a secret
/// prefix safe: length extension needs the whole 256-bit state, and a group
/// shows half of it (the truncated Merkle-Damgard argument behind
/// SHA-512/256). The first block is derived from the
/// secret under a domain of its own, so the same secret used as a signing key
/// gives unrelated values.
#[derive(Clone)]
pub(crate) struct LookupKey {
    keyed: Sha256,
    /// The global limit's group, hashed once.
    global: [u8; 16],
}

impl LookupKey {
    pub(crate) fn new(secret: &SecretKey) -> Self {
        let mut block = Zeroizing::new([0u8; 64]);
        let derived = Sha256::new()
            .chain_update(DOMAIN_LOOKUP_KEY)
            .chain_update(&secret.0[..])
            .finalize();
        block[..32].copy_from_slice(&derived);
        block[32..32 + DOMAIN_LOOKUP_KEY.len()].copy_from_slice(DOMAIN_LOOKUP_KEY);
        let mut keyed = Sha256::new();
        keyed.update(&block[..]);
        let global = limit_group(&keyed, Limit::Global, &[b"global"]);
        LookupKey { keyed, global }
    }

    /// The group of a subject's records.
    pub(crate) fn subject(&self, subject: &Subject) -> [u8; 16] {
        self.hash(DOMAIN_SUBJECT, subject.as_str().as_bytes())
    }

    /// The group of `limit`'s state for the value made of `parts`
    /// (concatenated).
    pub(crate) fn limit(&self, limit: Limit, parts: &[&[u8]]) -> [u8; 16] {
        limit_group(&self.keyed, limit, parts)
    }

    /// The global limit's group.
    pub(crate) fn global(&self) -> [u8; 16] {
        self.global
    }

    /// A fingerprint of the key, kept in the store so that servers holding
    /// another key can tell: a keyed hash of nothing, which tells nothing of
    /// the key.
    pub(crate) fn fingerprint(&self) -> [u8; 16] {
        self.hash(DOMAIN_FINGERPRINT, b"")
    }

    /// The mask of a challenge id's hint: a keyed hash of its nonce.
    pub(crate) fn hint_mask(&self, nonce: &[u8; 16]) -> [u8; 16] {
        self.hash(DOMAIN_HINT, nonce)
    }

    fn hash(&self, domain: &[u8], value: &[u8]) -> [u8; 16] {
        let mut h = self.keyed.clone();
        h.update(domain);
        h.update(value);
        cut(h)
    }
}

fn limit_group(keyed: &Sha256, limit: Limit, parts: &[&[u8]]) -> [u8; 16] {
    let mut h = keyed.clone();
    h.update(DOMAIN_LIMIT);
    h.update([limit.id()]);
    for part in parts {
        h.update(part);
    }
    cut(h)
}

/// The first 16 bytes of a digest.
fn cut(h: Sha256) -> [u8; 16] {
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// Feeds one field with its length in front, so that no two different field
/// lists give the same byte string.
fn absorb(mac: &mut Hmac<Sha256>, part: &[u8]) {
    mac.update(&(part.len() as u32).to_be_bytes());
    mac.update(part);
}

/// Constant-time equality of two tags.
pub(crate) fn tags_equal(a: &Tag, b: &Tag) -> bool {
    crate::ct_eq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the signing-key fingerprint's input: HMAC under the key of the
    /// length-prefixed domain and the key id, cut to 16 bytes (a change
    /// would fail every fleet's check against fingerprints already stored).
    #[test]
    fn a_signing_key_fingerprint_is_a_mac_of_its_domain_and_id() {
        let ring = KeyRing::new(
            (KeyId::new(1), SecretKey::from_bytes(&[7; 32]).unwrap()),
            vec![],
        )
        .unwrap();
        let (_, mac) = ring.current();
        let mut h = <Hmac<Sha256> as KeyInit>::new_from_slice(&[7; 32]).unwrap();
        h.update(&(DOMAIN_SIGNING_FINGERPRINT.len() as u32).to_be_bytes());
        h.update(DOMAIN_SIGNING_FINGERPRINT);
        h.update(&4u32.to_be_bytes());
        h.update(&9u32.to_be_bytes());
        let want = h.finalize().into_bytes();
        assert_eq!(mac.fingerprint(KeyId::new(9)), want[..16]);
        assert_eq!(
            DOMAIN_SIGNING_FINGERPRINT,
            b"vericode/v1/signing-key-fingerprint"
        );
        assert_ne!(
            mac.fingerprint(KeyId::new(9)),
            mac.fingerprint(KeyId::new(10))
        );
    }

    #[test]
    fn a_hex_secret_is_its_bytes() {
        let bytes: Vec<u8> = (0u8..40)
            .map(|i| i.wrapping_mul(73).wrapping_add(5))
            .collect();
        let lower: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let upper = lower.to_uppercase();
        for text in [lower.clone(), upper, format!("  {lower}\n")] {
            assert_eq!(*SecretKey::from_hex(&text).unwrap().0, bytes);
        }
        assert_eq!(
            *SecretKey::from_hex(&"0f".repeat(32)).unwrap().0,
            vec![0x0f; 32]
        );
    }

    fn ring() -> KeyRing {
        KeyRing::new(
            (KeyId::new(2), SecretKey::from_bytes(&[2; 32]).unwrap()),
            vec![(KeyId::new(1), SecretKey::from_bytes(&[1; 32]).unwrap())],
        )
        .unwrap()
    }

    #[test]
    fn tag_is_hmac_sha256_of_the_length_prefixed_fields() {
        // Known answer computed independently (Python's hmac module):
        // hmac.new(b"\x02"*32, b"\0\0\0\x13vericode/v1/context\0\0\0\x03abc", sha256)
        let tag = ring()
            .get(KeyId::new(2))
            .unwrap()
            .tag(DOMAIN_CONTEXT, &[b"abc"]);
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, KAT);
    }
    const KAT: &str = include_str!("../tests/data/kat_tag.txt");

    #[test]
    fn length_prefix_separates_fields() {
        let r = ring();
        let k = r.current().1;
        let a = k.tag(DOMAIN_DEVICE, &[b"ab", b"c"]);
        let b = k.tag(DOMAIN_DEVICE, &[b"a", b"bc"]);
        assert_ne!(a, b);
        let c = k.tag(DOMAIN_CONTEXT, &[b"ab", b"c"]);
        assert_ne!(a, c);
    }

    #[test]
    fn keys_differ_and_unknown_keys_give_none() {
        let r = ring();
        assert_eq!(r.current().0, KeyId::new(2));
        let a = r.get(KeyId::new(2)).unwrap().tag(DOMAIN_DEVICE, &[b"x"]);
        let b = r.get(KeyId::new(1)).unwrap().tag(DOMAIN_DEVICE, &[b"x"]);
        assert_ne!(a, b);
        assert!(r.get(KeyId::new(3)).is_none());
        assert!(tags_equal(&a, &a));
        assert!(!tags_equal(&a, &b));
    }

    #[test]
    fn lookup_groups_are_sha256_under_a_secret_first_block() {
        // Known answers computed independently (Python's hashlib):
        // block = sha256(b"vericode/v1/lookup-key" + b"\x02"*32).digest()
        //         + b"vericode/v1/lookup-key" + b"\0"*10
        // sha256(block + b"vericode/v1/subject" + b"ana").hexdigest()[:32]
        // sha256(block + b"vericode/v1/limit\x01" + b"sms:+14155550123")...
        let key = LookupKey::new(&SecretKey::from_bytes(&[2; 32]).unwrap());
        let hex = |g: [u8; 16]| -> String { g.iter().map(|b| format!("{b:02x}")).collect() };
        let ana = Subject::new("ana").unwrap();
        assert_eq!(hex(key.subject(&ana)), "e9ef674b2108cacaae6cf1952ea985f6");
        assert_eq!(
            hex(key.limit(Limit::Destination, &[b"sms", b":", b"+14155550123"])),
            "8cf63a8de8cda00bff6fd3e523028119"
        );
        // Another secret names other records; the global group is the
        // global limit's.
        let other = LookupKey::new(&SecretKey::from_bytes(&[3; 32]).unwrap());
        assert_ne!(other.subject(&ana), key.subject(&ana));
        assert_eq!(key.global(), key.limit(Limit::Global, &[b"global"]));
        assert_ne!(key.global(), other.global());
        // sha256(block + b"vericode/v1/hint" + b"\0"*16)
        assert_eq!(
            hex(key.hint_mask(&[0; 16])),
            "8a5f50d68834e8865364c5bc7d8d368d"
        );
        assert_ne!(key.hint_mask(&[0; 16]), other.hint_mask(&[0; 16]));
    }

    #[test]
    fn duplicate_key_ids_are_refused() {
        let e = KeyRing::new(
            (KeyId::new(1), SecretKey::generate()),
            vec![(KeyId::new(1), SecretKey::generate())],
        )
        .unwrap_err();
        assert_eq!(e, ConfigError::DuplicateKeyId(KeyId::new(1)));
    }

    #[test]
    fn equal_only_when_every_byte_is() {
        let a = [0x5Au8; 32];
        assert!(bool::from(crate::ct_eq::ct_eq(&a, &a)));
        // A difference in any bit of any byte is seen.
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(
                    !bool::from(crate::ct_eq::ct_eq(&a, &b)),
                    "byte {i}, bit {bit}"
                );
            }
        }
        let (x, y) = ([1u8; 16], [1u8; 16]);
        assert!(bool::from(crate::ct_eq::ct_eq(&x, &y)));
        assert!(!bool::from(crate::ct_eq::ct_eq(&x, &[0u8; 16])));
    }
}
