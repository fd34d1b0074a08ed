//! From a datagram to a [`Notification`] in SNMPv2 form, with snmp2's decoder (fuzzed: errors, never panics).
//! v1 and v2c messages decode without keys; a v3 message's header is read first ([`v3_header`]) so the
//! receiver can pick the credentials of the sender's user and localize them to the sender's engineID, then
//! [`decode_v3`] authenticates and decrypts it.

use super::classify::{SNMP_TRAP_OID_0, v1_to_v2_varbinds, v1_trap_oid};
use crate::snmp::{Oid, Value};
use snmp2::{AsnReader, MessageType, Pdu, v3};
use std::net::IpAddr;

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_IP_ADDRESS: u8 = 0x40;
const TAG_TIMETICKS: u8 = 0x43;
const TAG_TRAP_V1: u8 = 0xa4;
/// USM, the only security model SNMPv3 agents use (RFC 3414).
const SECURITY_MODEL_USM: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapVersion {
    V1,
    V2c,
    V3,
}

impl TrapVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            TrapVersion::V1 => "v1",
            TrapVersion::V2c => "v2c",
            TrapVersion::V3 => "v3",
        }
    }
}

/// A notification in SNMPv2 form (an SNMPv1 trap translated per RFC 3584), values owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub version: TrapVersion,
    /// An InformRequest (the sender waits for a Response) rather than a trap.
    pub inform: bool,
    /// snmpTrapOID.0: which notification this is.
    pub trap_oid: Oid,
    /// Every varbind, sysUpTime.0 and snmpTrapOID.0 included.
    pub varbinds: Vec<(Oid, Value)>,
    /// Varbinds in the message that could not be decoded: snmp2 ends the list at the first value it cannot
    /// read (an unknown tag, a BOOLEAN, an over-long string), so the ones after it are lost.
    pub undecodable_varbinds: usize,
}

/// Why a datagram is not a notification we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty datagram")]
    Empty,
    #[error("not a well-formed SNMP message: {0}")]
    Ber(String),
    #[error("unsupported SNMP version field {0}")]
    Version(i64),
    #[error("SNMPv3 message with security model {0}, not USM (3)")]
    SecurityModel(i64),
    #[error("{0} PDU is not a notification")]
    NotNotification(&'static str),
    #[error("notification without snmpTrapOID.0")]
    NoTrapOid,
    #[error("SNMPv1 trap with generic-trap {generic} and specific-trap {specific}")]
    BadV1Trap { generic: i64, specific: i64 },
}

impl DecodeError {
    /// A short, stable word for the malformed-datagram counter.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Ber(_) => "ber",
            DecodeError::Version(_) => "version",
            DecodeError::SecurityModel(_) => "security_model",
            DecodeError::NotNotification(_) => "not_a_notification",
            DecodeError::NoTrapOid => "no_trap_oid",
            DecodeError::BadV1Trap { .. } => "bad_v1_trap",
        }
    }
}

fn ber(e: snmp2::Error) -> DecodeError {
    DecodeError::Ber(e.to_string())
}

/// The message's version field: 0 (v1), 1 (v2c) or 3 (v3).
pub fn message_version(datagram: &[u8]) -> Result<i64, DecodeError> {
    if datagram.is_empty() {
        return Err(DecodeError::Empty);
    }
    let seq = AsnReader::from_bytes(datagram).read_raw(TAG_SEQUENCE).map_err(ber)?;
    let v = AsnReader::from_bytes(seq).read_asn_integer().map_err(ber)?;
    match v {
        0 | 1 | 3 => Ok(v),
        other => Err(DecodeError::Version(other)),
    }
}

/// A v1 or v2c notification and the community it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunityMessage<'a> {
    pub community: &'a [u8],
    pub notification: Notification,
    /// For an InformRequest: the Response to send back (same request-id, community and varbinds).
    pub response: Option<Vec<u8>>,
}

