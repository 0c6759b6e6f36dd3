//! One shard's table for [`MemoryStore`](super::MemoryStore), in one of two
//! layouts: records shared as they are (the default: fastest reads), or
//! encoded to their compact byte form under a 128-bit keyed hash of the key
//! (about half the memory, at the cost of decoding on every read).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::{StoreKey, Version};
use crate::clock::Timestamp;
use crate::record::{DecodeError, Record};

/// Hashes store keys cheaply, under two secret per-store seeds: each word is
/// mixed in by a folded multiply (the 128-bit product of the state and a
/// secret, its halves XORed, as foldhash does), so every bit of the key
/// reaches the low bits a table picks buckets by, and which keys share a
/// bucket cannot be worked out without the seeds. The words are SHA-256
/// prefixes or HMACs already; SipHash would only cost time here.
#[derive(Clone, Copy)]
pub(super) struct KeyHasher(pub(super) [u64; 2]);

impl BuildHasher for KeyHasher {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher::new(self.0)
    }
}

pub(super) struct FoldHasher {
    acc: u64,
    key: u64,
}

impl FoldHasher {
    fn new([acc, key]: [u64; 2]) -> FoldHasher {
        // An even multiplier loses a bit of the state; zero would lose all.
        FoldHasher { acc, key: key | 1 }
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        let product = u128::from(self.acc ^ x) * u128::from(self.key);
        self.acc = (product as u64) ^ ((product >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.acc
    }
}

pub(super) struct Entry {
    version: Version,
    record: Record,
    expires_at: Timestamp,
}

/// A record in its byte form, with its version and expiry: 32 bytes beside a
/// 16-byte key.
pub(super) struct Packed {
    version: u64,
    expires_at: i64,
    bytes: Box<[u8]>,
}

/// A record's version and expiry, without the record.
#[derive(Clone, Copy)]
pub(super) struct Meta {
    pub(super) version: Version,
    pub(super) expires_at: Timestamp,
}

pub(super) enum Table {
    Shared(HashMap<StoreKey, Entry, KeyHasher>),
    /// Keys are a 128-bit hash of the store key under two secret seeds: a
    /// collision is a 2^-128 event that no one outside the process can aim at
    /// (and would fail closed: a record of another kind reads as corrupt,
    /// another challenge's fails its nonce check).
    Compact {
        map: HashMap<u128, Packed, KeyHasher>,
        seeds: [[u64; 2]; 2],
        /// Where a record is encoded before it is copied to a box of its
        /// exact size (encoding straight into a vector and shrinking it cost
        /// a reallocation per write).
        scratch: Vec<u8>,
    },
}

impl Table {
    pub(super) fn shared(seed: [u64; 2]) -> Table {
        Table::Shared(HashMap::with_hasher(KeyHasher(seed)))
    }

    pub(super) fn compact(seed: [u64; 2], seeds: [[u64; 2]; 2]) -> Table {
        Table::Compact {
            map: HashMap::with_hasher(KeyHasher(seed)),
            seeds,
            scratch: Vec::new(),
        }
    }

    fn packed_key(seeds: &[[u64; 2]; 2], key: &StoreKey) -> u128 {
        let lane = |seed: [u64; 2]| {
            let mut h = FoldHasher::new(seed);
            h.write(&[key.kind().tag() as u8]);
            h.write(key.group());
            h.write(key.item());
            h.finish()
        };
        (u128::from(lane(seeds[0])) << 64) | u128::from(lane(seeds[1]))
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Table::Shared(m) => m.len(),
            Table::Compact { map, .. } => map.len(),
        }
    }

    pub(super) fn meta(&self, key: &StoreKey) -> Option<Meta> {
        match self {
            Table::Shared(m) => m.get(key).map(|e| Meta {
                version: e.version,
                expires_at: e.expires_at,
            }),
            Table::Compact { map, seeds, .. } => {
                map.get(&Self::packed_key(seeds, key)).map(|p| Meta {
                    version: Version(p.version),
                    expires_at: Timestamp::from_millis(p.expires_at),
                })
            }
        }
    }

    /// The record at `key` with its metadata.
    pub(super) fn load(&self, key: &StoreKey) -> Option<Result<(Meta, Record), DecodeError>> {
        match self {
            Table::Shared(m) => m.get(key).map(|e| {
                Ok((
                    Meta {
                        version: e.version,
                        expires_at: e.expires_at,
                    },
                    e.record.clone(),
                ))
            }),
            Table::Compact { map, seeds, .. } => map.get(&Self::packed_key(seeds, key)).map(|p| {
                let meta = Meta {
                    version: Version(p.version),
                    expires_at: Timestamp::from_millis(p.expires_at),
                };
                Record::decode(&p.bytes).map(|r| (meta, r))
            }),
        }
    }

    /// Stores `record` under `key`, replacing what was there.
    pub(super) fn insert(
        &mut self,
        key: StoreKey,
        version: Version,
        record: &Record,
        expires_at: Timestamp,
    ) {
        match self {
            Table::Shared(m) => {
                m.insert(
                    key,
                    Entry {
                        version,
                        record: record.clone(),
                        expires_at,
                    },
                );
            }
            Table::Compact {
                map,
                seeds,
                scratch,
            } => {
                scratch.clear();
                record.encode_into(scratch);
                map.insert(
                    Self::packed_key(seeds, &key),
                    Packed {
                        version: version.0,
                        expires_at: expires_at.as_millis(),
                        bytes: Box::from(scratch.as_slice()),
                    },
                );
            }
        }
    }

    /// Removes `key`, if it is there.
    pub(super) fn remove(&mut self, key: &StoreKey) {
        match self {
            Table::Shared(m) => {
                m.remove(key);
            }
            Table::Compact { map, seeds, .. } => {
                map.remove(&Self::packed_key(seeds, key));
            }
        }
    }

    /// Drops records past their expiry; returns how many, and the earliest
    /// expiry of those kept.
    pub(super) fn retain_live(&mut self, now: Timestamp) -> (usize, Option<Timestamp>) {
        let before = self.len();
        let mut earliest: Option<Timestamp> = None;
        let mut keep = |expires_at: Timestamp| {
            let live = expires_at > now;
            if live {
                earliest = Some(earliest.map_or(expires_at, |e| e.min(expires_at)));
            }
            live
        };
        match self {
            Table::Shared(m) => m.retain(|_, e| keep(e.expires_at)),
            Table::Compact { map, .. } => {
                map.retain(|_, p| keep(Timestamp::from_millis(p.expires_at)))
            }
        }
        (before - self.len(), earliest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(seed: [u64; 2], x: u64) -> u64 {
        let mut h = KeyHasher(seed).build_hasher();
        h.write_u64(x);
        h.finish()
    }

    #[test]
    fn the_high_bits_of_a_key_reach_the_bucket_bits_under_a_thousand_seeds() {
        // Keys that differ only in their top bits must not share a bucket,
        // whatever the seed (a multiply alone carries no bit downwards, so
        // such keys could be aimed at one bucket without knowing the seed).
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut same_bucket = 0;
        for _ in 0..1000 {
            let seed = [next(), next()];
            let x = next();
            for bit in 48..64 {
                let mask = (1 << 16) - 1;
                if hash(seed, x) & mask == hash(seed, x ^ (1 << bit)) & mask {
                    same_bucket += 1;
                }
            }
        }
        // 16,000 pairs over 65,536 buckets: a handful by chance at most.
        assert!(same_bucket < 10, "{same_bucket} pairs shared a bucket");
    }
}
