//! A dudect-style timing test of the digest comparison that `verify` makes
//! (`src/ct_eq.rs`, compiled here as it is in the library, over two 32-byte
//! digests): does a wrong digest that shares 31 bytes with the right one take
//! longer to refuse than one that shares none?
//!
//! Measurements of the two classes are interleaved at random, each the time of
//! a batch of comparisons; the slowest 10 % of each class are cropped (as
//! dudect does against interrupts); Welch's t statistic then compares the
//! means. |t| above 10 is evidence of a leak and fails the run. Run it with
//! `cargo bench --bench timing` (release mode; `.ci/run` does).

use std::hint::black_box;
use std::time::Instant;

#[path = "../src/ct_eq.rs"]
mod ct_eq;

const SAMPLES: usize = 200_000;
const BATCH: usize = 32;
const THRESHOLD: f64 = 10.0;

fn main() {
    // Ignore the flags `cargo bench` passes.
    let right = [0xA5u8; 32];
    let mut late = right;
    late[31] ^= 1; // shares 31 bytes with the right digest
    let mut early = right;
    early[0] ^= 1; // shares none of the leading bytes

    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut times: [Vec<u64>; 2] = [Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES)];
    for _ in 0..SAMPLES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let class = (state & 1) as usize;
        let candidate = if class == 0 { &late } else { &early };
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(bool::from(ct_eq::ct_eq(
                black_box(&right),
                black_box(candidate),
            )));
        }
        times[class].push(start.elapsed().as_nanos() as u64);
    }
    let [late_times, early_times] = &mut times;
    let t = welch_t(crop(late_times), crop(early_times));
    println!(
        "timing: digest comparison, 31 shared bytes vs none: t = {t:.2} over {SAMPLES} samples of {BATCH} (leak if |t| > {THRESHOLD})"
    );
    if t.abs() > THRESHOLD {
        eprintln!("timing: the comparison's time depends on the digest prefix");
        std::process::exit(1);
    }
}

/// The samples below the 90th percentile.
fn crop(v: &mut [u64]) -> &[u64] {
    v.sort_unstable();
    let keep = v.len() * 9 / 10;
    &v[..keep]
}

fn welch_t(a: &[u64], b: &[u64]) -> f64 {
    let stats = |v: &[u64]| {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let (na, ma, va) = stats(a);
    let (nb, mb, vb) = stats(b);
    (ma - mb) / (va / na + vb / nb).sqrt()
}
