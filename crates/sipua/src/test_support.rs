//! Helpers for the unit tests only.

/// Byte strings of every length below `max_len`, drawn from `alphabet` by a xorshift generator
/// seeded with `seed`: cheap deterministic fuzz input for the parsers' never-panic tests.
pub(crate) fn byte_soup(
    seed: u64,
    max_len: usize,
    alphabet: &[u8],
) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut state = seed;
    (0..max_len).map(move |len| {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect()
    })
}

/// The bytes of `tests/fixtures/<name>.dat` (e.g. `rfc4475/wsinv`): the RFCs' messages.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.dat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
