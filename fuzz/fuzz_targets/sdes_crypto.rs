#![no_main]
// Bytes as they come off the network (or from config) into sipua's parser; see sipua::fuzzing::sdes_crypto.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sipua::fuzzing::sdes_crypto(data));
