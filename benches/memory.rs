//! Memory per pending challenge in `MemoryStore` (issue 6; target: at most
//! 256 bytes).
//!
//! A counting global allocator tracks the bytes the program has asked for and
//! not yet freed. The bench builds a verifier on a `MemoryStore`, issues one
//! million challenges for distinct subjects (a delivery that does nothing;
//! every request and ticket is dropped at once, so only what the store keeps
//! stays allocated), and prints the live bytes added per pending challenge,
//! with the resident set size of the process for comparison (which includes
//! the allocator's own overhead per block) and the live allocations by size,
//! to show where the bytes go.
//!
//! It is a plain program, not a criterion bench: it measures bytes, not time.
//!
//! ```sh
//! cargo bench --bench memory             # 1 000 000 challenges
//! cargo bench --bench memory -- 100000   # another count
//! ```

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{NullDelivery, request, run, verifier};
use vericode::{ManualClock, MemoryStore, Policy};

/// Live allocations counted by exact size up to this many bytes; larger ones
/// are summed together.
const SMALL: usize = 512;

/// The system allocator, counting live bytes and live blocks by size.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LARGE_BYTES: AtomicUsize = AtomicUsize::new(0);
static BY_SIZE: [AtomicUsize; SMALL + 1] = [const { AtomicUsize::new(0) }; SMALL + 1];

fn count_alloc(size: usize) {
    LIVE_BYTES.fetch_add(size, Ordering::Relaxed);
    if size <= SMALL {
        BY_SIZE[size].fetch_add(1, Ordering::Relaxed);
    } else {
        LARGE_BYTES.fetch_add(size, Ordering::Relaxed);
    }
}

fn count_free(size: usize) {
    LIVE_BYTES.fetch_sub(size, Ordering::Relaxed);
    if size <= SMALL {
        BY_SIZE[size].fetch_sub(1, Ordering::Relaxed);
    } else {
        LARGE_BYTES.fetch_sub(size, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters are only atomics on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count_free(layout.size());
            count_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Resident set size of this process in bytes (Linux), if known.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn snapshot() -> Vec<usize> {
    BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // runs this unoptimised: keep that quick.
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 10_000 });

    for (name, policy, compact) in [
        ("no abuse limits", common::no_limits(), false),
        ("default abuse limits", common::default_limits(), false),
        ("compact layout, no abuse limits", common::no_limits(), true),
        (
            "compact layout, default abuse limits",
            common::default_limits(),
            true,
        ),
    ] {
        measure(name, policy, n, compact);
    }
}

/// Issues `n` challenges under `policy` and prints what the store keeps.
fn measure(name: &str, policy: Policy, n: usize, compact: bool) {
    // Room for the rate-limit records too (one per destination, subject and
    // client).
    let store = if compact {
        MemoryStore::compact(5 * n)
    } else {
        MemoryStore::with_capacity(5 * n)
    };
    let v = verifier(
        store,
        NullDelivery,
        policy,
        &ManualClock::new(common::start()),
    );
    let bytes_before = LIVE_BYTES.load(Ordering::Relaxed);
    let large_before = LARGE_BYTES.load(Ordering::Relaxed);
    let sizes_before = snapshot();
    let rss_before = rss();

    for i in 0..n {
        let ticket = run(v.issue(&request("memory", i))).expect("issue");
        std::hint::black_box(&ticket);
    }
    let records = v.store().len();

    let bytes = LIVE_BYTES.load(Ordering::Relaxed) - bytes_before;
    let large = LARGE_BYTES.load(Ordering::Relaxed) - large_before;
    let per = bytes as f64 / n as f64;
    println!(
        "MemoryStore, {name}: {n} pending challenges, {records} records \
         (SMS to distinct numbers, distinct subjects and clients)"
    );
    println!("  live heap bytes requested: {bytes} = {per:.1} bytes per pending challenge");
    println!(
        "    of which blocks over {SMALL} bytes (hash tables): {large} = {:.1} per challenge",
        large as f64 / n as f64
    );
    if let (Some(a), Some(b)) = (rss_before, rss()) {
        let grown = b.saturating_sub(a);
        println!(
            "  resident set grew by {grown} bytes = {:.1} bytes per pending challenge (allocator overhead included)",
            grown as f64 / n as f64
        );
    }
    println!("  live blocks added, by size (sizes with at least n/10 blocks):");
    for (size, (after, before)) in snapshot().iter().zip(&sizes_before).enumerate() {
        let added = after.saturating_sub(*before);
        if added >= n / 10 {
            println!(
                "    {size:>4} bytes x {added} ({:.2} per challenge)",
                added as f64 / n as f64
            );
        }
    }
    let target = 256.0;
    let verdict = if per <= target { "met" } else { "MISSED" };
    println!("  target: <= {target} bytes per pending challenge: {verdict}\n");
    drop(v);
}
