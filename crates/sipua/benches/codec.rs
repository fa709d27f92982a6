//! Codec hot path: one 20 ms frame (160 samples at 8 kHz for G.711, 320 at 16 kHz for G.722).
//! Also compares table-driven G.711 encoding with the computed segment search.
//!
//! `cargo bench -p sipua --bench codec`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sipua::media::codec::{
    alaw_decode_into, alaw_encode, alaw_encode_computed, alaw_encode_into, ulaw_decode_into,
    ulaw_encode, ulaw_encode_computed, ulaw_encode_into, AudioCodec, Decoder, Encoder,
};
use sipua::media::tone::{Amplitude, ToneGenerator};

fn speechlike(rate: u32, len: usize) -> Vec<i16> {
    let mut pcm = vec![0i16; len];
    ToneGenerator::dual(rate, 440.0, 1250.0, Amplitude::Dbfs(-12.0)).fill(&mut pcm);
    pcm
}

fn g711(c: &mut Criterion) {
    let pcm = speechlike(8000, 160);
    let mut bytes = [0u8; 160];
    let mut out = [0i16; 160];
    let mut g = c.benchmark_group("g711_frame160");
    g.throughput(Throughput::Elements(160));
    g.bench_function("ulaw_encode_table", |b| {
        b.iter(|| ulaw_encode_into(black_box(&pcm), black_box(&mut bytes)))
    });
    g.bench_function("ulaw_encode_computed", |b| {
        b.iter(|| {
            for (o, &s) in bytes.iter_mut().zip(black_box(&pcm)) {
                *o = ulaw_encode_computed(s);
            }
            black_box(&bytes);
        })
    });
    g.bench_function("ulaw_encode_table_scalar_loop", |b| {
        b.iter(|| {
            for (o, &s) in bytes.iter_mut().zip(black_box(&pcm)) {
                *o = ulaw_encode(s);
            }
            black_box(&bytes);
        })
    });
    g.bench_function("alaw_encode_table", |b| {
        b.iter(|| alaw_encode_into(black_box(&pcm), black_box(&mut bytes)))
    });
    g.bench_function("alaw_encode_computed", |b| {
        b.iter(|| {
            for (o, &s) in bytes.iter_mut().zip(black_box(&pcm)) {
                *o = alaw_encode_computed(s);
            }
            black_box(&bytes);
        })
    });
    g.bench_function("alaw_encode_table_scalar_loop", |b| {
        b.iter(|| {
            for (o, &s) in bytes.iter_mut().zip(black_box(&pcm)) {
                *o = alaw_encode(s);
            }
            black_box(&bytes);
        })
    });
    ulaw_encode_into(&pcm, &mut bytes);
    g.bench_function("ulaw_decode", |b| {
        b.iter(|| ulaw_decode_into(black_box(&bytes), black_box(&mut out)))
    });
    alaw_encode_into(&pcm, &mut bytes);
    g.bench_function("alaw_decode", |b| {
        b.iter(|| alaw_decode_into(black_box(&bytes), black_box(&mut out)))
    });
    g.finish();
}

fn streams(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_frame20ms");
    for codec in AudioCodec::ALL {
        let n = codec.samples_per_frame(20);
        let pcm = speechlike(codec.sample_rate(), n);
        let mut enc = Encoder::new(codec);
        let mut dec = Decoder::new(codec);
        let mut payload = vec![0u8; codec.encoded_len(n)];
        let mut out = vec![0i16; n];
        g.bench_function(format!("{}_encode", codec.name()), |b| {
            b.iter(|| enc.encode_into(black_box(&pcm), black_box(&mut payload)))
        });
        g.bench_function(format!("{}_decode", codec.name()), |b| {
            b.iter(|| dec.decode_into(black_box(&payload), black_box(&mut out)))
        });
    }
    g.finish();
}

criterion_group!(benches, g711, streams);
criterion_main!(benches);
