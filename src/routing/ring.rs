//! Consistent-hash ring: a Maglev lookup table (Eisenbud et al., NSDI 2016) keyed by xxh3.
//!
//! The control plane builds a [`Ring`] from the backend set and sends a copy to every core; the
//! data path only calls [`Ring::lookup`]: one multiply-shift and one table read.
//!
//! Sizing the table (`M` slots):
//! - Balance. Maglev fills the table round-robin, so every backend owns `floor(M/N)` or
//!   `ceil(M/N)` slots and its share is off from `1/N` by less than `N/M` (relative); `M >= 100 N`
//!   keeps that under 1%.
//! - Disruption. Maglev is not minimally disruptive: when one backend comes or goes, besides its
//!   own `1/N` of the keys some keys move between the others. That excess shrinks as `M` grows;
//!   for N <= 1000 it peaks near 0.75% of all keys at `M = 131_071` and near 0.55% at
//!   `M = 262_147`, against a budget of 1%.
//! - Stability. Changing `M` reshuffles every key, so one size serves the whole design range:
//!   `M = 262_147` for up to 2621 backends. Beyond that `M` steps through `TABLE_SIZES`, and
//!   each step is a full reshuffle.
//! - Memory. A slot is one byte while every backend index fits in one (N <= 256): 256 KiB, which
//!   stays in a core's L2 beside the requests; two bytes beyond (512 KiB at `M = 262_147`).
//!
//! Each backend's order of preference over the slots is pseudo-random rather than Maglev's
//! `offset + j * skip`; see `Walk`.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Table sizes, smallest first; a ring uses the first with `M >= 100 * N`. Any size works (the
/// primes are a habit from Maglev's linear walks). The last one covers the maximum of 65535
/// backends (16 MiB, far outside the design range).
const TABLE_SIZES: [usize; 6] = [262_147, 524_287, 1_048_573, 2_097_143, 4_194_301, 8_388_593];

/// Slots per backend at least; bounds the balance error by `1 / SLOTS_PER_BACKEND`.
const SLOTS_PER_BACKEND: usize = 100;

/// Seed for hashing a backend's name into its walk; changing it reshuffles every ring.
const SEED_WALK: u64 = 0x6f74_6c70_7761_6c6b; // "otlpwalk"

/// Seed for a key's failover probe sequence (see [`Ring::lookup_up`]).
const SEED_FAILOVER: u64 = 0x6f74_6c70_6661_696c; // "otlpfail"

/// Random probes per table slot before a claim gives up on chance (see [`Walk::claim`]).
const FUSE: usize = 64;

/// Marks an unfilled slot while building; never a backend index since N <= 65535.
const EMPTY: u16 = u16::MAX;

/// Why a ring cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    #[error("the backend set is empty")]
    Empty,
    #[error("too many backends: {0} (at most 65535)")]
    TooMany(usize),
}

/// An immutable Maglev table over a sorted, deduplicated backend set.
///
/// `Clone` is a deep copy (256 KiB for up to 256 backends, 512 KiB up to 2621); `Ring` is
/// `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Ring {
    backends: Vec<String>,
    table: Table,
}

/// The slot owners: a byte each while every backend index fits in one, else two.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Table {
    Narrow(Box<[u8]>),
    Wide(Box<[u16]>),
}

impl Table {
    fn new(wide: Box<[u16]>, backends: usize) -> Table {
        if backends <= 256 {
            // Every owner is a backend index below 256.
            Table::Narrow(wide.iter().map(|&owner| owner as u8).collect())
        } else {
            Table::Wide(wide)
        }
    }

    #[inline]
    fn len(&self) -> usize {
        match self {
            Table::Narrow(t) => t.len(),
            Table::Wide(t) => t.len(),
        }
    }

    #[inline]
    fn owner(&self, slot: usize) -> usize {
        match self {
            Table::Narrow(t) => usize::from(t[slot]),
            Table::Wide(t) => usize::from(t[slot]),
        }
    }
}

impl Ring {
    /// Builds from a set of backend names; order and duplicates are ignored.
    pub fn new<S: AsRef<str>>(backends: &[S]) -> Result<Ring, RingError> {
        let backends = normalize(backends);
        if backends.is_empty() {
            return Err(RingError::Empty);
        }
        if backends.len() > usize::from(EMPTY) {
            return Err(RingError::TooMany(backends.len()));
        }
        let table = Table::new(populate(&backends, table_size(backends.len())), backends.len());
        Ok(Ring { backends, table })
    }

