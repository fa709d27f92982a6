#![no_main]
// Bytes as they come off the network into sipua's parser; see sipua::fuzzing::rack.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sipua::fuzzing::rack(data));
