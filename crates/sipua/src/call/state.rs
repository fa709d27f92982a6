//! The call state machine, pure: the state after an input (see [`next_state`]), and the code
//! and reason of a dialog that ended without a final response saying why.

use crate::event::CallState;
use rsipstack::dialog::dialog::TerminatedReason;

/// What can happen to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// A provisional response to our INVITE (100, 180, 183...).
    Provisional(u16),
    /// A 2xx to our INVITE (ACK sent by the stack).
    Answered,
    /// We sent 200 to an incoming INVITE.
    LocalAnswer,
    /// The ACK for our 200 arrived.
    Ack,
    /// The call ended (final non-2xx, BYE, CANCEL, timeout).
    End,
}

/// The call state machine: the state after `input`, or `None` when the input does not apply
/// in `state` (e.g. a late 180 after the call was answered) and must be ignored.
pub(crate) fn next_state(state: CallState, input: Input) -> Option<CallState> {
    use CallState::*;
    match (state, input) {
        (Disconnected, _) => None,
        (_, Input::End) => Some(Disconnected),
        (Calling | Ringing | Early, Input::Provisional(code)) => match code {
            180..=182 => Some(Ringing),
            183 => Some(Early),
            _ => None,
        },
        (Calling | Ringing | Early, Input::Answered) => Some(Confirmed),
        (Incoming, Input::LocalAnswer) => Some(Connecting),
        (Connecting, Input::Ack) => Some(Confirmed),
        _ => None,
    }
}

/// Code and reason for a dialog that terminated without a final response telling us why.
pub(crate) fn termination_code(reason: &TerminatedReason) -> (u16, &'static str) {
    match reason {
        TerminatedReason::Timeout => (408, "Request Timeout"),
        TerminatedReason::UacCancel => (487, "Request Terminated"),
        TerminatedReason::UacBye | TerminatedReason::UasBye => (200, "Normal call clearing"),
        TerminatedReason::UacBusy | TerminatedReason::UasBusy => (486, "Busy Here"),
        TerminatedReason::UasDecline => (603, "Decline"),
        TerminatedReason::ProxyAuthRequired => (407, "Proxy Authentication Required"),
        TerminatedReason::ProxyError(c)
        | TerminatedReason::UacOther(c)
        | TerminatedReason::UasOther(c) => (c.code(), "Call failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::StatusCode;
    use CallState::*;

    #[test]
    fn outgoing_call_path() {
        assert_eq!(next_state(Calling, Input::Provisional(100)), None);
        assert_eq!(next_state(Calling, Input::Provisional(180)), Some(Ringing));
        assert_eq!(next_state(Ringing, Input::Provisional(183)), Some(Early));
        assert_eq!(next_state(Early, Input::Answered), Some(Confirmed));
        assert_eq!(next_state(Calling, Input::Answered), Some(Confirmed));
        assert_eq!(next_state(Confirmed, Input::Provisional(180)), None);
        assert_eq!(next_state(Confirmed, Input::End), Some(Disconnected));
    }

    #[test]
    fn incoming_call_path() {
        assert_eq!(next_state(Incoming, Input::LocalAnswer), Some(Connecting));
        assert_eq!(next_state(Connecting, Input::Ack), Some(Confirmed));
        assert_eq!(next_state(Incoming, Input::Ack), None);
        assert_eq!(next_state(Incoming, Input::End), Some(Disconnected));
        assert_eq!(next_state(Incoming, Input::Answered), None);
    }

    #[test]
    fn disconnected_is_final() {
        for input in [
            Input::Provisional(180),
            Input::Answered,
            Input::LocalAnswer,
            Input::Ack,
            Input::End,
        ] {
            assert_eq!(next_state(Disconnected, input), None);
        }
    }

    #[test]
    fn termination_codes() {
        assert_eq!(termination_code(&TerminatedReason::UacCancel).0, 487);
        assert_eq!(termination_code(&TerminatedReason::Timeout).0, 408);
        assert_eq!(
            termination_code(&TerminatedReason::UasOther(StatusCode::from(503))).0,
            503
        );
    }
}
