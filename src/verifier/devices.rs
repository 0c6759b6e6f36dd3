//! Remembered devices: mint after a verification, check, forget one, forget
//! all. A token is a split token: its first part names where its record lives
//! (the subject's group and an id), the rest is a secret of which only a keyed
//! digest is stored and which is compared in constant time.

use crate::ct_eq::ct_eq;
use rand::Rng;

use crate::clock::Clock;
use crate::devices::{
    DeviceError, DeviceToken, ID_LEN, REMEMBER_WITHIN, RememberedDevice, SECRET_LEN,
};
use crate::error::StoreError;
use crate::keys::{DOMAIN_DEVICE, MacKey, Tag};
use crate::record::{DeviceRecord, Record, StoredTag};
use crate::store::{CodeStore, StoreKey, Write};
use crate::subject::Subject;

use super::{Step, Verified, Verifier};

/// When a subject's device generation may be forgotten: generation 0 (never
/// revoked) with the newest token; a revocation never, since forgetting it
/// would bring back the tokens it revoked (whatever lifetime they were
/// minted with).
fn epoch_expiry(epoch: u32, token_expiry: crate::clock::Timestamp) -> crate::clock::Timestamp {
    if epoch == 0 {
        token_expiry
    } else {
        crate::clock::Timestamp::from_millis(i64::MAX)
    }
}

fn device_tag(mac: &MacKey, token: &DeviceToken) -> Tag {
    mac.tag(
        DOMAIN_DEVICE,
        &[&token.subject(), &token.id(), token.secret()],
    )
}

