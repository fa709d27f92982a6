#![no_main]
// Bytes as they come off the network into sipua's parser; see sipua::fuzzing::sip_datagram.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sipua::fuzzing::sip_datagram(data));
