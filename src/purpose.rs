//! [`Purpose`]: what a code is for. A code made for one purpose never verifies
//! for another, and each purpose may have its own lifetime.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::InputError;

/// What a challenge is for.
///
/// The four built-in purposes cover the moments services ask for a code;
/// [`Purpose::custom`] names any other.
///
/// ```
/// use vericode::Purpose;
/// assert_eq!(Purpose::LoginNewDevice.as_str(), "login_new_device");
/// let wire = Purpose::custom("wire_transfer")?;
/// assert_eq!(wire.as_str(), "wire_transfer");
/// assert_eq!(Purpose::parse("password_reset")?, Purpose::PasswordReset);
/// assert!(Purpose::custom("Has Spaces").is_err());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// A login from a device the account has not seen before.
    LoginNewDevice,
    /// A change of credentials: password, email address, phone number.
    CredentialChange,
    /// A step-up after a risk signal or before a sensitive action.
    StepUp,
    /// A password reset.
    PasswordReset,
    /// An application-defined purpose; build it with [`Purpose::custom`].
    Custom(CustomPurpose),
}

/// A validated application-defined purpose name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CustomPurpose(Arc<str>);

/// The longest custom purpose name.
pub const MAX_PURPOSE_LEN: usize = 32;

impl Purpose {
    /// An application-defined purpose: 1 to 32 characters of `a-z`, `0-9`, `_`,
    /// `.`, starting with a letter, and not one of the built-in names.
    pub fn custom(name: &str) -> Result<Purpose, InputError> {
        let ok_len = (1..=MAX_PURPOSE_LEN).contains(&name.len());
        let ok_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if !(ok_len && ok_chars && starts_with_letter) {
            return Err(InputError::Purpose);
        }
        if Self::builtin(name).is_some() {
            return Err(InputError::Purpose);
        }
        Ok(Purpose::Custom(CustomPurpose(Arc::from(name))))
    }

    /// The purpose with this name, built-in or custom (the inverse of [`Purpose::as_str`]).
    pub fn parse(name: &str) -> Result<Purpose, InputError> {
        match Self::builtin(name) {
            Some(p) => Ok(p),
            None => Self::custom(name),
        }
    }

    fn builtin(name: &str) -> Option<Purpose> {
        Some(match name {
            "login_new_device" => Purpose::LoginNewDevice,
            "credential_change" => Purpose::CredentialChange,
            "step_up" => Purpose::StepUp,
            "password_reset" => Purpose::PasswordReset,
            _ => return None,
        })
    }

    /// The stable name, as stored and hashed.
    pub fn as_str(&self) -> &str {
        match self {
            Purpose::LoginNewDevice => "login_new_device",
            Purpose::CredentialChange => "credential_change",
            Purpose::StepUp => "step_up",
            Purpose::PasswordReset => "password_reset",
            Purpose::Custom(c) => &c.0,
        }
    }

    /// The built-in purposes, in the order of their numbers in
    /// [`key_bytes`](Self::key_bytes) (1 to 4).
    const BUILT_INS: [Purpose; 4] = [
        Purpose::LoginNewDevice,
        Purpose::CredentialChange,
        Purpose::StepUp,
        Purpose::PasswordReset,
    ];

    /// Whether `bytes` can be a purpose's [`key_bytes`](Self::key_bytes): a
    /// built-in's (seven zeros and its number) or a custom one's (the high
    /// bit set, bit 6 clear). Bit 6 marks decoy slots in store keys
    /// (`StoreKey::decoy_challenge`), so an id with it set would reach a
    /// decoy from its real slot too: ids are refused with it.
    pub(crate) fn is_key_shape(bytes: &[u8; 8]) -> bool {
        let built_in = Self::BUILT_INS.iter().any(|p| p.key_bytes() == *bytes);
        let custom = bytes[0] & 0xc0 == 0x80;
        built_in || custom
    }

