//! [`VerifierBuilder`]: gathers the store, delivery, clock, policy, keys and
//! app name, and checks them all at [`build`](VerifierBuilder::build).

use crate::clock::{Clock, SystemClock};
use crate::delivery::Delivery;
use crate::error::ConfigError;
use crate::keys::{KeyId, KeyRing, LookupKey, SecretKey};
use crate::message::Messages;
use crate::policy::Policy;
use crate::store::CodeStore;

use super::Verifier;

/// A builder slot not filled yet (the store or the delivery): `build()` is
/// only available once both are given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unset;

/// Builds a [`Verifier`]; see [`Verifier::builder`].
///
/// ```
/// use vericode::{ConfigError, KeyId, MemoryStore, RecordingDelivery, SecretKey, Verifier};
/// let missing_key = Verifier::builder()
///     .store(MemoryStore::new())
///     .delivery(RecordingDelivery::new())
///     .app_name("Acme")
///     .build();
/// assert_eq!(missing_key.unwrap_err(), ConfigError::MissingSigningKey);
/// ```
#[derive(Debug)]
#[must_use]
pub struct VerifierBuilder<S, D, C> {
    store: S,
    delivery: D,
    clock: C,
    policy: Policy,
    signing: Option<(KeyId, SecretKey)>,
    older: Vec<(KeyId, SecretKey)>,
    lookup: Option<SecretKey>,
    app_name: Option<String>,
    messages: Messages,
}

impl Verifier<Unset, Unset, SystemClock> {
    /// Starts building a verifier: give it a store, a delivery, a signing key
    /// and an app name; optionally a policy, older keys and a clock.
    pub fn builder() -> VerifierBuilder<Unset, Unset, SystemClock> {
        VerifierBuilder {
            store: Unset,
            delivery: Unset,
            clock: SystemClock,
            policy: Policy::default(),
            signing: None,
            older: Vec::new(),
            lookup: None,
            app_name: None,
            messages: Messages::default(),
        }
    }
}

impl<S, D, C> VerifierBuilder<S, D, C> {
    /// Where challenges are kept.
    pub fn store<S2: CodeStore>(self, store: S2) -> VerifierBuilder<S2, D, C> {
        VerifierBuilder {
            store,
            delivery: self.delivery,
            clock: self.clock,
            policy: self.policy,
            signing: self.signing,
            older: self.older,
            lookup: self.lookup,
            app_name: self.app_name,
            messages: self.messages,
        }
    }

    /// How messages are sent.
    pub fn delivery<D2: Delivery>(self, delivery: D2) -> VerifierBuilder<S, D2, C> {
        VerifierBuilder {
            store: self.store,
            delivery,
            clock: self.clock,
            policy: self.policy,
            signing: self.signing,
            older: self.older,
            lookup: self.lookup,
            app_name: self.app_name,
            messages: self.messages,
        }
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock<C2: Clock>(self, clock: C2) -> VerifierBuilder<S, D, C2> {
        VerifierBuilder {
            store: self.store,
            delivery: self.delivery,
            clock,
            policy: self.policy,
            signing: self.signing,
            older: self.older,
            lookup: self.lookup,
            app_name: self.app_name,
            messages: self.messages,
        }
    }

    /// The policy (default: [`Policy::default`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The key new digests are made with. Exactly one; every process sharing a
    /// store needs the same keys.
    pub fn signing_key(mut self, id: KeyId, secret: SecretKey) -> Self {
        self.signing = Some((id, secret));
        self
    }

    /// Another key, accepted for digests made under it but never used to make
    /// one. Rotating a fleet's signing key takes three steps, each on every
    /// server before the next:
    ///
    /// 1. add the new key here, so every server can check what it will sign;
    /// 2. make it the [`signing_key`](Self::signing_key), and add the old
    ///    one here;
    /// 3. drop the old key once nothing made under it is live: after the
    ///    longest code lifetime in the policy *and* the
    ///    [`device_lifetime`](crate::Policy::device_lifetime), since
    ///    remembered devices are digested with the signing key too (dropped
    ///    sooner, every remembered device is challenged again).
    ///
    /// A server that meets a challenge whose codes were all made under keys
    /// it does not hold answers
    /// [`VerifyError::KeyNotHeld`](crate::VerifyError::KeyNotHeld), uncounted.
    pub fn verification_key(mut self, id: KeyId, secret: SecretKey) -> Self {
        self.older.push((id, secret));
        self
    }

    /// The lookup key: names records in the store by a keyed hash of their
    /// subject, destination or client, so that store keys, challenge ids and
    /// device tokens do not tell them to someone who can guess them (anyone
    /// can hash every phone number). Needed for a store shared between
    /// processes ([`CodeStore::is_remote`]), and the same in every process;
    /// [`MemoryStore`](crate::MemoryStore) makes one for the verifiers that
    /// share it (see [`CodeStore::lookup_key`]).
    ///
    /// Unlike signing keys it does not rotate: another lookup key names
    /// other records, so live challenges, failure counts, limits and
    /// remembered devices would start afresh. If it leaks, the records'
    /// names are no more secret than a plain hash of what they count; codes
    /// stay as safe as the signing keys.
    pub fn lookup_key(mut self, secret: SecretKey) -> Self {
        self.lookup = Some(secret);
        self
    }

    /// The message texts: templates per locale and purpose, autofill lines
    /// (default: the built-in texts in English, Spanish, German, French and
    /// Portuguese, no autofill). Checked at `build()`: every SMS must fit one
    /// segment with this app name, code length and lifetime.
    pub fn messages(mut self, messages: Messages) -> Self {
        self.messages = messages;
        self
    }

    /// The name people see in messages ("Acme: 123456 is your code…"): 1 to
    /// 64 bytes without control characters.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }
}

impl<S: CodeStore, D: Delivery, C: Clock> VerifierBuilder<S, D, C> {
    /// Checks everything and builds the verifier.
    ///
    /// Refused: no signing key, no lookup key for a store that does not
    /// supply one, a secret under 32 bytes, a key id used twice, a missing or
    /// invalid app name, a policy setting out of range.
    pub fn build(self) -> Result<Verifier<S, D, C>, ConfigError> {
        let signing = self.signing.ok_or(ConfigError::MissingSigningKey)?;
        let keys = KeyRing::new(signing, self.older)?;
        // Only a store whose records stay in this process may supply the key:
        // one a shared store made up would differ from process to process.
        let lookup = self
            .lookup
            .or_else(|| (!self.store.is_remote()).then(|| self.store.lookup_key())?)
            .ok_or(ConfigError::MissingLookupKey)?;
        self.policy.validate()?;
        let app_name = self.app_name.ok_or(ConfigError::AppName)?;
        if app_name.is_empty() || app_name.len() > 64 || app_name.chars().any(char::is_control) {
            return Err(ConfigError::AppName);
        }
        let longest = self
            .policy
            .lifetimes
            .values()
            .copied()
            .fold(self.policy.lifetime, time::Duration::max);
        let max_minutes = (longest.whole_seconds() + 59) / 60;
        self.messages
            .check(&app_name, self.policy.format.len(), max_minutes)?;
        Ok(Verifier {
            messages: self.messages,
            store: self.store,
            delivery: self.delivery,
            clock: self.clock,
            policy: self.policy,
            keys,
            lookup: LookupKey::new(&lookup),
            app_name: app_name.into_boxed_str(),
        })
    }
}