impl<S: CodeStore, D, C: Clock> Verifier<S, D, C> {
    /// Remembers the device that just verified: returns a token to keep on
    /// it (a cookie) so that [`Verifier::check_device`] lets its later logins
    /// skip the challenge, until the policy's device lifetime (30 days by
    /// default) or a revocation.
    ///
    /// It takes the [`Verified`] proof, so a device can only be remembered
    /// after a successful verification of its subject: one made within the
    /// last [`REMEMBER_WITHIN`] (call it right after `verify`), of a code
    /// sent to one of the account's own destinations. A
    /// [`Purpose::CredentialChange`](crate::Purpose::CredentialChange) code
    /// proved a *new* address, not the account, so it cannot; nor can a
    /// verification kept from earlier (before a `forget_all_devices`, say).
    /// Both answer [`DeviceError::NotEligible`].
    ///
    /// ```
    /// # use vericode::*;
    /// # pollster::block_on(async {
    /// # let verifier = Verifier::builder().store(MemoryStore::new()).delivery(RecordingDelivery::new())
    /// #     .signing_key(KeyId::new(1), SecretKey::generate()).app_name("Acme").build()?;
    /// # let subject = Subject::new("u1")?;
    /// # let request = IssueRequest::new(Purpose::LoginNewDevice, subject.clone(), Destination::sms("+14155550123")?);
    /// # let ticket = verifier.issue(&request).await?;
    /// # let code = verifier.delivery().last_code().unwrap();
    /// let verified = verifier.verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &code).await?;
    /// let device = verifier.remember_device(&verified).await?;
    /// let cookie = device.token().expose(); // Set-Cookie: device=…; Secure; HttpOnly
    ///
    /// // Next login from that device:
    /// let token = DeviceToken::parse(&cookie)?;
    /// assert!(verifier.check_device(&subject, &token).await.is_ok());
    ///
    /// // After a password change:
    /// verifier.forget_all_devices(&subject).await?;
    /// assert!(verifier.check_device(&subject, &token).await.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn remember_device(
        &self,
        verified: &Verified,
    ) -> Result<RememberedDevice, DeviceError> {
        let fresh = self.now() <= verified.verified_at.saturating_add(REMEMBER_WITHIN);
        if !fresh || *verified.purpose() == crate::Purpose::CredentialChange {
            return Err(DeviceError::NotEligible);
        }
        let subject = self.lookup.subject(verified.subject());
        let epoch_key = StoreKey::device_epoch(subject);
        self.update(&[epoch_key], |got, now| {
            let (epoch, epoch_version) = match &got[0] {
                Some(v) => (
                    v.record.as_epoch().map_err(StoreError::Corrupt)?,
                    Some(v.version),
                ),
                None => (0, None),
            };
            let mut id = [0u8; ID_LEN];
            let mut secret = [0u8; SECRET_LEN];
            let mut rng = rand::rng();
            rng.fill_bytes(&mut id);
            rng.fill_bytes(&mut secret);
            let token = DeviceToken::new(subject, id, secret);
            let (key, mac) = self.keys.current();
            let expires_at = now.saturating_add(self.policy.device_lifetime);
            let record = DeviceRecord {
                tag: StoredTag {
                    key,
                    tag: device_tag(mac, &token),
                },
                epoch,
                expires_at,
            };
            let writes = vec![
                Write::Put {
                    key: StoreKey::device(subject, id),
                    record: Record::device(record),
                    expected: None,
                    version: crate::store::Version::fresh(),
                    expires_at,
                },
                // The generation is written back in the same commit: a
                // revocation racing this mint makes it conflict, and the
                // generation now lives at least as long as this token.
                Write::Put {
                    key: epoch_key,
                    record: Record::epoch(epoch),
                    expected: epoch_version,
                    version: crate::store::Version::fresh(),
                    expires_at: epoch_expiry(epoch, expires_at),
                },
            ];
            let device = RememberedDevice {
                token,
                expires_at: expires_at.to_datetime(),
            };
            Ok(Step::Commit(writes, device))
        })
        .await
    }

    /// `Ok` if `token` is a live remembered device of `subject`; otherwise
    /// [`DeviceError::NotRemembered`] (unknown, expired, revoked, or another
    /// subject's token): challenge the login.
    pub async fn check_device(
        &self,
        subject: &Subject,
        token: &DeviceToken,
    ) -> Result<(), DeviceError> {
        let s = self.lookup.subject(subject);
        let same_subject: bool = ct_eq(&s, &token.subject()).into();
        if !same_subject {
            return Err(DeviceError::NotRemembered);
        }
        let now = self.now();
        let got = self
            .read(
                &[StoreKey::device(s, token.id()), StoreKey::device_epoch(s)],
                now,
            )
            .await?;
        let Some(v) = &got[0] else {
            return Err(DeviceError::NotRemembered);
        };
        let record = v.record.as_device().map_err(StoreError::Corrupt)?;
        let epoch = match &got[1] {
            Some(e) => e.record.as_epoch().map_err(StoreError::Corrupt)?,
            None => 0,
        };
        let matches = self
            .keys
            .get(record.tag.key)
            .is_some_and(|mac| bool::from(ct_eq(&device_tag(mac, token), &record.tag.tag)));
        if matches && record.epoch == epoch && now < record.expires_at {
            Ok(())
        } else {
            Err(DeviceError::NotRemembered)
        }
    }

    /// Forgets one device (signing out of "remember this device"): its token
    /// stops working. Forgetting an unknown token is not an error.
    pub async fn forget_device(
        &self,
        subject: &Subject,
        token: &DeviceToken,
    ) -> Result<(), StoreError> {
        let s = self.lookup.subject(subject);
        if !bool::from(ct_eq(&s, &token.subject())) {
            return Ok(());
        }
        let key = StoreKey::device(s, token.id());
        self.update(&[key], |got, _| {
            let Some(v) = &got[0] else {
                return Ok(Step::Done(()));
            };
            let record = v.record.as_device().map_err(StoreError::Corrupt)?;
            // Only the holder of the token may forget it.
            let holder = self
                .keys
                .get(record.tag.key)
                .is_some_and(|mac| bool::from(ct_eq(&device_tag(mac, token), &record.tag.tag)));
            if !holder {
                return Ok(Step::Done(()));
            }
            let delete = Write::Delete {
                key,
                expected: v.version,
            };
            Ok(Step::Commit(vec![delete], ()))
        })
        .await
    }

    /// Forgets every device of `subject` at once (after a password change, or
    /// when the person reports a lost phone): every token minted before this
    /// call stops working.
    pub async fn forget_all_devices(&self, subject: &Subject) -> Result<(), StoreError> {
        let key = StoreKey::device_epoch(self.lookup.subject(subject));
        self.update(&[key], |got, now| {
            let (epoch, expected) = match &got[0] {
                Some(v) => (
                    v.record.as_epoch().map_err(StoreError::Corrupt)?,
                    Some(v.version),
                ),
                None => (0, None),
            };
            let write = Write::Put {
                key,
                record: Record::epoch(epoch.wrapping_add(1)),
                expected,
                version: crate::store::Version::fresh(),
                expires_at: epoch_expiry(epoch.wrapping_add(1), now),
            };
            Ok(Step::Commit(vec![write], ()))
        })
        .await
    }
}
