//! [`MemoryStore`]: the embedded store, for one process.

use std::future::ready;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::table::Table;
use super::{CodeStore, Commit, StoreKey, Versioned, Write};
use crate::clock::Timestamp;
use crate::keys::SecretKey;

const SHARDS: usize = 64;
/// Shards are swept of expired records when they have doubled since the last
/// sweep, and never below this size.
const MIN_SWEEP_LEN: usize = 64;
/// The most spare capacity a shard takes beyond what a commit needs (it
/// keeps up to twice that as records go).
const MAX_GRANT: usize = 16;

/// The in-memory [`CodeStore`]: sharded (64 locks, chosen by the subject, so
/// threads working for different subjects rarely meet), bounded by a capacity,
/// and dropping expired records as it goes.
///
/// Share one `MemoryStore` between verifiers by wrapping it in an
/// [`Arc`](std::sync::Arc): it makes a lookup key when it is created
/// ([`CodeStore::lookup_key`]), so verifiers built on it without one of their
/// own name records alike and find each other's. Everything is lost when the
/// process ends; run several processes on a shared store instead.
///
/// ```
/// use vericode::MemoryStore;
/// let store = MemoryStore::with_capacity(100_000);
/// assert_eq!(store.len(), 0);
/// assert_eq!(store.capacity(), 100_000);
/// ```
pub struct MemoryStore {
    shards: Box<[Padded]>,
    // The capacity handed out to the shards: the records they hold, and the
    // spare each was granted beyond them. A shard takes capacity in grants
    // and gives back what it stops using, so most inserts and removals leave
    // this count alone: written by every one, it was a cache line the cores
    // passed back and forth (benches/README.md). Never above `capacity`.
    // On cache lines of its own, so it does not evict the fields around it
    // (nor the verifier's, which holds the store inline) from other cores.
    granted: PaddedCount,
    capacity: usize,
    /// The spare a shard takes beside what a commit needs, and keeps (up to
    /// twice this) as records go: a 16384th of the capacity, at most
    /// `MAX_GRANT` (so at most a 128th of the capacity is held spare by the
    /// 64 shards, and a store of under 16384 records grants exactly what it
    /// needs).
    grant: usize,
    /// Made at creation, for the verifiers on this store (never `Debug`ged).
    lookup: SecretKey,
}

/// A count on its own cache lines.
#[repr(align(128))]
struct PaddedCount(AtomicUsize);

