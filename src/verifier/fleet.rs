//! Checks that every server on a shared store names records with the same
//! lookup key, and holds the same secret under each key id.

use time::Duration;

use super::{Step, Verifier};
use crate::clock::Clock;
use crate::ct_eq::ct_eq;
use crate::error::{LookupKeyError, SigningKeyError, StoreError};
use crate::keys::{LookupKey, SecretKey};
use crate::record::Record;
use crate::store::{CodeStore, StoreKey, Versioned, Write};

/// How long the fingerprint is kept after it was last renewed.
const FINGERPRINT_KEPT: Duration = Duration::days(400);
/// A check renews the fingerprint only when it is older than this, so that
/// servers starting together do not contend for the one record.
const RENEW_AFTER: Duration = Duration::days(1);

impl<S: CodeStore, D, C: Clock> Verifier<S, D, C> {
    /// Checks that this verifier names records with the same lookup key as
    /// every other that called it on this store. Call it at startup on a
    /// store shared between servers, and from time to time (hourly, say)
    /// while serving. The first call leaves a fingerprint of the key in the
    /// store (a keyed hash, which tells nothing of the key); every later one
    /// compares with it, and renews it once a day.
    ///
    /// A server given another key would otherwise run on silently: it would
    /// not find the others' challenges, failure counts or limits, so each of
    /// the fleet's limits would count apart. This turns that into an error
    /// ([`LookupKeyError::Mismatch`]); a server that gets it should not
    /// serve. The check can only compare with a fingerprint that is there: a
    /// store that lost it (a Redis restarted without persistence, which lost
    /// every count with it) takes the next checker's, which is why running
    /// servers should check again from time to time. To replace the key on
    /// purpose, see [`Verifier::replace_lookup_key_check`].
    ///
    /// ```
    /// use vericode::{KeyId, MemoryStore, RecordingDelivery, SecretKey, Verifier};
    /// # pollster::block_on(async {
    /// let store = std::sync::Arc::new(MemoryStore::new());
    /// let server = |store| {
    ///     Verifier::builder()
    ///         .store(store)
    ///         .delivery(RecordingDelivery::new())
    ///         .signing_key(KeyId::new(1), SecretKey::from_bytes(&[7; 32]).unwrap())
    ///         .app_name("Acme")
    ///         .build()
    ///         .unwrap()
    /// };
    /// // Both take the store's own lookup key, so they agree.
    /// server(store.clone()).check_lookup_key().await.unwrap();
    /// server(store).check_lookup_key().await.unwrap();
    /// # });
    /// ```
    pub async fn check_lookup_key(&self) -> Result<(), LookupKeyError> {
        self.settle_lookup_key(None).await
    }

