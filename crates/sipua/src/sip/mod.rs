//! SIP helpers below the call and account logic: messages, URIs, digest authentication with
//! its one challenge loop, log masking, the guard in front of the parser, and the message
//! fix-ups (remote target, Via `received`). Nothing here knows calls, accounts or the endpoint.

pub(crate) mod auth;
pub(crate) mod digest;
pub(crate) mod guard;
pub(crate) mod inspectors;
pub(crate) mod mask;
pub(crate) mod message;
pub(crate) mod remote_target;
pub(crate) mod uri;
pub(crate) mod via_received;