impl std::ops::Deref for PaddedCount {
    type Target = AtomicUsize;
    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

/// A shard on its own cache lines, so that threads locking neighbouring
/// shards do not slow each other down.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

struct Shard {
    map: Table,
    len_after_sweep: usize,
    /// The capacity this shard was granted: at least `map.len()`.
    granted: usize,
    /// No record here expires before this (the earliest expiry written
    /// since the last sweep, or the last sweep's earliest survivor): until
    /// then a sweep has nothing to drop, and skips its scan. So a full store
    /// refuses a write without reading every record it holds.
    earliest_expiry: Timestamp,
}

/// An `earliest_expiry` for a shard with no records.
const NOT_BEFORE_END: Timestamp = Timestamp::from_millis(i64::MAX);

/// Why the [`MemoryStore`] refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryStoreError {
    /// The store holds `capacity` live records; nothing was written. Raise the
    /// capacity, or look for a flood of challenges.
    #[error("the memory store is full ({capacity} records)")]
    Full {
        /// The store's capacity.
        capacity: usize,
    },
    /// A record kept in the compact layout no longer decodes (memory
    /// corruption); the operation failed closed.
    #[error("a record in the memory store is corrupt")]
    Corrupt(#[source] crate::record::DecodeError),
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl MemoryStore {
    /// The default capacity: one million records.
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    /// A store for up to a million records.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A store for up to `capacity` records (at least 1): a hard bound, with
    /// threads racing too. Once it is reached, a write that adds a record
    /// fails with [`MemoryStoreError::Full`] until records expire or go.
    pub fn with_capacity(capacity: usize) -> Self {
        let seed = rand::random::<[u64; 2]>();
        Self::build(capacity, || Table::shared(seed))
    }

    /// A store for up to `capacity` records (at least 1) in the compact
    /// layout: each record is kept in its byte form (about 130 bytes for a
    /// challenge) under a 128-bit keyed hash of its key, for about half the
    /// memory of the default layout, at the cost of decoding a record on
    /// every read (a few hundred nanoseconds). See README, "Performance".
    ///
    /// ```
    /// use vericode::MemoryStore;
    /// let store = MemoryStore::compact(1_000_000);
    /// assert_eq!(store.capacity(), 1_000_000);
    /// ```
    pub fn compact(capacity: usize) -> Self {
        let seed = rand::random::<[u64; 2]>();
        let seeds = rand::random::<[[u64; 2]; 2]>();
        Self::build(capacity, || Table::compact(seed, seeds))
    }

    fn build(capacity: usize, table: impl Fn() -> Table) -> Self {
        MemoryStore {
            shards: (0..SHARDS)
                .map(|_| {
                    Padded(Mutex::new(Shard {
                        map: table(),
                        len_after_sweep: 0,
                        granted: 0,
                        earliest_expiry: NOT_BEFORE_END,
                    }))
                })
                .collect(),
            granted: PaddedCount(AtomicUsize::new(0)),
            capacity: capacity.max(1),
            grant: (capacity / (SHARDS * 256)).min(MAX_GRANT),
            lookup: SecretKey::generate(),
        }
    }

    /// Records held, expired ones not yet dropped included (each shard is
    /// counted under its lock in turn: with writers running, a snapshot).
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).map.len()).sum()
    }

    /// `true` if no records are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most records the store holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops every record past its expiry; returns how many were dropped.
    /// (Every shard also gives back its spare capacity.)
    pub fn purge_expired(&self, now: Timestamp) -> usize {
        (0..SHARDS)
            .map(|i| {
                let mut shard = self.lock(i);
                let dropped = self.sweep(&mut shard, now);
                self.trim(&mut shard, 0);
                dropped
            })
            .sum()
    }

    fn shard_of(key: &StoreKey) -> usize {
        usize::from(key.group()[0]) % SHARDS
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard cannot leave an entry half-written
        // (entries are replaced whole), so a poisoned lock is still consistent.
        self.shards[i].0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops `shard`'s expired records (keeping the capacity they held:
    /// the caller trims once its writes are done).
    fn sweep(&self, shard: &mut Shard, now: Timestamp) -> usize {
        shard.len_after_sweep = shard.map.len();
        if now < shard.earliest_expiry {
            return 0;
        }
        let (dropped, earliest) = shard.map.retain_live(now);
        shard.len_after_sweep = shard.map.len();
        shard.earliest_expiry = earliest.unwrap_or(NOT_BEFORE_END);
        dropped
    }

    /// Takes `n` of the capacity left, all or nothing.
    fn take(&self, n: usize) -> bool {
        self.granted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                g.checked_add(n).filter(|&total| total <= self.capacity)
            })
            .is_ok()
    }

    /// Gives back `shard`'s spare capacity down to `keep`, once it holds
    /// more than twice that (so a shard whose records come and go near a
    /// grant's edge does not take and give back on every write).
    fn trim(&self, shard: &mut Shard, keep: usize) {
        debug_assert!(
            shard.granted >= shard.map.len(),
            "a shard holds more records than it was granted"
        );
        let spare = shard.granted.saturating_sub(shard.map.len());
        if spare > 2 * keep {
            let back = spare - keep;
            shard.granted -= back;
            self.granted.fetch_sub(back, Ordering::Relaxed);
        }
    }

    /// Makes sure `shard` is granted room for `added` more records, and
    /// `extra` spare beside them if the capacity left allows.
    fn reserve(&self, shard: &mut Shard, added: usize, extra: usize) -> bool {
        let short = (shard.map.len() + added).saturating_sub(shard.granted);
        if short == 0 {
            return true;
        }
        let got = [short + extra, short].into_iter().find(|&n| self.take(n));
        if let Some(n) = got {
            shard.granted += n;
        }
        got.is_some()
    }

    /// Reads `keys`, locking each shard once for a run of keys in it (the
    /// keys of one group are in one shard).
    fn read(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> Result<Vec<Option<Versioned>>, MemoryStoreError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut held: Option<(usize, MutexGuard<'_, Shard>)> = None;
        for key in keys {
            let i = Self::shard_of(key);
            if held.as_ref().is_none_or(|(j, _)| *j != i) {
                // One lock at a time (the old guard is dropped first): no
                // ordering to get wrong.
                drop(held.take());
                held = Some((i, self.lock(i)));
            }
            let Some((_, shard)) = held.as_mut() else {
                out.push(None);
                continue;
            };
            out.push(match shard.map.load(key) {
                Some(Ok((meta, record))) if meta.expires_at > now => Some(Versioned {
                    version: meta.version,
                    record,
                }),
                Some(Err(e)) => return Err(MemoryStoreError::Corrupt(e)),
                Some(Ok(_)) => {
                    shard.map.remove(key);
                    self.trim(shard, self.grant);
                    None
                }
                None => None,
            });
        }
        Ok(out)
    }

    /// The common case: every write in one shard (one group), one lock.
    fn apply_in_one_shard(
        &self,
        writes: &[Write],
        now: Timestamp,
        i: usize,
    ) -> Result<Commit, MemoryStoreError> {
        let mut shard = self.lock(i);
        let mut added = 0usize;
        for w in writes {
            match Self::admit(&shard, w, now) {
                Some(new) => added += usize::from(new),
                None => return Ok(Commit::Conflict),
            }
        }
        self.make_room(&mut [(&mut *shard, added)], now)?;
        for w in writes {
            self.write_one(&mut shard, w, now);
        }
        self.trim(&mut shard, self.grant);
        Ok(Commit::Applied)
    }

    /// Whether `w` may be applied to `shard`: `None` if the record's live
    /// version is not the one the write expects (a conflict), else whether
    /// the write may add a record. A put over an expired record counts as
    /// adding one: a sweep before it is written would drop the old record
    /// (the room it did not need is given back once the commit is written).
    fn admit(shard: &Shard, w: &Write, now: Timestamp) -> Option<bool> {
        let live = shard.map.meta(w.key()).filter(|e| e.expires_at > now);
        if live.map(|e| e.version) != w.expected() {
            return None;
        }
        Some(live.is_none() && matches!(w, Write::Put { .. }))
    }

    /// Makes room in each locked shard for the records it is to add: if the
    /// store would pass its capacity, sweeps the locked shards of expired
    /// records (giving back their spare), and refuses if that was not enough.
    fn make_room(
        &self,
        needs: &mut [(&mut Shard, usize)],
        now: Timestamp,
    ) -> Result<(), MemoryStoreError> {
        let fits = |extra: usize, needs: &mut [(&mut Shard, usize)]| {
            needs
                .iter_mut()
                .all(|(shard, added)| self.reserve(shard, *added, extra))
        };
        if fits(self.grant, needs) {
            return Ok(());
        }
        for (shard, _) in needs.iter_mut() {
            self.sweep(shard, now);
            self.trim(shard, 0);
        }
        if fits(0, needs) {
            return Ok(());
        }
        // Refused: a shard granted room before another could not be holds
        // none it will use.
        for (shard, _) in needs.iter_mut() {
            self.trim(shard, 0);
        }
        Err(MemoryStoreError::Full {
            capacity: self.capacity,
        })
    }

    fn write_one(&self, shard: &mut Shard, w: &Write, now: Timestamp) {
        match w {
            Write::Put {
                key,
                record,
                version,
                expires_at,
                ..
            } => {
                shard.map.insert(*key, *version, record, *expires_at);
                shard.earliest_expiry = shard.earliest_expiry.min(*expires_at);
            }
            Write::Delete { key, .. } => {
                shard.map.remove(key);
            }
        }
        if shard.map.len() >= (2 * shard.len_after_sweep).max(MIN_SWEEP_LEN) {
            self.sweep(shard, now);
        }
    }

    fn apply(&self, writes: &[Write], now: Timestamp) -> Result<Commit, MemoryStoreError> {
        let Some(first) = writes.first() else {
            return Ok(Commit::Applied);
        };
        let i = Self::shard_of(first.key());
        if writes.iter().all(|w| Self::shard_of(w.key()) == i) {
            return self.apply_in_one_shard(writes, now, i);
        }
        // Lock every shard involved, in index order, so two commits never wait
        // on each other in a cycle.
        let mut ids: Vec<usize> = writes.iter().map(|w| Self::shard_of(w.key())).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut guards: Vec<(usize, MutexGuard<'_, Shard>)> =
            ids.iter().map(|&i| (i, self.lock(i))).collect();
        let shard_for = |key: &StoreKey| -> usize {
            let i = Self::shard_of(key);
            guards.iter().position(|(j, _)| *j == i).unwrap_or(0)
        };
        let positions: Vec<usize> = writes.iter().map(|w| shard_for(w.key())).collect();

        let mut added = vec![0usize; guards.len()];
        for (w, &p) in writes.iter().zip(&positions) {
            match Self::admit(&guards[p].1, w, now) {
                Some(new) => added[p] += usize::from(new),
                None => return Ok(Commit::Conflict),
            }
        }
        let mut needs: Vec<(&mut Shard, usize)> = guards
            .iter_mut()
            .zip(added)
            .map(|((_, g), n)| (&mut **g, n))
            .collect();
        self.make_room(&mut needs, now)?;
        drop(needs);
        for (w, &p) in writes.iter().zip(&positions) {
            self.write_one(&mut guards[p].1, w, now);
        }
        for (_, shard) in &mut guards {
            self.trim(shard, self.grant);
        }
        Ok(Commit::Applied)
    }
}

impl CodeStore for MemoryStore {
    type Error = MemoryStoreError;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
        ready(self.read(keys, now))
    }

    /// In the process: calls are cheap, so the verifier does less work
    /// rather than fewer calls.
    fn is_remote(&self) -> bool {
        false
    }

    /// The key this store made when it was created: every verifier built on
    /// it without one of its own uses it, so they all find the same records.
    fn lookup_key(&self) -> Option<SecretKey> {
        Some(self.lookup.clone())
    }

    fn commit(
        &self,
        writes: &[Write],
        now: Timestamp,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send {
        // When full, the locked shards were swept already; sweep them all (one
        // lock at a time) and try once more before refusing.
        let result = match self.apply(writes, now) {
            Err(MemoryStoreError::Full { .. }) => {
                self.purge_expired(now);
                self.apply(writes, now)
            }
            other => other,
        };
        ready(result)
    }
}
