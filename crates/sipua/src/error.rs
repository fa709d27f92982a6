//! The engine's error type: every failure a caller can see, with a message that names the cause.

/// Errors returned by the engine's public API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing or out of range; the string names the field.
    #[error("invalid config: {0}")]
    Config(String),
    /// An argument of an API call is wrong (unknown account, malformed URI, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No call with this id is known (it may have ended already).
    #[error("no such call: {0}")]
    NoSuchCall(String),
    /// The call exists but is in a state where the operation makes no sense.
    #[error("{operation}: call {call_id} is {state}, not {expected}")]
    InvalidState {
        /// Our id of the call.
        call_id: String,
        /// Its state (`ringing`, `confirmed`, ...).
        state: String,
        /// What was asked of it (`hold`, `transfer`, ...).
        operation: String,
        /// The state (or states) the operation needs, e.g. `confirmed`.
        expected: String,
    },
    /// A call limit (`maxCalls` of the endpoint or of an account) is reached; the message
    /// names the account and the limit.
    #[error("{0}")]
    CallLimit(String),
    /// The RTP port range has no free pair left.
    #[error("RTP port range {min}-{max} exhausted")]
    PortsExhausted {
        /// Lowest port of the range.
        min: u16,
        /// Highest port of the range.
        max: u16,
    },
    /// A media operation failed: an unreadable WAV (the message has the path and reason), an
    /// unwritable recording, DTMF the peer cannot receive.
    #[error("{0}")]
    Media(String),
    /// The endpoint is not started or was stopped.
    #[error("the SIP endpoint is not running")]
    NotRunning,
    /// A socket could not be opened or used.
    #[error("transport error: {0}")]
    Transport(String),
    /// A SIP server's name did not resolve (RFC 3263 location: NAPTR, SRV, A/AAAA).
    #[error("cannot resolve {name}: {cause}")]
    Resolve {
        /// The host name looked up.
        name: String,
        /// Why nothing usable came back.
        cause: String,
    },
    /// A request got no response in time (the message names the request and the wait).
    #[error("{0}")]
    Timeout(String),
    /// The SIP stack reported an error.
    #[error("SIP error: {0}")]
    Sip(String),
}

impl From<rsipstack::Error> for Error {
    fn from(e: rsipstack::Error) -> Self {
        Error::Sip(e.to_string())
    }
}

impl From<rsipstack::sip::Error> for Error {
    fn from(e: rsipstack::sip::Error) -> Self {
        Error::Sip(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Transport(e.to_string())
    }
}

/// Result with the engine's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