/// Decodes a v1 or v2c Trap or InformRequest.
pub fn decode_community(datagram: &[u8]) -> Result<CommunityMessage<'_>, DecodeError> {
    let version = match message_version(datagram)? {
        0 => TrapVersion::V1,
        1 => TrapVersion::V2c,
        other => return Err(DecodeError::Version(other)),
    };
    let pdu = Pdu::from_bytes(datagram).map_err(ber)?;
    let (mut raw, mut undecodable) = owned_varbinds(pdu.varbinds.clone());
    if let Some(total) = count_varbinds(datagram) {
        undecodable += total.saturating_sub(raw.len() + undecodable);
    }
    let (trap_oid, varbinds, inform) = match pdu.message_type {
        MessageType::TrapV1 => {
            let info = pdu.v1_trap_info.as_ref().ok_or(DecodeError::NotNotification("Trap-PDU without its fields"))?;
            let bad = DecodeError::BadV1Trap { generic: info.generic_trap, specific: info.specific_trap };
            let enterprise = Oid::from_snmp2(&info.enterprise).ok_or_else(|| bad.clone())?;
            let trap_oid = v1_trap_oid(&enterprise, info.generic_trap, info.specific_trap).ok_or(bad)?;
            let agent = match info.agent_addr {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            };
            let vbs = v1_to_v2_varbinds(&trap_oid, info.timestamp, agent, &enterprise, std::mem::take(&mut raw));
            (trap_oid, vbs, false)
        }
        MessageType::Trap | MessageType::InformRequest => {
            let trap_oid = trap_oid_of(&raw)?;
            (trap_oid, raw, pdu.message_type == MessageType::InformRequest)
        }
        other => return Err(DecodeError::NotNotification(pdu_name(other))),
    };
    let response = if inform {
        let mut ack = pdu.clone();
        ack.message_type = MessageType::Response;
        ack.error_status = 0;
        ack.error_index = 0;
        Some(ack.to_bytes().map_err(ber)?)
    } else {
        None
    };
    Ok(CommunityMessage {
        community: pdu.community,
        notification: Notification { version, inform, trap_oid, varbinds, undecodable_varbinds: undecodable },
        response,
    })
}

fn pdu_name(t: MessageType) -> &'static str {
    match t {
        MessageType::GetRequest => "GetRequest",
        MessageType::GetNextRequest => "GetNextRequest",
        MessageType::GetBulkRequest => "GetBulkRequest",
        MessageType::Response => "Response",
        MessageType::SetRequest => "SetRequest",
        MessageType::InformRequest => "InformRequest",
        MessageType::Trap => "SNMPv2-Trap",
        MessageType::TrapV1 => "Trap",
        MessageType::Report => "Report",
    }
}

/// Copies varbinds out of snmp2's borrowed form; those whose OID has an arc beyond u32 are counted, not kept.
fn owned_varbinds(vbs: snmp2::Varbinds<'_>) -> (Vec<(Oid, Value)>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for (o, v) in vbs {
        match Oid::from_snmp2(&o) {
            Some(oid) => out.push((oid, Value::from_snmp2(&v))),
            None => bad += 1,
        }
    }
    (out, bad)
}

/// snmpTrapOID.0's value. RFC 3416 puts it second; a sender that puts it elsewhere is still understood.
fn trap_oid_of(varbinds: &[(Oid, Value)]) -> Result<Oid, DecodeError> {
    varbinds
        .iter()
        .find_map(|(o, v)| match v {
            Value::ObjectIdentifier(t) if o.arcs() == SNMP_TRAP_OID_0 => Some(t.clone()),
            _ => None,
        })
        .ok_or(DecodeError::NoTrapOid)
}

