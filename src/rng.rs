//! A tiny deterministic PRNG (SplitMix64). Seeds are always arguments; nothing here reads the
//! clock or the OS.

#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately normal (Irwin–Hall of 4), mean 0, std 1.
    pub fn normal_f32(&mut self) -> f32 {
        let s: f64 = (0..4).map(|_| self.unit_f64()).sum();
        ((s - 2.0) * (3.0f64).sqrt()) as f32
    }
}

/// Mixes several words into one seed.
pub fn mix(parts: &[u64]) -> u64 {
    let mut r = SplitMix64::new(0x636f_6e6e_6974_6f00);
    let mut acc = 0u64;
    for p in parts {
        r = SplitMix64::new(r.next_u64() ^ p);
        acc = r.next_u64();
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = SplitMix64::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = SplitMix64::new(7);
        let b: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(SplitMix64::new(8).next_u64(), a[0]);
    }

    #[test]
    fn mix_depends_on_order() {
        assert_ne!(mix(&[1, 2]), mix(&[2, 1]));
        assert_eq!(mix(&[1, 2]), mix(&[1, 2]));
    }
}
