//! The [`CodeStore`] contract, and [`MemoryStore`], the embedded store.
//!
//! A store is a key-value engine with versioned, conditional, atomic writes.
//! It knows nothing of codes, attempts or policy: the
//! [`Verifier`](crate::Verifier) reads records, decides, and writes back on
//! the condition that nothing changed in between. When something did, the
//! store answers [`Commit::Conflict`] and the verifier reads and decides
//! again, a bounded number of times, then fails closed.
//!
//! # The contract
//!
//! - **Versions**: every stored record has a [`Version`], the one its put
//!   carried ([`Write::Put`]'s `version`), which a read returns as it was
//!   given. Writers draw versions at random ([`Version::fresh`]), so a
//!   version is not reused for a key, not even after the key was deleted and
//!   written again. A store must keep the version given (the conformance
//!   check `versions_as_given`): the verifier writes again on the version it
//!   wrote without reading it back (a send claims its slot before it
//!   delivers, stores the code after, and gives the claim back on that
//!   version when the delivery fails). A store that numbered records itself
//!   would make every such write conflict, and failed deliveries would keep
//!   their claims.
//! - **Commit**: [`CodeStore::commit`] applies a short list of writes to
//!   distinct keys *all or none*: every write's expectation (absent, or at a
//!   version) must hold, else nothing is written and the answer is
//!   [`Commit::Conflict`].
//! - **Out of room**: a store that cannot take another record refuses
//!   every commit that puts one, whatever else the commit does and in
//!   whatever order it lists its writes (a success is a delete and a put,
//!   a wrong guess two puts; refusing only the second would turn a full
//!   store into free guesses). A Redis script, which Redis checks for
//!   memory only at its first write, must put before it deletes.
//! - **Linearizable**: each `get` sees the latest committed state.
//! - **Groups**: all keys of one commit share one [`StoreKey::group`], so an
//!   engine that shards can keep them on one node: use the group as the
//!   hash tag. Reads (`get_many`) and `commit_batches` span groups: a
//!   sharded engine must route those per key (vericode-redis on Redis
//!   Cluster sends one pipeline per group).
//! - **Expiry**: each put carries `expires_at`, a hint after which the record
//!   may be dropped; a record past it must read as absent. The verifier checks
//!   expiry itself from the record, so a store that keeps records longer is
//!   still correct, only larger.
//! - **Time**: reads and commits decide expiry by the `now` they are given
//!   (the verifier's clock), not by the engine's. A store shared by several
//!   servers may also compare that `now` with its own clock and refuse a
//!   commit, with an error, when they are too far apart (vericode-redis
//!   does, by one minute by default): servers whose clocks disagree would
//!   end cooldowns, locks and limits at different times.
//!
//! Redis meets this with one Lua script per commit, SQL with a transaction of
//! `UPDATE … WHERE version = $n`, DynamoDB with `TransactWriteItems` and
//! condition expressions.

mod memory;
mod table;

use std::error::Error as StdError;
use std::fmt;

use crate::clock::Timestamp;
use crate::record::Record;

pub use memory::{MemoryStore, MemoryStoreError};

/// Set in the first byte of a decoy challenge's item (never set in a
/// purpose's key bytes).
const DECOY_BIT: u8 = 0x40;

/// What kind of record a key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyKind {
    /// The live challenge of a (subject, purpose).
    Challenge,
    /// A subject's failure count and lock.
    Subject,
    /// A rate limit's state (one timestamp).
    Rate,
    /// Sends and verifications to a phone number range (the conversion guard).
    Conversion,
    /// A remembered device's token digest.
    Device,
    /// A subject's device generation (revoking all its devices bumps it).
    DeviceEpoch,
    /// A fingerprint of a key: the lookup key's, which names the store's
    /// records (item all zeros: see `Verifier::check_lookup_key`), or a
    /// signing key's (item `01` and the key id: see
    /// `Verifier::check_signing_keys`).
    LookupKey,
}

impl KeyKind {
    /// A one-letter tag for the kind, for stores that build text keys.
    pub fn tag(&self) -> char {
        match self {
            KeyKind::Challenge => 'c',
            KeyKind::Subject => 's',
            KeyKind::Rate => 'r',
            KeyKind::Conversion => 'v',
            KeyKind::Device => 'd',
            KeyKind::DeviceEpoch => 'e',
            KeyKind::LookupKey => 'k',
        }
    }
}

/// Where a record lives: a kind, a 16-byte group (a hash of the subject, or
/// of the value a limit counts, under the verifier's lookup key; zeros for
/// the [`KeyKind::LookupKey`] records, the keys' fingerprints) and an 8-byte
/// item within the group.
///
/// ```
/// # use vericode::{KeyKind, StoreKey};
/// # fn show(key: &StoreKey) {
/// // The text form, for stores keyed by strings: kind:group:item in hex.
/// let text = key.to_string();
/// assert!(text.starts_with("c:") || text.starts_with("s:"));
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoreKey {
    kind: KeyKind,
    group: [u8; 16],
    item: [u8; 8],
}