    /// Checks that every other server that called it on this store holds the
    /// same secret as this verifier under each of its key ids (the signing
    /// key and the verification keys): the first call leaves a fingerprint
    /// of each key in the store (a MAC of a constant, which tells nothing of
    /// the key), later ones compare with it and renew it once a day, as
    /// [`Verifier::check_lookup_key`] does for the lookup key. Call the two
    /// together, at startup and from time to time.
    ///
    /// Two secrets under one id cannot be told apart otherwise: a code signed
    /// by one server fails on the other as a wrong guess, counted against
    /// the person. A server that gets [`SigningKeyError::Mismatch`] should not
    /// serve.
    ///
    /// ```
    /// use vericode::{KeyId, MemoryStore, RecordingDelivery, SecretKey, SigningKeyError, Verifier};
    /// # pollster::block_on(async {
    /// let store = std::sync::Arc::new(MemoryStore::new());
    /// let server = |secret: [u8; 32]| {
    ///     Verifier::builder()
    ///         .store(store.clone())
    ///         .delivery(RecordingDelivery::new())
    ///         .signing_key(KeyId::new(1), SecretKey::from_bytes(&secret).unwrap())
    ///         .app_name("Acme")
    ///         .build()
    ///         .unwrap()
    /// };
    /// server([7; 32]).check_signing_keys().await.unwrap();
    /// server([7; 32]).check_signing_keys().await.unwrap();
    /// // Another secret under id 1:
    /// assert!(matches!(
    ///     server([8; 32]).check_signing_keys().await,
    ///     Err(SigningKeyError::Mismatch { key }) if key == KeyId::new(1)
    /// ));
    /// # });
    /// ```
    pub async fn check_signing_keys(&self) -> Result<(), SigningKeyError> {
        let ours: Vec<(crate::keys::KeyId, StoreKey, [u8; 16])> = self
            .keys
            .all()
            .map(|(id, mac)| (id, StoreKey::signing_key_check(id), mac.fingerprint(id)))
            .collect();
        let keys: Vec<StoreKey> = ours.iter().map(|(_, key, _)| *key).collect();
        // Every id is decided before anything is written (one commit, the
        // records sharing one group): a server that fails leaves no
        // fingerprint of its other keys behind.
        self.update(&keys, |got, now| {
            let mut writes = Vec::new();
            for ((id, key, fingerprint), current) in ours.iter().zip(got) {
                let write = |expected| Write::Put {
                    key: *key,
                    record: Record::fingerprint(*fingerprint, now),
                    expected,
                    version: crate::store::Version::fresh(),
                    expires_at: now.saturating_add(FINGERPRINT_KEPT),
                };
                let Some(Versioned {
                    version, record, ..
                }) = current
                else {
                    writes.push(write(None));
                    continue;
                };
                let (theirs, renewed) = record.as_fingerprint().map_err(StoreError::Corrupt)?;
                if !bool::from(ct_eq(&theirs, fingerprint)) {
                    return Err(SigningKeyError::Mismatch { key: *id });
                }
                if now.since(renewed) >= RENEW_AFTER {
                    writes.push(write(Some(*version)));
                }
            }
            Ok(if writes.is_empty() {
                Step::Done(())
            } else {
                Step::Commit(writes, ())
            })
        })
        .await
    }

    /// Hands the store from the lookup key `old` to this verifier's, for a
    /// key replaced on purpose (which starts every record afresh: see
    /// README, "The lookup key"). Run it once, on a verifier built with the
    /// new key, before the servers start with it: afterwards a server with
    /// the new key passes [`Verifier::check_lookup_key`] and one with the old
    /// key fails it. A store whose fingerprint is neither key's answers
    /// [`LookupKeyError::Mismatch`] and is left as it is.
    pub async fn replace_lookup_key_check(&self, old: &SecretKey) -> Result<(), LookupKeyError> {
        self.settle_lookup_key(Some(LookupKey::new(old).fingerprint()))
            .await
    }

    /// Reads the lookup key's fingerprint: if it is this verifier's (or
    /// `old`), makes it this verifier's, renewing it when a day old; writes
    /// it to an empty store; answers [`LookupKeyError::Mismatch`] for any
    /// other.
    async fn settle_lookup_key(&self, old: Option<[u8; 16]>) -> Result<(), LookupKeyError> {
        let ours = self.lookup.fingerprint();
        let key = StoreKey::lookup_key_check();
        self.update(&[key], |got, now| {
            let write = |expected| Write::Put {
                key,
                record: Record::fingerprint(ours, now),
                expected,
                version: crate::store::Version::fresh(),
                expires_at: now.saturating_add(FINGERPRINT_KEPT),
            };
            let Some(Versioned {
                version, record, ..
            }) = &got[0]
            else {
                return Ok(Step::Commit(vec![write(None)], ()));
            };
            let (theirs, renewed) = record.as_fingerprint().map_err(StoreError::Corrupt)?;
            let is_ours = bool::from(ct_eq(&theirs, &ours));
            let is_old = old.is_some_and(|old| bool::from(ct_eq(&theirs, &old)));
            if !(is_ours || is_old) {
                return Err(LookupKeyError::Mismatch);
            }
            let current = is_ours && now.since(renewed) < RENEW_AFTER;
            Ok(if current {
                Step::Done(())
            } else {
                Step::Commit(vec![write(Some(*version))], ())
            })
        })
        .await
    }
}