    /// The backends, sorted and deduplicated; `lookup` returns indexes into this slice.
    pub fn backends(&self) -> &[String] {
        &self.backends
    }

    /// Number of backends (never 0).
    pub fn len(&self) -> usize {
        self.backends.len()
    }

    /// Always false: a ring has at least one backend.
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The owner of a 64-bit key hash, as an index into [`Ring::backends`].
    ///
    /// Multiply-shift maps the hash onto `0..M` without a division; the only branches are
    /// the slot width (fixed per ring) and the bounds check, both perfectly predicted.
    #[inline]
    pub fn lookup(&self, hash: u64) -> usize {
        let slot = (u128::from(hash) * self.table.len() as u128) >> 64;
        self.table.owner(slot as usize)
    }

    /// The owner of `hash` among the backends for which `up(index)` holds: the usual owner
    /// when it is up, else the owner of the first slot up on the key's own probe sequence
    /// (slots picked by re-hashing the key with the attempt number). Deterministic for a given
    /// set of backends down, so every core and gateway agrees; keys of backends that are up
    /// never move, and a down backend's keys spread over the others in proportion to their
    /// shares. Allocation-free: expected `1 / (1 - down share)` probes, at most 64 before a
    /// scan of the backends in index order. `None` when no backend is up.
    pub fn lookup_up(&self, hash: u64, up: impl Fn(usize) -> bool) -> Option<usize> {
        let owner = self.lookup(hash);
        if up(owner) {
            return Some(owner);
        }
        let rehash = |i: u64| xxh3_64_with_seed(&hash.to_le_bytes(), SEED_FAILOVER ^ i);
        let probed = (1..=64).map(|i| self.lookup(rehash(i))).find(|&b| up(b));
        probed.or_else(|| (0..self.backends.len()).find(|&b| up(b)))
    }

    /// Fraction of the table each backend owns, indexed like `backends()` (for status/metrics).
    pub fn shares(&self) -> Vec<f64> {
        let mut counts = vec![0usize; self.backends.len()];
        for slot in 0..self.table.len() {
            counts[self.table.owner(slot)] += 1;
        }
        let m = self.table.len() as f64;
        counts.into_iter().map(|c| c as f64 / m).collect()
    }
}

