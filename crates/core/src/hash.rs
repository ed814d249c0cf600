//! The stable hash behind every "which bucket is this customer in" decision:
//! experiment arms, the generator's simulated treatment effects and
//! partitions of the data. FNV-1a over the salt, a zero byte and the key,
//! finished with SplitMix64's mixer.
//!
//! Why not `std::hash`: its `DefaultHasher` is allowed to change between
//! Rust releases and is randomly keyed per process in `HashMap`; an arm or a
//! partition must be the same in every process, on every machine, forever,
//! and reproducible from the documented formula in another language (the
//! Python package and the Spark job compute the same numbers).

/// 64 well-mixed bits of `(salt, key)`.
pub fn stable_u64(salt: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `(salt, key)` as a number uniform in `[0, 1)` (the top 53 bits).
pub fn stable_unit(salt: &str, key: &str) -> f64 {
    (stable_u64(salt, key) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_fixed_forever() {
        // These numbers are part of the contract: arms already assigned and
        // partitions already written depend on them.
        assert_eq!(stable_u64("", ""), 0x25fc_6dd3_6ce0_4b20);
        let u = stable_unit("retention-2025", "C000001");
        assert!((0.0..1.0).contains(&u));
        assert_eq!(u, stable_unit("retention-2025", "C000001"));
        assert_ne!(stable_u64("a", "bc"), stable_u64("ab", "c"));
        // The same numbers as the Python peers' implementation
        // (bench/peers/flat_quality.py).
        assert_eq!(stable_u64("split-42", ""), 0x7d35_b0e2_1371_de23);
        assert_eq!(stable_u64("split-42", "7590-VHVEG"), 0xba51_de6f_5e40_ff5e);
        assert_eq!(stable_u64("split-42", "768805383"), 0xbebc_b096_f04e_c0af);
        assert_eq!(stable_u64("split-7", "0191-ZHSKZ"), 0x5565_32c4_4052_b159);
    }

    #[test]
    fn units_are_roughly_uniform() {
        let n = 20_000;
        let below: usize = (0..n)
            .filter(|i| stable_unit("exp", &format!("C{i:06}")) < 0.1)
            .count();
        let share = below as f64 / n as f64;
        assert!((share - 0.1).abs() < 0.01, "{share}");
    }
}
