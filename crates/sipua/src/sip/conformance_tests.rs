//! The RFC 4475 §3 and RFC 5118 messages, byte-exact from `tests/fixtures`, through the guard:
//! what a UAS must answer to each.

use crate::sip::guard::{bad_request_for, classify, reply_for, Verdict, MAX_DATAGRAM};
use crate::test_support::fixture;

/// What the guard must do with one message.
#[derive(Debug, PartialEq)]
enum Want {
    /// Goes to the stack, which answers it normally (a response goes to its transaction).
    Pass,
    /// Answered here with this code.
    Answer(u16),
    /// Dropped and counted, no answer (a response, or nothing to route an answer with).
    Silent,
}
use Want::*;

const CASES: &[(&str, Want)] = &[
    // §3.1.1 valid
    ("rfc4475/wsinv", Pass),
    ("rfc4475/intmeth", Answer(501)),
    ("rfc4475/esc01", Pass),
    ("rfc4475/escnull", Answer(405)),
    ("rfc4475/esc02", Answer(501)),
    ("rfc4475/lwsdisp", Pass),
    ("rfc4475/longreq", Pass),
    ("rfc4475/dblreq", Answer(405)),
    ("rfc4475/semiuri", Pass),
    ("rfc4475/transports", Pass),
    ("rfc4475/noreason", Pass),
    ("rfc4475/unreason", Pass),
    ("rfc4475/mpart01", Answer(405)),
    // §3.1.2 invalid
    ("rfc4475/badinv01", Answer(400)),
    ("rfc4475/clerr", Answer(400)),
    ("rfc4475/ncl", Answer(400)),
    ("rfc4475/scalar02", Answer(400)),
    ("rfc4475/scalarlg", Silent),
    ("rfc4475/quotbal", Answer(400)),
    ("rfc4475/ltgtruri", Answer(400)),
    ("rfc4475/lwsruri", Answer(400)),
    ("rfc4475/lwsstart", Answer(400)),
    ("rfc4475/trws", Answer(400)),
    ("rfc4475/escruri", Answer(400)),
    ("rfc4475/baddate", Pass),
    ("rfc4475/regbadct", Answer(400)),
    ("rfc4475/badaspec", Answer(400)),
    ("rfc4475/baddn", Answer(400)),
    ("rfc4475/badvers", Answer(505)),
    ("rfc4475/mismatch01", Answer(400)),
    ("rfc4475/mismatch02", Answer(400)),
    ("rfc4475/bigcode", Silent),
    // §3.2, §3.3 application layer
    ("rfc4475/badbranch", Pass),
    ("rfc4475/insuf", Silent),
    ("rfc4475/unkscm", Answer(416)),
    ("rfc4475/novelsc", Answer(416)),
    ("rfc4475/unksm2", Answer(405)),
    ("rfc4475/bext01", Answer(420)),
    ("rfc4475/invut", Answer(415)),
    ("rfc4475/regaut01", Answer(405)),
    ("rfc4475/multi01", Answer(400)),
    ("rfc4475/mcl01", Answer(400)),
    ("rfc4475/zeromf", Pass),
    ("rfc4475/cparam01", Answer(405)),
    ("rfc4475/cparam02", Answer(405)),
    ("rfc4475/regescrt", Answer(405)),
    ("rfc4475/sdp01", Answer(406)),
    // §3.4 RFC 2543
    ("rfc4475/inv2543", Pass),
    // RFC 5118 §4 (REGISTER: we are no registrar, 405 before the stack sees the IPv6 hosts)
    ("rfc5118/ipv6-good", Answer(405)),
    ("rfc5118/ipv6-bad", Answer(400)),
    ("rfc5118/port-ambiguous", Answer(405)),
    ("rfc5118/port-unambiguous", Answer(405)),
    ("rfc5118/via-received-param-with-delim", Pass),
    ("rfc5118/via-received-param-no-delim", Pass),
    ("rfc5118/ipv6-in-sdp", Pass),
    ("rfc5118/mult-ip-in-header", Pass),
    ("rfc5118/mult-ip-in-sdp", Pass),
    ("rfc5118/ipv4-mapped-ipv6", Pass),
    ("rfc5118/ipv6-bug-abnf-3-colons", Pass),
    ("rfc5118/ipv6-correct-abnf-2-colons", Pass),
];

/// The guard's outcome for one message, as a UAS on the wire would see it.
fn outcome(packet: &[u8]) -> (Want, Option<String>) {
    match classify(packet, MAX_DATAGRAM) {
        Verdict::Pass => (Pass, None),
        Verdict::Refuse(r) => match reply_for(packet, &r) {
            Some(reply) => (Answer(r.code), Some(reply)),
            None => (Silent, None),
        },
        Verdict::Drop(why) => match bad_request_for(packet, why) {
            Some(reply) => (Answer(400), Some(reply)),
            None => (Silent, None),
        },
    }
}

#[test]
fn every_rfc_message_gets_the_rfcs_answer_and_every_answer_parses() {
    let mut wrong = Vec::new();
    for (name, want) in CASES {
        let (got, reply) = outcome(&fixture(name));
        if got != *want {
            wrong.push(format!("{name}: want {want:?}, got {got:?}"));
        }
        if let Some(reply) = reply {
            let parsed = rsipstack::sip::SipMessage::try_from(reply.as_str());
            assert!(
                parsed.is_ok(),
                "{name}: our answer does not parse:\n{reply}"
            );
            assert!(reply.contains(";tag="), "{name}: answer without To tag");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn refusals_carry_the_headers_the_rfc_names() {
    let reply = |name: &str| outcome(&fixture(name)).1.unwrap();
    assert!(reply("rfc4475/bext01")
        .contains("Unsupported: nothingSupportsThis, nothingSupportsThisEither\r\n"));
    assert!(!reply("rfc4475/bext01").contains("noProxiesSupportThis"));
    assert!(reply("rfc4475/invut").contains("Accept: application/sdp\r\n"));
    assert!(reply("rfc4475/sdp01").contains("Accept: application/sdp\r\n"));
    assert!(reply("rfc4475/intmeth").contains("Allow: INVITE,"));
    assert!(reply("rfc4475/escnull").contains("Allow: INVITE,"));
    assert!(reply("rfc4475/badvers").starts_with("SIP/2.0 505 "));
}
