//! Consistent-hash ring benchmarks: lookup, key hashing, build and clone.
//!
//! Lookup times are reported per lookup: each sample runs a batch of `BATCH` precomputed random
//! hashes and divides the elapsed time by `BATCH`. "independent" lets the CPU overlap table reads
//! (the data path: a request's keys are independent); "dependent" feeds each result into the
//! next hash, so it measures the full latency of one table read. Each batch touches about
//! half of the 512 KiB table, which then sits in L2; the "l3" and "dram" variants rotate through
//! many rings so that table reads miss L2, or miss L3 as well.
// Tests, benches and binaries may unwrap: clippy.toml disallows it for the library.
#![allow(clippy::disallowed_methods)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use otlp_gateway::routing::ring::{Ring, hash_key};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Hashes per batch (32 KiB): touches 40% of a table's cache lines.
const BATCH: usize = 4096;

/// Rings to rotate through so that each batch finds its table evicted from L2: a batch touches
/// 3200 of the 8192 cache lines of a ring's table (200 KiB), so 16 rings touch 3.2 MiB, more
/// than a 1 MiB L2 and well within L3...
const L3_RINGS: usize = 16;
/// ...and 256 rings touch 50 MiB, more than a 32 MiB L3, so table reads mostly go to DRAM.
const DRAM_RINGS: usize = 256;

fn backends(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.0.{}.{}:4317", i / 256, i % 256)).collect()
}

fn random_hashes() -> Vec<u64> {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    (0..BATCH).map(|_| rng.u64(..)).collect()
}

/// Runs `batch` once per iteration and reports the time per element of the batch.
fn per_lookup(iters: u64, mut batch: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        batch();
    }
    start.elapsed() / BATCH as u32
}

fn lookup_independent(ring: &Ring, hashes: &[u64]) {
    for &h in hashes {
        black_box(ring.lookup(black_box(h)));
    }
}

/// Walks the batch in order but mixes each owner into the next hash (low bits only, so the slot
/// stays random): the next table read cannot start before the previous one returns.
fn lookup_dependent(ring: &Ring, hashes: &[u64]) {
    let mut owner = 0;
    for &h in hashes {
        owner = ring.lookup(black_box(h) ^ owner as u64);
    }
    black_box(owner);
}

fn bench_lookup(c: &mut Criterion) {
    let hashes = random_hashes();
    let mut group = c.benchmark_group("ring_lookup");
    for n in [3, 30, 1000] {
        let Ok(ring) = Ring::new(&backends(n)) else {
            return;
        };
        group.bench_with_input(BenchmarkId::new("independent", n), &ring, |b, r| {
            b.iter_custom(|iters| per_lookup(iters, || lookup_independent(r, &hashes)))
        });
        group.bench_with_input(BenchmarkId::new("dependent", n), &ring, |b, r| {
            b.iter_custom(|iters| per_lookup(iters, || lookup_dependent(r, &hashes)))
        });
    }
    group.finish();
}

/// `count` different rings of 1000 backends (each backend set gets its own name suffix).
fn many_rings(count: usize) -> Vec<Ring> {
    let set = |k: usize| -> Vec<String> { backends(1000).iter().map(|b| format!("{b}{k}")).collect() };
    (0..count).filter_map(|k| Ring::new(&set(k)).ok()).collect()
}

/// Lookups in N = 1000 rings whose tables were evicted from L2 (or also L3) since last use.
fn bench_lookup_cold(c: &mut Criterion) {
    let hashes = random_hashes();
    for (group, count) in [("ring_lookup_l3", L3_RINGS), ("ring_lookup_dram", DRAM_RINGS)] {
        let rings = many_rings(count);
        let mut group = c.benchmark_group(group);
        type Run = fn(&Ring, &[u64]);
        for (name, run) in [("independent", lookup_independent as Run), ("dependent", lookup_dependent)] {
            let mut next = rings.iter().cycle();
            group.bench_function(BenchmarkId::new(name, 1000), |b| {
                b.iter_custom(|iters| per_lookup(iters, || next.next().map_or((), |r| run(r, &hashes))))
            });
        }
        group.finish();
    }
}

fn bench_hash_key(c: &mut Criterion) {
    let trace_id: [u8; 16] = *b"\x5b\x8e\xfa\xf4\x2b\x1d\x8c\x3e\x9a\x0f\x4d\x61\x7c\x22\xe5\x90";
    c.bench_function("hash_key/trace_id_16B", |b| b.iter(|| hash_key(black_box(&trace_id))));
}

fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_build");
    group.sample_size(20);
    for n in [3, 1000] {
        let names = backends(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &names, |b, names| {
            b.iter(|| Ring::new(black_box(names)))
        });
    }
    group.finish();
}

/// What the control plane pays per core when it hands out a new ring.
fn bench_clone(c: &mut Criterion) {
    let Ok(ring) = Ring::new(&backends(1000)) else {
        return;
    };
    c.bench_function("ring_clone/1000", |b| b.iter(|| black_box(&ring).clone()));
}

criterion_group!(benches, bench_lookup, bench_lookup_cold, bench_hash_key, bench_build, bench_clone);
criterion_main!(benches);