/// How many varbinds a v1/v2c message holds, counted on the BER structure alone (to notice the ones snmp2's
/// iterator silently stops at). `None` when the structure does not allow counting.
fn count_varbinds(datagram: &[u8]) -> Option<usize> {
    let seq = AsnReader::from_bytes(datagram).read_raw(TAG_SEQUENCE).ok()?;
    let mut msg = AsnReader::from_bytes(seq);
    msg.read_raw(TAG_INTEGER).ok()?;
    msg.read_raw(TAG_OCTET_STRING).ok()?;
    let tag = msg.peek_byte().ok()?;
    let mut pdu = AsnReader::from_bytes(msg.read_raw(tag).ok()?);
    let header: &[u8] = if tag == TAG_TRAP_V1 {
        &[TAG_OID, TAG_IP_ADDRESS, TAG_INTEGER, TAG_INTEGER, TAG_TIMETICKS]
    } else {
        &[TAG_INTEGER, TAG_INTEGER, TAG_INTEGER]
    };
    for t in header {
        pdu.read_raw(*t).ok()?;
    }
    let mut list = AsnReader::from_bytes(pdu.read_raw(TAG_SEQUENCE).ok()?);
    let mut n = 0;
    while list.bytes_left() > 0 {
        list.read_raw(TAG_SEQUENCE).ok()?;
        n += 1;
    }
    Some(n)
}

/// The unencrypted header of an SNMPv3 message: who sent it and how it is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Header<'a> {
    pub flags: u8,
    /// msgAuthoritativeEngineID: for a trap, the sender's engineID (the keys are localized to it).
    pub engine_id: &'a [u8],
    pub engine_boots: i64,
    pub engine_time: i64,
    pub user: &'a [u8],
}

impl V3Header<'_> {
    pub fn authenticated(&self) -> bool {
        self.flags & 0x01 != 0
    }

    pub fn encrypted(&self) -> bool {
        self.flags & 0x02 != 0
    }

    /// An unauthenticated message with no engineID: an engine-discovery probe (what `snmpinform -v3` or any
    /// v3 request sends first), which only an authoritative engine can answer.
    pub fn is_discovery(&self) -> bool {
        !self.authenticated() && self.engine_id.is_empty()
    }
}

/// Reads an SNMPv3 message's header (RFC 3412 msgGlobalData, RFC 3414 UsmSecurityParameters).
pub fn v3_header(datagram: &[u8]) -> Result<V3Header<'_>, DecodeError> {
    if datagram.is_empty() {
        return Err(DecodeError::Empty);
    }
    let seq = AsnReader::from_bytes(datagram).read_raw(TAG_SEQUENCE).map_err(ber)?;
    let mut msg = AsnReader::from_bytes(seq);
    let version = msg.read_asn_integer().map_err(ber)?;
    if version != 3 {
        return Err(DecodeError::Version(version));
    }
    let mut global = AsnReader::from_bytes(msg.read_raw(TAG_SEQUENCE).map_err(ber)?);
    global.read_asn_integer().map_err(ber)?; // msgID
    global.read_asn_integer().map_err(ber)?; // msgMaxSize
    let flags = global.read_asn_octetstring().map_err(ber)?.first().copied().unwrap_or(0);
    let model = global.read_asn_integer().map_err(ber)?;
    if model != SECURITY_MODEL_USM {
        return Err(DecodeError::SecurityModel(model));
    }
    let params = msg.read_asn_octetstring().map_err(ber)?;
    let mut usm = AsnReader::from_bytes(AsnReader::from_bytes(params).read_raw(TAG_SEQUENCE).map_err(ber)?);
    let engine_id = usm.read_asn_octetstring().map_err(ber)?;
    let engine_boots = usm.read_asn_integer().map_err(ber)?;
    let engine_time = usm.read_asn_integer().map_err(ber)?;
    let user = usm.read_asn_octetstring().map_err(ber)?;
    Ok(V3Header { flags, engine_id, engine_boots, engine_time, user })
}

