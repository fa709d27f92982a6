//! The napi binding: the only Rust that knows Node. It converts values and forwards engine
//! events; every decision lives in the `sipua` engine crate.
#![deny(clippy::all)]

#[napi_derive::napi]
pub fn engine_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