impl StoreKey {
    /// A key from its parts. The verifier makes its own keys; this is for
    /// stores that rebuild keys and for tests of stores.
    pub fn new(kind: KeyKind, group: [u8; 16], item: [u8; 8]) -> Self {
        StoreKey { kind, group, item }
    }

    pub(crate) fn challenge(subject: [u8; 16], purpose: [u8; 8]) -> Self {
        StoreKey {
            kind: KeyKind::Challenge,
            group: subject,
            item: purpose,
        }
    }

    /// Where decoy challenges of a (subject, purpose) live: beside the real
    /// one, never in its place, so a decoy neither sees nor touches a real
    /// challenge. Challenge ids do not say which slot they are in.
    pub(crate) fn decoy_challenge(subject: [u8; 16], purpose: [u8; 8]) -> Self {
        let mut item = purpose;
        item[0] |= DECOY_BIT;
        StoreKey {
            kind: KeyKind::Challenge,
            group: subject,
            item,
        }
    }

    pub(crate) fn subject(subject: [u8; 16]) -> Self {
        StoreKey {
            kind: KeyKind::Subject,
            group: subject,
            item: [0; 8],
        }
    }

    /// A rate limit's state in `group` (a hash of the limited value under the
    /// lookup key).
    pub(crate) fn rate_in(limit: crate::limits::Limit, group: [u8; 16]) -> Self {
        StoreKey {
            kind: KeyKind::Rate,
            group,
            item: [0, 0, 0, 0, 0, 0, 0, limit.id()],
        }
    }

    pub(crate) fn device(subject: [u8; 16], id: [u8; 8]) -> Self {
        StoreKey {
            kind: KeyKind::Device,
            group: subject,
            item: id,
        }
    }

    /// The one record that holds the lookup key's fingerprint: a fixed name,
    /// the same whatever the key, so servers with different keys meet there.
    pub(crate) fn lookup_key_check() -> Self {
        StoreKey {
            kind: KeyKind::LookupKey,
            group: [0; 16],
            item: [0; 8],
        }
    }

    /// Where the fingerprint of the signing key `id` is kept: beside the
    /// lookup key's, one record per key id (item `01`, the id, zeros).
    pub(crate) fn signing_key_check(id: crate::keys::KeyId) -> Self {
        let [a, b, c, d] = id.get().to_be_bytes();
        StoreKey {
            kind: KeyKind::LookupKey,
            group: [0; 16],
            item: [1, a, b, c, d, 0, 0, 0],
        }
    }

    pub(crate) fn device_epoch(subject: [u8; 16]) -> Self {
        StoreKey {
            kind: KeyKind::DeviceEpoch,
            group: subject,
            item: [0; 8],
        }
    }

    /// The conversion counts of a phone number range, at `group` (a keyed
    /// hash of the range: see the verifier's `conversion_group`).
    pub(crate) fn conversion(group: [u8; 16]) -> Self {
        StoreKey {
            kind: KeyKind::Conversion,
            group,
            item: [0; 8],
        }
    }

    /// The kind of record at this key.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The group: keys written together in one commit share it. Use it as the
    /// shard or hash tag.
    pub fn group(&self) -> &[u8; 16] {
        &self.group
    }

    /// The item within the group.
    pub fn item(&self) -> &[u8; 8] {
        &self.item
    }
}

impl std::hash::Hash for StoreKey {
    /// Two `u64`: the group's halves (the group is already a hash), the
    /// second mixed with the kind and item.
    ///
    /// A subject's failure record and its challenges (real and decoy) for the
    /// built-in purposes hash from the group alone: a hash table puts them in
    /// one probe group, so a verify's three lookups share their cache lines
    /// (fewer misses in a large [`MemoryStore`] of the default layout). Of the
    /// keys the verifier makes, that is at most 9 with one hash. A custom
    /// purpose's challenge and its decoy share a hash of their own (custom
    /// purposes are open-ended, so they must not pile onto one chain); other
    /// kinds mix in kind and item.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        // Both halves of the group go to the hasher as they are: folding them
        // together first, unkeyed, would let subjects be searched for offline
        // whose keys collide under every seed.
        let mut second = word(&self.group[8..]);
        match self.kind {
            KeyKind::Subject => {}
            // Built-in purposes have the high bit clear (`Purpose::key_bytes`).
            KeyKind::Challenge if self.item[0] & 0x80 == 0 => {}
            KeyKind::Challenge => {
                let mut item = self.item;
                item[0] &= !DECOY_BIT;
                second ^= word(&item).rotate_left(29);
            }
            kind => second ^= word(&self.item).rotate_left(29) ^ (kind as u64),
        }
        state.write_u64(word(&self.group[..8]));
        state.write_u64(second);
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.kind.tag())?;
        for b in self.group {
            write!(f, "{b:02x}")?;
        }
        f.write_str(":")?;
        for b in self.item {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({self})")
    }
}