/// The key hash used everywhere a routing key is hashed: xxh3-64 of the key bytes.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Sorted, deduplicated owned names: the ring depends only on the set.
fn normalize<S: AsRef<str>>(backends: &[S]) -> Vec<String> {
    let mut names: Vec<String> = backends.iter().map(|b| b.as_ref().to_owned()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The first table size with at least `SLOTS_PER_BACKEND` slots per backend.
fn table_size(n: usize) -> usize {
    let wanted = n.saturating_mul(SLOTS_PER_BACKEND);
    let fits = TABLE_SIZES.iter().copied().find(|&m| m >= wanted);
    fits.unwrap_or(TABLE_SIZES[TABLE_SIZES.len() - 1])
}

/// A backend's preference order over the table: a pseudo-random slot sequence, SplitMix64
/// seeded by xxh3 of the backend's name (never its position, so it keeps its order when others
/// come and go). The first visits to each slot form a random permutation, which is what Maglev
/// asks for.
///
/// Why not Maglev's `offset + j * skip (mod M)`: two backends with `p * skip_a = q * skip_b`
/// (mod M) for small `p, q` walk in lockstep and fight over the same slots, and removing one of
/// them moves many keys between the others. At N = 16 one set in 100 moved 1.02% extra keys.
struct Walk {
    state: u64,
}

impl Walk {
    fn new(name: &str) -> Walk {
        Walk { state: xxh3_64_with_seed(name.as_bytes(), SEED_WALK) }
    }

    /// The next slot of `0..m` in this backend's order (SplitMix64, then multiply-shift).
    fn next_slot(&mut self, m: usize) -> usize {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((u128::from(z ^ (z >> 31)) * m as u128) >> 64) as usize
    }

    /// Claims the backend's next preferred slot that is still empty; the table must have one.
    ///
    /// A probe finds the last empty slot with probability `1/M`, so `FUSE * M` probes fail with
    /// probability `e^-FUSE`; past that, the first empty slot makes sure building ends.
    fn claim(&mut self, table: &mut [u16], owner: u16) {
        for _ in 0..FUSE * table.len() {
            let slot = self.next_slot(table.len());
            if table[slot] == EMPTY {
                table[slot] = owner;
                return;
            }
        }
        if let Some(slot) = table.iter().position(|&o| o == EMPTY) {
            table[slot] = owner;
        }
    }
}

/// Maglev population: backends take turns claiming their next preferred empty slot.
///
/// Taking turns is what bounds every backend to `floor(M/N)` or `ceil(M/N)` slots. Expected
/// cost is about `M ln M` probes (3.4 million for `M = 262_147`, a few ms): control plane only.
fn populate(backends: &[String], m: usize) -> Box<[u16]> {
    let mut walks: Vec<Walk> = backends.iter().map(|b| Walk::new(b)).collect();
    let mut table = vec![EMPTY; m].into_boxed_slice();
    let mut filled = 0;
    while filled < m {
        for (owner, walk) in (0u16..).zip(walks.iter_mut()) {
            walk.claim(&mut table, owner);
            filled += 1;
            if filled == m {
                break;
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// `n` distinct "host:port" names, reproducible from `seed`, in random order.
    fn names(n: usize, seed: u64) -> Vec<String> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut set = BTreeSet::new();
        while set.len() < n {
            let (a, b, c) = (rng.u8(..), rng.u8(..), rng.u8(..));
            set.insert(format!("10.{a}.{b}.{c}:{}", rng.u16(1024..)));
        }
        let mut names: Vec<String> = set.into_iter().collect();
        rng.shuffle(&mut names);
        names
    }

    /// One-byte slots are a storage choice only: every slot keeps its owner from the two-byte
    /// table the ring was built as, so a ring routes the same on either side of N = 256.
    #[test]
    fn narrow_slots_keep_the_owners_of_the_wide_table() {
        for n in [1, 3, 256, 257] {
            let ring = Ring::new(&names(n, 7)).unwrap();
            let wide = populate(ring.backends(), table_size(n));
            assert_eq!(matches!(ring.table, Table::Narrow(_)), n <= 256, "N={n}");
            assert_eq!(ring.table.len(), wide.len());
            assert!((0..wide.len()).all(|i| ring.table.owner(i) == usize::from(wide[i])), "N={n}");
        }
    }

    /// Largest relative deviation of a backend's share from `1/N`.
    fn max_share_deviation(ring: &Ring) -> f64 {
        let n = ring.len() as f64;
        let dev = |s: &f64| (s * n - 1.0).abs();
        ring.shares().iter().map(dev).fold(0.0, f64::max)
    }

    fn owner(ring: &Ring, hash: u64) -> &str {
        &ring.backends()[ring.lookup(hash)]
    }

    /// Fraction of the key space whose owner differs, counted slot by slot (same `M`).
    fn moved_in_table(a: &Ring, b: &Ring) -> f64 {
        assert_eq!(a.table.len(), b.table.len());
        let slot_owner = |r: &Ring, i: usize| r.table.owner(i);
        let differs = |&i: &usize| a.backends[slot_owner(a, i)] != b.backends[slot_owner(b, i)];
        let moved = (0..a.table.len()).filter(differs).count();
        moved as f64 / a.table.len() as f64
    }

    /// Fraction of `count` random 16-byte trace ids whose owner differs.
    fn moved_keys(a: &Ring, b: &Ring, count: usize, seed: u64) -> f64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let hashes = (0..count).map(|_| hash_key(&rng.u128(..).to_le_bytes()));
        let moved = hashes.filter(|&h| owner(a, h) != owner(b, h)).count();
        moved as f64 / count as f64
    }

    /// Removes one backend (picked by `pick`) and checks both directions against `1/N + 1%`,
    /// where N is the larger set: the strict reading of the bound.
    fn check_remap(n: usize, seed: u64, pick: usize) -> (f64, f64) {
        let big = names(n, seed);
        let mut small = big.clone();
        small.remove(pick % n);
        let (rb, rs) = (Ring::new(&big).unwrap(), Ring::new(&small).unwrap());
        let bound = 1.0 / n as f64 + 0.01;
        let in_table = moved_in_table(&rb, &rs);
        let in_keys = moved_keys(&rs, &rb, 200_000, seed);
        assert!(in_table <= bound, "N={n}: table moved {in_table} > {bound}");
        assert!(in_keys <= bound, "N={n}: keys moved {in_keys} > {bound}");
        (in_table, in_keys)
    }

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let a = Ring::new(&["b:1", "a:1", "c:1"]).unwrap();
        let b = Ring::new(&["c:1", "a:1", "b:1", "a:1", "c:1"]).unwrap();
        assert_eq!(a.backends(), ["a:1", "b:1", "c:1"]);
        assert_eq!(a.backends(), b.backends());
        assert_eq!(a.table, b.table);
        let mut rng = fastrand::Rng::with_seed(1);
        for h in std::iter::repeat_with(|| rng.u64(..)).take(10_000) {
            assert_eq!(a.lookup(h), b.lookup(h));
        }
    }

    #[test]
    fn single_backend_owns_everything() {
        let ring = Ring::new(&[String::from("only:4317")]).unwrap();
        assert_eq!(ring.len(), 1);
        assert!(!ring.is_empty());
        assert_eq!(ring.shares(), [1.0]);
        for h in [0, 1, u64::MAX / 2, u64::MAX] {
            assert_eq!(ring.lookup(h), 0);
        }
    }

    #[test]
    fn errors() {
        assert_eq!(Ring::new::<&str>(&[]).unwrap_err(), RingError::Empty);
        let many: Vec<String> = (0..65_536).map(|i| format!("h{i}:1")).collect();
        assert_eq!(Ring::new(&many).unwrap_err(), RingError::TooMany(65_536));
        let dup: Vec<String> = (0..70_000).map(|i| format!("h{}:1", i % 3)).collect();
        assert_eq!(Ring::new(&dup).unwrap().len(), 3);
    }

    #[test]
    fn lookup_covers_the_whole_table() {
        let ring = Ring::new(&names(7, 3)).unwrap();
        let m = ring.table.len() as u64;
        assert_eq!(ring.lookup(0), ring.table.owner(0));
        assert_eq!(ring.lookup(u64::MAX), ring.table.owner(ring.table.len() - 1));
        // The last slot starts at ceil((M - 1) * 2^64 / M); one hash lower is the slot before.
        let first_of_last = ((u128::from(m - 1) << 64).div_ceil(u128::from(m))) as u64;
        let last = |i: u64| ring.table.owner(i as usize);
        assert_eq!(ring.lookup(first_of_last), last(m - 1));
        assert_eq!(ring.lookup(first_of_last - 1), last(m - 2));
    }

    #[test]
    fn hash_key_is_xxh3_64() {
        let key = [7u8; 16];
        assert_eq!(hash_key(&key), xxh3_64(&key));
    }

    #[test]
    fn table_sizes_are_big_enough() {
        for n in [1, 2, 1000, 2621, 2622, 65_535] {
            assert!(table_size(n) >= 100 * n, "N={n}");
        }
        // One size for the whole design range: growing the set never reshuffles below 2622.
        assert_eq!(table_size(2), table_size(2621));
    }

    #[test]
    fn balance_at_fixed_sizes() {
        for (i, n) in [2, 3, 10, 300, 1000].into_iter().enumerate() {
            let ring = Ring::new(&names(n, i as u64)).unwrap();
            assert_eq!(ring.len(), n);
            let dev = max_share_deviation(&ring);
            assert!(dev < 0.01, "N={n}: share off by {dev}");
        }
    }

    /// The OpenTelemetry Collector's CRC32 ring reaches 3.5x between largest and smallest share
    /// at 300 backends; Maglev stays within one slot.
    #[test]
    fn max_min_ratio_at_300() {
        let shares = Ring::new(&names(300, 300)).unwrap().shares();
        let max = shares.iter().copied().fold(0.0, f64::max);
        let min = shares.iter().copied().fold(1.0, f64::min);
        assert!(max / min < 1.03, "max/min = {}", max / min);
    }

    #[test]
    fn remap_at_fixed_sizes() {
        for (i, n) in [2, 3, 10, 300, 1000].into_iter().enumerate() {
            check_remap(n, 100 + i as u64, n / 2);
        }
    }

    /// With Maglev's linear walks (offset and skip from xxh3 with two seeds, M = 262147),
    /// removing 10.224.102.157 moved 1.02% extra keys: 10.245.137.141 had `5 * its skip =
    /// 4 * the removed one's skip`, so the two walked in lockstep.
    #[test]
    fn correlated_walks_regression() {
        let set = [
            "10.146.171.231:4317",
            "10.150.133.119:4317",
            "10.150.208.217:4317",
            "10.159.8.217:4317",
            "10.169.0.137:4317",
            "10.18.76.53:4317",
            "10.21.12.48:4317",
            "10.224.102.157:4317",
            "10.231.35.118:4317",
            "10.245.137.141:4317",
            "10.68.97.238:4317",
            "10.70.197.25:4317",
            "10.75.176.194:4317",
            "10.80.230.63:4317",
            "10.89.11.42:4317",
            "10.93.190.148:4317",
        ];
        let rest: Vec<&str> = set.iter().copied().filter(|&b| b != "10.224.102.157:4317").collect();
        let moved = moved_in_table(&Ring::new(&set).unwrap(), &Ring::new(&rest).unwrap());
        assert!(moved - 1.0 / 16.0 < 0.005, "moved {moved}");
    }

    #[test]
    fn lookup_up_moves_only_the_down_backends_keys_and_spreads_them() {
        let ring = Ring::new(&names(10, 7)).unwrap();
        let down = 3;
        let mut moved_to = vec![0usize; 10];
        for i in 0..100_000u64 {
            let h = hash_key(&i.to_le_bytes());
            let got = ring.lookup_up(h, |b| b != down).unwrap();
            assert_eq!(got, ring.lookup_up(h, |b| b != down).unwrap(), "deterministic");
            match ring.lookup(h) {
                owner if owner == down => moved_to[got] += 1,
                owner => assert_eq!(got, owner, "keys of backends that are up stay"),
            }
        }
        assert_eq!(moved_to[down], 0);
        let moved: usize = moved_to.iter().sum();
        assert!(
            moved_to.iter().enumerate().filter(|(b, _)| *b != down).all(|(_, &n)| n > moved / 9 / 2),
            "{moved_to:?}"
        );
        assert_eq!(ring.lookup_up(1, |_| false), None);
        assert_eq!(ring.lookup_up(1, |b| b == 9), Some(9), "the last one up takes everything");
    }

    #[test]
    fn ring_is_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Ring>();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn prop_balance(n in 2usize..=1000, seed in any::<u64>()) {
            let ring = Ring::new(&names(n, seed)).unwrap();
            let dev = max_share_deviation(&ring);
            prop_assert!(dev < 0.01, "N={}: share off by {}", n, dev);
        }

        #[test]
        fn prop_remap_one_backend(n in 2usize..=1000, seed in any::<u64>(), pick in any::<usize>()) {
            check_remap(n, seed, pick);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]

        #[test]
        fn prop_deterministic(n in 1usize..=1000, seed in any::<u64>()) {
            let a = names(n, seed);
            let mut b = a.clone();
            b.extend(a.iter().take(n / 3).cloned());
            fastrand::Rng::with_seed(!seed).shuffle(&mut b);
            let (ra, rb) = (Ring::new(&a).unwrap(), Ring::new(&b).unwrap());
            prop_assert_eq!(ra.backends(), rb.backends());
            prop_assert!(ra.table == rb.table);
            prop_assert_eq!(moved_keys(&ra, &rb, 10_000, seed), 0.0);
        }
    }

    /// Prints the balance and remap figures quoted in docs/ring-bench-notes.md. Slow; run with
    /// `cargo test --lib routing::ring::tests::figures -- --ignored --nocapture` (about 20 s).
    #[test]
    #[ignore]
    fn figures() {
        for n in [2, 3, 10, 100, 300, 1000] {
            let dev = (0..4).map(|s| max_share_deviation(&Ring::new(&names(n, s)).unwrap()));
            let dev = dev.fold(0.0, f64::max);
            let picks = (0..20).map(|p| check_remap(n, 1000 + p as u64, p * 7919));
            let (t, k) = picks.fold((0.0, 0.0), |(t, k), (x, y)| (f64::max(t, x), f64::max(k, y)));
            let ideal = 1.0 / n as f64;
            println!(
                "N={n} max_share_dev={dev:.5} 1/N={ideal:.5} moved_table={t:.5} moved_keys={k:.5} excess={:.5}",
                t - ideal
            );
        }
    }
}
