//! Checks that every server on a shared store names records with the same
//! lookup key.

use time::Duration;

use super::{Step, Verifier};
use crate::clock::Clock;
use crate::ct_eq::ct_eq;
use crate::error::{LookupKeyError, StoreError};
use crate::record::Record;
use crate::store::{CodeStore, StoreKey, Write};

/// How long the fingerprint is kept after the last check: a fleet that
/// restarts within it keeps checking against the same record.
const FINGERPRINT_KEPT: Duration = Duration::days(400);

impl<S: CodeStore, D, C: Clock> Verifier<S, D, C> {
    /// Checks that this verifier names records with the same lookup key as
    /// every other that called it on this store; call it once at startup on
    /// a store shared between servers. The first call leaves a fingerprint
    /// of the key in the store (a keyed hash, which tells nothing of the
    /// key); every later one compares with it, and renews it.
    ///
    /// A server given another key would otherwise run on silently: it would
    /// not find the others' challenges, failure counts or limits, so each of
    /// the fleet's limits would count apart. This turns that into an error at
    /// startup ([`LookupKeyError::Mismatch`]).
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
        let ours = self.lookup.fingerprint();
        let key = StoreKey::lookup_key_check();
        self.update(&[key], |got, now| {
            let expires_at = now.saturating_add(FINGERPRINT_KEPT);
            let expected = match &got[0] {
                Some(v) => {
                    let theirs = v.record.as_fingerprint().map_err(StoreError::Corrupt)?;
                    if !bool::from(ct_eq(&theirs, &ours)) {
                        return Err(LookupKeyError::Mismatch);
                    }
                    Some(v.version)
                }
                None => None,
            };
            let renew = Write::Put {
                key,
                record: Record::fingerprint(ours),
                expected,
                expires_at,
            };
            Ok(Step::Commit(vec![renew], ()))
        })
        .await
    }

    /// Forgets the fingerprint [`Verifier::check_lookup_key`] keeps, so that
    /// the next check records this verifier's key. Only for a lookup key
    /// replaced on purpose on every server (which starts every record
    /// afresh: see README, "The lookup key"); never to silence a mismatch.
    pub async fn reset_lookup_key_check(&self) -> Result<(), StoreError> {
        let key = StoreKey::lookup_key_check();
        self.update(&[key], |got, _| {
            Ok(match &got[0] {
                Some(v) => Step::Commit(
                    vec![Write::Delete {
                        key,
                        expected: v.version,
                    }],
                    (),
                ),
                None => Step::Done(()),
            })
        })
        .await
    }
}
