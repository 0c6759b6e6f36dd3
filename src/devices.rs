//! Remembered devices: after a successful verification the application may
//! mint a [`DeviceToken`] for the device (a cookie, say), so that a later
//! login presenting it skips the challenge. Tokens are random, stored only as
//! keyed digests, checked in constant time, expire, and can be revoked one by
//! one or all at once for a subject (after a password change, say).
//!
//! The verifier methods are `remember_device`, `check_device`,
//! `forget_device` and `forget_all_devices`.

use std::fmt;

use time::OffsetDateTime;
use zeroize::Zeroize;

use crate::error::{InputError, StoreError};

/// How soon after its verification a device may be remembered
/// ([`Verifier::remember_device`](crate::Verifier::remember_device)): five
/// minutes.
///
/// ```
/// assert_eq!(vericode::REMEMBER_WITHIN, time::Duration::minutes(5));
/// ```
pub const REMEMBER_WITHIN: time::Duration = time::Duration::minutes(5);

pub(crate) const SUBJECT_LEN: usize = 16;
pub(crate) const ID_LEN: usize = 8;
pub(crate) const SECRET_LEN: usize = 24;
const RAW_LEN: usize = SUBJECT_LEN + ID_LEN + SECRET_LEN;

/// A remembered-device token: 48 random-looking bytes in 64 characters of
/// base64url. It is a bearer secret: keep it in a `Secure; HttpOnly` cookie,
/// never in logs. `Debug` prints it redacted; it is zeroed on drop.
///
/// ```
/// use vericode::DeviceToken;
/// assert!(DeviceToken::parse("not a token").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceToken {
    raw: [u8; RAW_LEN],
}

impl DeviceToken {
    pub(crate) fn new(
        subject: [u8; SUBJECT_LEN],
        id: [u8; ID_LEN],
        secret: [u8; SECRET_LEN],
    ) -> Self {
        let mut raw = [0u8; RAW_LEN];
        raw[..SUBJECT_LEN].copy_from_slice(&subject);
        raw[SUBJECT_LEN..SUBJECT_LEN + ID_LEN].copy_from_slice(&id);
        raw[SUBJECT_LEN + ID_LEN..].copy_from_slice(&secret);
        DeviceToken { raw }
    }

    /// Parses a token's text form (from a cookie); anything else is
    /// [`InputError::DeviceToken`].
    pub fn parse(text: &str) -> Result<DeviceToken, InputError> {
        let mut raw = [0u8; RAW_LEN];
        crate::base64url::decode(text, &mut raw).ok_or(InputError::DeviceToken)?;
        Ok(DeviceToken { raw })
    }

    /// The text form, to store on the device. It is a secret.
    pub fn expose(&self) -> String {
        crate::base64url::encode(&self.raw)
    }

    pub(crate) fn subject(&self) -> [u8; SUBJECT_LEN] {
        let mut out = [0u8; SUBJECT_LEN];
        out.copy_from_slice(&self.raw[..SUBJECT_LEN]);
        out
    }

    pub(crate) fn id(&self) -> [u8; ID_LEN] {
        let mut out = [0u8; ID_LEN];
        out.copy_from_slice(&self.raw[SUBJECT_LEN..SUBJECT_LEN + ID_LEN]);
        out
    }

    pub(crate) fn secret(&self) -> &[u8] {
        &self.raw[SUBJECT_LEN + ID_LEN..]
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceToken(<redacted>)")
    }
}

impl Drop for DeviceToken {
    fn drop(&mut self) {
        self.raw.zeroize();
    }
}

/// A freshly minted remembered device: the token to hand to the device and
/// when it stops working.
#[derive(Debug)]
pub struct RememberedDevice {
    pub(crate) token: DeviceToken,
    pub(crate) expires_at: OffsetDateTime,
}

impl RememberedDevice {
    /// The token, for the device to keep.
    pub fn token(&self) -> &DeviceToken {
        &self.token
    }

    /// When the device must verify again.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

/// Why a device is not trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The token is unknown, expired, revoked, or belongs to another subject:
    /// challenge the login as for a new device.
    #[error("this device is not remembered; challenge it")]
    NotRemembered,
    /// The store failed; treat the device as not remembered.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// [`Verifier::remember_device`](crate::Verifier::remember_device) was
    /// given a verification that cannot vouch for this device: older than
    /// [`REMEMBER_WITHIN`](crate::REMEMBER_WITHIN), or of a code that proved a
    /// new address (`Purpose::CredentialChange`). Remember devices right
    /// after a login or step-up verification.
    #[error("this verification cannot remember a device")]
    NotEligible,
}
