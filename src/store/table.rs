//! One shard's table for [`MemoryStore`](super::MemoryStore), in one of two
//! layouts: records shared as they are (the default: fastest reads), or
//! encoded to their compact byte form under a 128-bit keyed hash of the key
//! (about half the memory, at the cost of decoding on every read).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::{StoreKey, Version};
use crate::clock::Timestamp;
use crate::record::{DecodeError, Record};

/// Hashes store keys cheaply: their groups are already SHA-256 prefixes or
/// HMACs, so a multiply-and-fold seeded per store spreads them well; SipHash
/// would only cost time here.
#[derive(Clone, Copy)]
pub(super) struct KeyHasher(pub(super) u64);

impl BuildHasher for KeyHasher {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(self.0)
    }
}

pub(super) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(23) ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
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
    /// (and would read as a corrupt record, failing closed).
    Compact {
        map: HashMap<u128, Packed, KeyHasher>,
        seeds: [u64; 2],
    },
}

impl Table {
    pub(super) fn shared(seed: u64) -> Table {
        Table::Shared(HashMap::with_hasher(KeyHasher(seed)))
    }

    pub(super) fn compact(seed: u64, seeds: [u64; 2]) -> Table {
        Table::Compact {
            map: HashMap::with_hasher(KeyHasher(seed)),
            seeds,
        }
    }

    fn packed_key(seeds: &[u64; 2], key: &StoreKey) -> u128 {
        let lane = |seed: u64| {
            let mut h = FoldHasher(seed);
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
            Table::Compact { map, seeds } => map.get(&Self::packed_key(seeds, key)).map(|p| Meta {
                version: Version(p.version),
                expires_at: Timestamp::from_millis(p.expires_at),
            }),
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
            Table::Compact { map, seeds } => map.get(&Self::packed_key(seeds, key)).map(|p| {
                let meta = Meta {
                    version: Version(p.version),
                    expires_at: Timestamp::from_millis(p.expires_at),
                };
                Record::decode(&p.bytes).map(|r| (meta, r))
            }),
        }
    }

    /// Stores `record`; `true` if the key was new.
    pub(super) fn insert(
        &mut self,
        key: StoreKey,
        version: Version,
        record: &Record,
        expires_at: Timestamp,
    ) -> bool {
        match self {
            Table::Shared(m) => m
                .insert(
                    key,
                    Entry {
                        version,
                        record: record.clone(),
                        expires_at,
                    },
                )
                .is_none(),
            Table::Compact { map, seeds } => map
                .insert(
                    Self::packed_key(seeds, &key),
                    Packed {
                        version: version.0,
                        expires_at: expires_at.as_millis(),
                        bytes: record.encode().into_boxed_slice(),
                    },
                )
                .is_none(),
        }
    }

    /// Removes `key`; `true` if it was there.
    pub(super) fn remove(&mut self, key: &StoreKey) -> bool {
        match self {
            Table::Shared(m) => m.remove(key).is_some(),
            Table::Compact { map, seeds } => map.remove(&Self::packed_key(seeds, key)).is_some(),
        }
    }

    /// Drops records past their expiry; returns how many.
    pub(super) fn retain_live(&mut self, now: Timestamp) -> usize {
        let before = self.len();
        match self {
            Table::Shared(m) => m.retain(|_, e| e.expires_at > now),
            Table::Compact { map, .. } => map.retain(|_, p| p.expires_at > now.as_millis()),
        }
        before - self.len()
    }
}
