//! One Yuma Consensus epoch at 256 uids × 64 validators (issue 3).
//!
//! `cargo bench --bench yuma -- --warm-up-time 2 --measurement-time 5`
//!
//! Uids 0..64 are validators with distinct stakes; uids 64..256 are miners without stake. Every
//! validator weights about 95% of the miners (seeded random u16 weights) and holds the bonds of a
//! previous epoch, so the bench measures the steady state: consensus, clipping, bonds EMA,
//! dividends, over a weight matrix of about 64 × 182 entries.

use std::hint::black_box;

use connito::consensus::{EpochInput, YumaParams, epoch};
use criterion::{Criterion, criterion_group, criterion_main};

const UIDS: usize = 256;
const VALIDATORS: usize = 64;
const BLOCK: u64 = 10_000;

/// splitmix64: small, seeded, good enough for a benchmark's input.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, k: u64) -> u64 {
        self.next() % k
    }
}

fn input(seed: u64) -> EpochInput {
    let mut rng = SplitMix(seed);
    let stake: Vec<f64> = (0..UIDS)
        .map(|i| {
            if i < VALIDATORS {
                1_000.0 + rng.below(1_000_000) as f64
            } else {
                0.0
            }
        })
        .collect();
    let weights: Vec<Vec<(u16, u16)>> = (0..UIDS)
        .map(|i| {
            if i >= VALIDATORS {
                return Vec::new();
            }
            (VALIDATORS..UIDS)
                .filter_map(|j| {
                    let keep = rng.below(20) != 0;
                    let w = 1 + rng.below(65_535) as u16;
                    keep.then_some((j as u16, w))
                })
                .collect()
        })
        .collect();
    let params = YumaParams {
        max_validators: VALIDATORS,
        ..YumaParams::default()
    };
    let mut inp = EpochInput::new(
        stake,
        weights,
        vec![Vec::new(); UIDS],
        (0..UIDS)
            .map(|i| if i < VALIDATORS { BLOCK - 10 } else { 100 })
            .collect(),
        vec![10; UIDS],
        BLOCK,
        params,
    );
    // Steady state: last epoch's bonds as this epoch's input.
    inp.bonds = epoch(&inp).expect("valid input").bonds;
    inp
}

fn bench_epoch(c: &mut Criterion) {
    let inp = input(102);
    let mut group = c.benchmark_group("yuma_epoch");
    group.bench_function("256x64", |b| {
        b.iter(|| epoch(black_box(&inp)).expect("valid input"))
    });
    group.finish();
}

criterion_group!(benches, bench_epoch);
criterion_main!(benches);