/// Why a v3 message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3Error {
    /// The credentials do not authenticate or decrypt it (wrong password, user or security level).
    #[error("{0}")]
    Auth(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Authenticates, decrypts and decodes a v3 notification with `security`, whose keys must already be localized
/// to `header.engine_id`.
pub fn decode_v3(datagram: &[u8], header: &V3Header<'_>, security: &v3::Security) -> Result<Notification, V3Error> {
    // snmp2 zeroes the authentication parameters inside the buffer it parses (reference P9): parse a private
    // copy, never the receive buffer or a shared one.
    let private = datagram.to_vec();
    // A trap's sender is the authoritative engine: take its boots and time as they come (snmp2 refuses a
    // message when both its own and the message's boots are 0, so count from 1).
    let mut sec = security.clone().with_engine_boots_and_time(header.engine_boots.max(1), header.engine_time);
    let pdu = match Pdu::from_bytes_with_security(&private, Some(&mut sec)) {
        Ok(p) => p,
        Err(snmp2::Error::AuthFailure(kind)) => return Err(V3Error::Auth(auth_failure_text(&kind))),
        Err(snmp2::Error::Crypto(detail)) => return Err(V3Error::Auth(format!("cannot decrypt: {detail}"))),
        // The header was well-formed and the digest matched, so a scoped PDU that does not decode after
        // decryption most likely means the privacy password (or protocol) is wrong.
        Err(e) if header.encrypted() => {
            return Err(V3Error::Auth(format!(
                "scoped PDU does not decode after decryption ({e}): wrong privacy password or protocol"
            )));
        }
        Err(e) => return Err(V3Error::Decode(ber(e))),
    };
    let inform = match pdu.message_type {
        MessageType::Trap => false,
        MessageType::InformRequest => true,
        other => return Err(V3Error::Decode(DecodeError::NotNotification(pdu_name(other)))),
    };
    // Encrypted varbinds live in `sec`'s plaintext buffer, which this function does not expose: count nothing.
    let (varbinds, undecodable) = owned_varbinds(pdu.varbinds.clone());
    let trap_oid = trap_oid_of(&varbinds)?;
    Ok(Notification { version: TrapVersion::V3, inform, trap_oid, varbinds, undecodable_varbinds: undecodable })
}

fn auth_failure_text(kind: &v3::AuthErrorKind) -> String {
    use v3::AuthErrorKind as K;
    match kind {
        K::SignatureMismatch => "digest mismatch: wrong authentication password or protocol".into(),
        K::NotAuthenticated => "not authenticated: security level lower than the credentials require".into(),
        K::ReplyNotEncrypted => "not encrypted: the credentials require privacy".into(),
        K::UsernameMismatch => "unknown user".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{AuthProtocol, PrivProtocol, SnmpV3Credentials};

    pub(crate) fn capture(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/traps/{name}.hex", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let t = text.trim();
        (0..t.len()).step_by(2).map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("hex")).collect()
    }

    fn texts(n: &Notification) -> Vec<String> {
        n.varbinds.iter().map(|(o, v)| format!("{o} = {v:?}")).collect()
    }

    #[test]
    fn v2c_trap_from_snmptrap() {
        let d = capture("v2c_link_down");
        let m = decode_community(&d).unwrap();
        assert_eq!(m.community, b"public");
        assert_eq!(m.notification.version, TrapVersion::V2c);
        assert!(!m.notification.inform && m.response.is_none());
        assert_eq!(m.notification.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.3");
        let t = texts(&m.notification);
        assert_eq!(t.len(), 5, "{t:?}");
        assert!(t[0].starts_with("1.3.6.1.2.1.1.3.0 = Timeticks: "), "{t:?}");
        assert_eq!(
            t[2..],
            [
                "1.3.6.1.2.1.2.2.1.1.2 = INTEGER: 2",
                "1.3.6.1.2.1.2.2.1.7.2 = INTEGER: 1",
                "1.3.6.1.2.1.2.2.1.8.2 = INTEGER: 2"
            ]
        );
        assert_eq!(m.notification.undecodable_varbinds, 0);
    }

    #[test]
    fn v1_trap_is_translated_to_v2_form() {
        let d = capture("v1_link_down");
        let m = decode_community(&d).unwrap();
        assert_eq!(m.notification.version, TrapVersion::V1);
        assert_eq!(m.notification.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.3");
        let t = texts(&m.notification);
        assert_eq!(t[1], "1.3.6.1.6.3.1.1.4.1.0 = OID: 1.3.6.1.6.3.1.1.5.3");
        assert_eq!(t[2], "1.3.6.1.2.1.2.2.1.1.2 = INTEGER: 2");
        assert_eq!(t[3], "1.3.6.1.6.3.18.1.3.0 = IpAddress: 127.0.0.1");
        assert_eq!(t[4], "1.3.6.1.6.3.1.1.4.3.0 = OID: 1.3.6.1.4.1.8072.2.3.1");
        let d = capture("v1_enterprise_specific");
        let m = decode_community(&d).unwrap();
        assert_eq!(m.notification.trap_oid.to_string(), "1.3.6.1.4.1.99999.0.7");
    }

    #[test]
    fn inform_gets_a_response_with_its_request_id() {
        let d = capture("v2c_inform_link_down");
        let m = decode_community(&d).unwrap();
        assert!(m.notification.inform);
        let resp = m.response.expect("a response for an inform");
        let inform = Pdu::from_bytes(&d).unwrap();
        let back = Pdu::from_bytes(&resp).unwrap();
        assert_eq!(back.message_type, MessageType::Response);
        assert_eq!(back.req_id, inform.req_id);
        assert_eq!(back.community, b"public");
        assert_eq!(back.error_status, 0);
        assert_eq!(back.varbinds.count(), inform.varbinds.count());
    }

    #[test]
    fn malformed_datagrams_are_errors_with_reasons() {
        let good = capture("v2c_link_down");
        assert_eq!(decode_community(&[]).unwrap_err().reason(), "empty");
        for cut in [1, 2, 10, good.len() / 2, good.len() - 1] {
            let e = decode_community(&good[..cut]).unwrap_err();
            assert_eq!(e.reason(), "ber", "cut at {cut}: {e}");
        }
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in [1usize, 3, 50, 300, 1500] {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            assert!(decode_community(&junk).is_err(), "{len} random bytes");
            let _ = v3_header(&junk);
        }
        // Version 2 (SNMPv2u/v2*) is not a version anyone speaks.
        let mut wrong = good.clone();
        assert_eq!(&wrong[2..5], &[0x02, 0x01, 0x01]);
        wrong[4] = 2;
        assert_eq!(decode_community(&wrong).unwrap_err(), DecodeError::Version(2));
        // A GET request is not a notification.
        let get = crate::sim::codec::encode_request(b"public", crate::sim::codec::RequestKind::Get, 7, &[]);
        assert_eq!(decode_community(&get).unwrap_err().reason(), "not_a_notification");
        // A trap without snmpTrapOID.0.
        let no_oid = crate::sim::codec::encode_message(b"public", 0xa7, 1, 0, 0, &[]);
        assert_eq!(decode_community(&no_oid).unwrap_err(), DecodeError::NoTrapOid);
    }

    #[test]
    fn a_varbind_snmp2_cannot_read_is_counted() {
        // snmp2 stops at a BOOLEAN value; the BER structure still says there were three varbinds.
        let mut body = Vec::new();
        for vb in [
            &[0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 3, 0, 0x43, 0x01, 0x05][..],
            &[0x06, 0x0a, 0x2b, 6, 1, 6, 3, 1, 1, 4, 1, 0, 0x06, 0x08, 0x2b, 6, 1, 6, 3, 1, 1, 5][..],
            &[0x06, 0x03, 0x2b, 6, 9, 0x01, 0x01, 0xff][..],
        ] {
            body.push(0x30);
            body.push(vb.len() as u8);
            body.extend_from_slice(vb);
        }
        let d = crate::sim::codec::encode_message(b"public", 0xa7, 1, 0, 0, &body);
        let m = decode_community(&d).unwrap();
        assert_eq!(m.notification.varbinds.len(), 2);
        assert_eq!(m.notification.undecodable_varbinds, 1);
    }

    #[test]
    fn v3_header_names_user_and_engine() {
        let d = capture("v3_authpriv_link_down");
        let h = v3_header(&d).unwrap();
        assert_eq!(h.user, b"trapuser");
        assert_eq!(h.engine_id, [0x80, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
        assert!(h.authenticated() && h.encrypted() && !h.is_discovery());
        let probe = capture("v3_inform_probe");
        assert!(v3_header(&probe).unwrap().is_discovery());
        assert_eq!(message_version(&probe), Ok(3));
    }

    fn creds(user: &str, auth: AuthProtocol, privacy: Option<(PrivProtocol, &str)>) -> SnmpV3Credentials {
        SnmpV3Credentials {
            user: user.into(),
            auth: Some((auth, "authpass123".into())),
            privacy: privacy.map(|(p, pw)| (p, pw.into())),
            context: None,
        }
    }

    fn localized(c: &SnmpV3Credentials, engine: &[u8]) -> v3::Security {
        crate::snmp::v3_security(c).with_engine_id(engine).unwrap()
    }

    #[test]
    fn v3_traps_decode_with_keys_localized_to_the_sender() {
        let d = capture("v3_authpriv_link_down");
        let h = v3_header(&d).unwrap();
        let good = creds("trapuser", AuthProtocol::Sha1, Some((PrivProtocol::Aes128, "privpass123")));
        let n = decode_v3(&d, &h, &localized(&good, h.engine_id)).unwrap();
        assert_eq!(n.version, TrapVersion::V3);
        assert_eq!(n.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.3");
        assert!(texts(&n).contains(&"1.3.6.1.2.1.2.2.1.1.2 = INTEGER: 2".to_string()));
        // Decoding twice from the same input works: the receive buffer is never the one snmp2 scribbles on.
        assert!(decode_v3(&d, &h, &localized(&good, h.engine_id)).is_ok());

        let d2 = capture("v3_authnopriv_cold_start");
        let h2 = v3_header(&d2).unwrap();
        let auth_only = creds("trapauth", AuthProtocol::Sha256, None);
        let n = decode_v3(&d2, &h2, &localized(&auth_only, h2.engine_id)).unwrap();
        assert_eq!(n.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.1");
    }

    #[test]
    fn v3_with_wrong_keys_is_an_auth_failure() {
        let d = capture("v3_authpriv_link_down");
        let h = v3_header(&d).unwrap();
        let mut wrong_auth = creds("trapuser", AuthProtocol::Sha1, Some((PrivProtocol::Aes128, "privpass123")));
        wrong_auth.auth = Some((AuthProtocol::Sha1, "not-the-password".into()));
        let e = decode_v3(&d, &h, &localized(&wrong_auth, h.engine_id)).unwrap_err();
        assert!(matches!(e, V3Error::Auth(ref t) if t.contains("digest")), "{e}");
        let wrong_priv = creds("trapuser", AuthProtocol::Sha1, Some((PrivProtocol::Aes128, "not-the-privpass")));
        let e = decode_v3(&d, &h, &localized(&wrong_priv, h.engine_id)).unwrap_err();
        assert!(matches!(e, V3Error::Auth(_)), "{e}");
        // Keys localized to another engine: the digest cannot match.
        let good = creds("trapuser", AuthProtocol::Sha1, Some((PrivProtocol::Aes128, "privpass123")));
        let other_engine = localized(&good, &[0x80, 0, 0, 0, 1, 2, 3, 4, 5, 7]);
        assert!(matches!(decode_v3(&d, &h, &other_engine), Err(V3Error::Auth(_))));
        // authNoPriv message for credentials that require privacy.
        let d2 = capture("v3_authnopriv_cold_start");
        let h2 = v3_header(&d2).unwrap();
        let needs_priv = creds("trapauth", AuthProtocol::Sha256, Some((PrivProtocol::Aes128, "privpass123")));
        assert!(matches!(decode_v3(&d2, &h2, &localized(&needs_priv, h2.engine_id)), Err(V3Error::Auth(_))));
    }

    #[test]
    fn truncated_and_mutated_v3_messages_do_not_panic() {
        let d = capture("v3_authpriv_link_down");
        let good = creds("trapuser", AuthProtocol::Sha1, Some((PrivProtocol::Aes128, "privpass123")));
        let sec = localized(&good, &[0x80, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
        for cut in 0..d.len() {
            if let Ok(h) = v3_header(&d[..cut]) {
                assert!(decode_v3(&d[..cut], &h, &sec).is_err(), "cut at {cut}");
            }
        }
        for i in 0..d.len() {
            let mut m = d.clone();
            m[i] ^= 0x5a;
            if let Ok(h) = v3_header(&m) {
                let _ = decode_v3(&m, &h, &sec);
            }
        }
    }
}
