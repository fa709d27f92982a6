//! SIP helpers below the call and account logic: messages, URIs, digest authentication with
//! its one challenge loop, log masking, the SIP message trace, the guard in front of the parser, the message fix-ups
//! (remote target, Via `received`, the SDP answer of an ACK) chained by `inspect`, what a Via
//! says of our public address (rport), REFER's sipfrag bodies and RFC 3891 Replaces. Nothing
//! here knows calls, accounts or the endpoint.

pub(crate) mod auth;
pub(crate) mod conformance;
pub(crate) mod digest;
pub(crate) mod guard;
pub(crate) mod hangup_headers;
pub(crate) mod inspect;
pub(crate) mod late_answer;
pub(crate) mod mask;
pub(crate) mod message;
pub(crate) mod normalize;
pub(crate) mod quoted;
pub(crate) mod remote_target;
pub(crate) mod replaces;
pub(crate) mod rfc2543;
pub(crate) mod rport;
pub(crate) mod sipfrag;
pub(crate) mod trace;
pub(crate) mod uri;
pub(crate) mod via_received;