/// A record's version: drawn at random by the writer for every put (see
/// [`Write::Put`]), so never reused for a key but by 2⁻⁶⁴ odds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version(pub u64);

impl Version {
    /// A random version: 64 bits from the thread's CSPRNG, so a repeat for
    /// one key has odds of 2⁻⁶⁴ per write.
    ///
    /// ```
    /// use vericode::Version;
    /// assert_ne!(Version::fresh(), Version::fresh());
    /// ```
    pub fn fresh() -> Version {
        use rand::Rng;
        Version(rand::rng().next_u64())
    }
}

/// A record with the version it was read at.
#[derive(Clone, Debug)]
pub struct Versioned {
    /// The version to expect when writing it back.
    pub version: Version,
    /// The record.
    pub record: Record,
}

/// One conditional write within a [`CodeStore::commit`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Write {
    /// Store `record` at `key`, at version `version`, if the key is absent
    /// (`expected: None`) or at version `expected`; it may be dropped after
    /// `expires_at`.
    Put {
        /// Where.
        key: StoreKey,
        /// What.
        record: Record,
        /// The version the key must be at, or `None` for "must be absent".
        expected: Option<Version>,
        /// The version the record is stored at, as given: the writer draws
        /// it ([`Version::fresh`]), so it knows the version it may expect
        /// next without reading the record back.
        version: Version,
        /// When the store may drop the record.
        expires_at: Timestamp,
    },
    /// Remove `key` if it is at version `expected`.
    Delete {
        /// Where.
        key: StoreKey,
        /// The version the key must be at.
        expected: Version,
    },
}

impl Write {
    /// A put at a [fresh](Version::fresh) version.
    pub fn put(
        key: StoreKey,
        record: Record,
        expected: Option<Version>,
        expires_at: Timestamp,
    ) -> Write {
        Write::Put {
            key,
            record,
            expected,
            version: Version::fresh(),
            expires_at,
        }
    }

    /// The key written.
    pub fn key(&self) -> &StoreKey {
        match self {
            Write::Put { key, .. } | Write::Delete { key, .. } => key,
        }
    }

    /// The version a put stores its record at (`None` for a delete).
    pub(crate) fn put_version(&self) -> Option<Version> {
        match self {
            Write::Put { version, .. } => Some(*version),
            Write::Delete { .. } => None,
        }
    }

    /// The version the key must be at (`None`: must be absent).
    pub fn expected(&self) -> Option<Version> {
        match self {
            Write::Put { expected, .. } => *expected,
            Write::Delete { expected, .. } => Some(*expected),
        }
    }
}

/// The outcome of a [`CodeStore::commit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Commit {
    /// Every write was applied.
    Applied,
    /// Some expectation did not hold; nothing was written.
    Conflict,
}

/// A key-value engine with versioned, atomic conditional writes: see the
/// [module docs](crate::store) for the contract.
///
/// Methods return `Send` futures without tying vericode to a runtime; an
/// implementation may write `async fn`, and an in-memory one may return
/// [`std::future::ready`].
///
/// A sketch of a store over some engine:
///
/// ```
/// use std::future::{ready, Future};
/// use vericode::{CodeStore, Commit, StoreKey, Timestamp, Versioned, Write};
///
/// struct MyStore { inner: vericode::MemoryStore }
///
/// impl CodeStore for MyStore {
///     type Error = vericode::MemoryStoreError;
///     fn get_many(&self, keys: &[StoreKey], now: Timestamp)
///         -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
///         // One round trip for all keys: MGET, a SELECT … WHERE key IN (…), …
///         self.inner.get_many(keys, now)
///     }
///     fn commit(&self, writes: &[Write], now: Timestamp)
///         -> impl Future<Output = Result<Commit, Self::Error>> + Send {
///         // One atomic conditional write: a Lua script, a transaction, …
///         // Keep each put's `version` as given.
///         self.inner.commit(writes, now)
///     }
/// }
/// ```
pub trait CodeStore: Send + Sync {
    /// The backend's error; the verifier wraps it in
    /// [`StoreError::Backend`](crate::StoreError::Backend) and fails closed.
    type Error: StdError + Send + Sync + 'static;

    /// Reads `keys` (at most a handful), answering in the same order; a key
    /// that is absent or past its `expires_at` reads as `None`.
    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send;

    /// Applies `writes` (distinct keys of one group) all or none: see
    /// [`Commit`].
    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send;