    /// Eight bytes that name the purpose inside store keys and challenge ids:
    /// small numbers for the built-ins, a hash for custom names (high bit set, so
    /// the two never meet; bit 6 always clear).
    pub(crate) fn key_bytes(&self) -> [u8; 8] {
        let n = match self {
            Purpose::LoginNewDevice => 1,
            Purpose::CredentialChange => 2,
            Purpose::StepUp => 3,
            Purpose::PasswordReset => 4,
            Purpose::Custom(c) => {
                let mut h = Sha256::new();
                h.update(b"vericode/v1/purpose");
                h.update(c.0.as_bytes());
                let d = h.finalize();
                let mut out = [0u8; 8];
                out.copy_from_slice(&d[..8]);
                // High bit set: never a built-in. Bit 6 clear: kept free for
                // the decoy slots of store keys (`StoreKey::decoy_challenge`).
                out[0] = 0x80 | (out[0] & 0x3f);
                return out;
            }
        };
        [0, 0, 0, 0, 0, 0, 0, n]
    }

    /// What the code is for, in a few words for a message ("sign in from a new device").
    pub fn describe(&self) -> &str {
        match self {
            Purpose::LoginNewDevice => "sign in from a new device",
            Purpose::CredentialChange => "confirm a change to your account",
            Purpose::StepUp => "confirm it's you",
            Purpose::PasswordReset => "reset your password",
            Purpose::Custom(c) => &c.0,
        }
    }
}

impl fmt::Debug for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Purpose({})", self.as_str())
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CustomPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_key_bytes_are_distinct() {
        let all = [
            Purpose::LoginNewDevice,
            Purpose::CredentialChange,
            Purpose::StepUp,
            Purpose::PasswordReset,
            Purpose::custom("a").unwrap(),
            Purpose::custom("wire_transfer").unwrap(),
        ];
        for (i, p) in all.iter().enumerate() {
            assert_eq!(&Purpose::parse(p.as_str()).unwrap(), p);
            for q in &all[i + 1..] {
                assert_ne!(p.key_bytes(), q.key_bytes());
            }
        }
    }

    #[test]
    fn every_purpose_has_the_key_shape_and_a_decoy_slot_does_not() {
        let mut all = Purpose::BUILT_INS.to_vec();
        all.extend((0..200).map(|i| Purpose::custom(&format!("p{i}")).unwrap()));
        for p in &all {
            let key = p.key_bytes();
            assert!(Purpose::is_key_shape(&key), "{p}");
            // The decoy slot's item (`StoreKey::decoy_challenge`) is no
            // purpose's.
            let mut decoy = key;
            decoy[0] |= 0x40;
            assert!(!Purpose::is_key_shape(&decoy), "{p}");
        }
        // Every built-in is listed, in the order of its number (a new one
        // fails to compile here until it is listed).
        for (i, p) in Purpose::BUILT_INS.iter().enumerate() {
            let listed = match p {
                Purpose::LoginNewDevice
                | Purpose::CredentialChange
                | Purpose::StepUp
                | Purpose::PasswordReset => true,
                Purpose::Custom(_) => false,
            };
            assert!(listed);
            assert_eq!(p.key_bytes(), [0, 0, 0, 0, 0, 0, 0, i as u8 + 1]);
        }
        assert!(!Purpose::is_key_shape(&[0; 8]));
        assert!(!Purpose::is_key_shape(&[0, 0, 0, 0, 0, 0, 0, 5]));
        assert!(!Purpose::is_key_shape(&[0, 0, 0, 0, 0, 0, 1, 1]));
    }

    #[test]
    fn bad_custom_names_are_refused() {
        for bad in [
            "",
            "1abc",
            "Abc",
            "a b",
            "a-b",
            "step_up",
            &"a".repeat(33),
            "é",
        ] {
            assert_eq!(Purpose::custom(bad), Err(InputError::Purpose), "{bad:?}");
        }
    }
}