    /// Whether a call costs a round trip to another process (Redis, SQL),
    /// rather than a function call: `true` unless the store says otherwise.
    ///
    /// A hint, never a matter of correctness: where calls are round trips the
    /// verifier reads more up front to make fewer calls (a successful
    /// verification reads the conversion guard's record with the challenge);
    /// where they are not it does less work instead (it reads that record
    /// only after a success, and skips unmasking the id's hint).
    fn is_remote(&self) -> bool {
        true
    }

    /// The lookup key for verifiers built without one
    /// ([`VerifierBuilder::lookup_key`](crate::VerifierBuilder::lookup_key)),
    /// asked only of a store that is not [remote](Self::is_remote). The
    /// default is `None`. A store whose records never leave the process may
    /// make one when it is created, as [`MemoryStore`] does, so that every
    /// verifier sharing it finds the same records; it must answer the same key
    /// every time. A store shared between processes cannot make one up, since
    /// every process must hash with the same key, so building a verifier on
    /// it without one fails with
    /// [`ConfigError::MissingLookupKey`](crate::ConfigError::MissingLookupKey),
    /// whatever this answers. A wrapper around another store should pass this
    /// call on, with `is_remote`.
    fn lookup_key(&self) -> Option<crate::SecretKey> {
        None
    }

    /// Applies several independent commits, each all or none on its own (each
    /// batch within one group), answering in order. The default runs them one
    /// after the other; a remote store may override it to send them in one
    /// round trip (a pipeline), as long as each batch stays atomic.
    fn commit_batches(
        &self,
        batches: &[&[Write]],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Commit>, Self::Error>> + Send {
        async move {
            let mut out = Vec::with_capacity(batches.len());
            for batch in batches {
                out.push(self.commit(batch, now).await?);
            }
            Ok(out)
        }
    }
}

impl<S: CodeStore + ?Sized> CodeStore for std::sync::Arc<S> {
    type Error = S::Error;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
        (**self).get_many(keys, now)
    }

    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send {
        (**self).commit(writes, now)
    }

    fn commit_batches(
        &self,
        batches: &[&[Write]],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Commit>, Self::Error>> + Send {
        (**self).commit_batches(batches, now)
    }

    fn is_remote(&self) -> bool {
        (**self).is_remote()
    }

    fn lookup_key(&self) -> Option<crate::SecretKey> {
        (**self).lookup_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{Hash, Hasher};

    fn hash_of(key: &StoreKey) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        h.finish()
    }

    #[test]
    fn a_subjects_challenge_decoy_and_failure_keys_share_a_hash_and_others_do_not() {
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let (p, q) = (
            crate::Purpose::StepUp.key_bytes(),
            crate::Purpose::PasswordReset.key_bytes(),
        );
        let same = [
            StoreKey::challenge(a, p),
            StoreKey::decoy_challenge(a, p),
            StoreKey::challenge(a, q),
            StoreKey::subject(a),
        ];
        // Custom purposes: a challenge and its decoy share a hash, apart from
        // the subject's other keys and from other custom purposes.
        let wire = crate::Purpose::custom("wire_transfer").unwrap().key_bytes();
        let payee = crate::Purpose::custom("new_payee").unwrap().key_bytes();
        let custom = hash_of(&StoreKey::challenge(a, wire));
        assert_eq!(hash_of(&StoreKey::decoy_challenge(a, wire)), custom);
        assert_ne!(hash_of(&StoreKey::challenge(a, payee)), custom);
        assert_ne!(hash_of(&same[0]), custom);
        for k in &same {
            assert_eq!(hash_of(k), hash_of(&same[0]), "{k}");
        }
        // Other subjects, and the kinds that are not grouped, hash apart.
        let rate = StoreKey::rate_in(crate::limits::Limit::Subject, a);
        for k in [
            StoreKey::challenge(b, p),
            StoreKey::subject(b),
            rate,
            StoreKey::new(KeyKind::Device, a, [9; 8]),
            StoreKey::new(KeyKind::Device, a, [8; 8]),
        ] {
            assert_ne!(hash_of(&k), hash_of(&same[0]), "{k}");
        }
        assert_ne!(
            hash_of(&StoreKey::new(KeyKind::Device, a, [9; 8])),
            hash_of(&StoreKey::new(KeyKind::Device, a, [8; 8]))
        );
        // Groups whose halves an unkeyed fold would merge alike still hash
        // apart: the hasher gets both halves.
        let x = 0x0123_4567_89ab_cdefu64;
        let mut c = [0u8; 16];
        c[8..].copy_from_slice(&x.to_le_bytes());
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&x.rotate_left(29).to_le_bytes());
        assert_ne!(
            hash_of(&StoreKey::subject(c)),
            hash_of(&StoreKey::subject(d))
        );
    }
}
