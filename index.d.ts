// sip-native: a SIP user agent for Node.js, in Rust. Hand-written facade over the generated
// `binding.d.ts`; this file is the public API.
import { EventEmitter } from 'node:events'
import type {
  CallFailures,
  CallsByDirection,
  CallStateCounts,
  CallStats,
  Counters,
  DirectionCounts,
  LocalAddress,
  MediaClock,
  RecordingInfo,
  RegistrationCounts,
  RtpMetrics,
  SipMetrics,
  TransportMetrics,
} from './binding'

// Declared once, in the binding (generated from src/types.rs and src/metrics.rs).
export type { CallStats, Counters, LocalAddress, MediaClock, RecordingInfo }
export type {
  CallFailures,
  CallsByDirection,
  CallStateCounts,
  DirectionCounts,
  RegistrationCounts,
  RtpMetrics,
  SipMetrics,
  TransportMetrics,
}
/** Live counts, for leak checks and monitoring (the binding's {@link Counters}). */
export type EndpointCounters = Counters

export type Transport = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss' | 'UDP' | 'TCP' | 'TLS' | 'WS' | 'WSS'

/** One SIP account: an operator's extension on the PBX. */
export interface AccountConfig {
  /** User part of the address of record, e.g. `'7779'`. */
  extension: string
  /** Digest user name; defaults to `extension`. */
  username?: string
  /** Digest password. Never logged. */
  password?: string
  /** Display name for From, UTF-8 (Cyrillic is fine). */
  displayName?: string
  /** Domain of the address of record; defaults to `server`. */
  domain?: string
  /** REGISTER this account on `start()` (default: true when `server` is set). */
  register?: boolean
  /**
   * Concurrent calls of this account at most: beyond, an incoming call gets 486 Busy Here
   * before it rings and `makeCall` rejects. 0 or unset: no limit of its own.
   */
  maxCalls?: number
}

/** TLS settings of the `tls` and `wss` transports; every field is optional. */
export interface TlsConfig {
  /** PEM file of extra CA certificates trusted besides the system's (a private PBX CA). */
  caFile?: string
  /** PEM client certificate chain, for a PBX that asks for one (needs `keyFile`). */
  certFile?: string
  /** PEM private key of `certFile`. */
  keyFile?: string
  /** Name for SNI and the certificate check when it differs from the host dialled (a PBX dialled by IP). */
  serverName?: string
  /** Verify the server certificate (default true); `false` accepts any, logged as a warning. */
  verify?: boolean
}

/** Typed configuration of a {@link SipService}. */
export interface SipServiceConfig {
  /** PBX / registrar host. Omit for peer-to-peer use (no registration). */
  server?: string
  /**
   * PBX SIP port. Omitted: located by DNS (RFC 3263 NAPTR and SRV records of `server`), else
   * 5060. Given: `server`'s A/AAAA records only, on this port.
   */
  serverPort?: number
  /** SIP transport (default `'udp'`). */
  transport?: Transport
  /** Local address to bind (default `'0.0.0.0'`). */
  bindAddress?: string
  /** Local SIP port (default 5060; 0 = any free port, see {@link SipService.localAddress}). */
  localPort?: number
  /**
   * Address to advertise in Contact/Via/SDP when it differs from the bound one (a fixed NAT
   * mapping). When set, nothing learned (rport, STUN) replaces it.
   */
  publicAddress?: string
  /**
   * STUN server `host[:port]` (port 3478 by default): asked for the SIP socket's public address
   * at start and for each call's RTP port at call setup (at most ~0.8 s), so that Contact and
   * SDP carry the NAT's public mapping. Unset: no STUN.
   */
  stunServer?: string
  /**
   * When the registrar's response shows another address than our Contact (Via
   * `received`/`rport`, RFC 3581), re-register at once with that public address and remove the
   * old binding (PJSIP's default contact rewrite). Default true.
   */
  contactRewrite?: boolean
  /** RTP port range, inclusive (default 10000-20000). */
  rtpPortMin?: number
  rtpPortMax?: number
  /** Registration lifetime in seconds (default 300). */
  registerExpires?: number
  /** An unanswered incoming call is rejected with 480 after this many ms (default 60000). */
  incomingCallTimeoutMs?: number
  /** An outgoing call with no final answer is cancelled after this many ms (default 60000). */
  inviteTimeoutMs?: number
  /**
   * SIP timer T1 in ms (default 500, RFC 3261): retransmissions start at T1 and a silent peer
   * is given up after 64·T1 (32 s by default), e.g. a CANCEL or BYE nobody answers.
   */
  timerT1Ms?: number
  /**
   * Ends a confirmed call with BYE (reason "RTP timeout") when no RTP or RTCP has arrived for
   * this many ms while media flows both ways (not on hold). 0 (the default) turns it off.
   */
  rtpTimeoutMs?: number
  /**
   * How long stop() waits for answers to its CANCELs, BYEs and un-REGISTERs before it tears
   * everything down (default 3000 ms).
   */
  stopGraceMs?: number
  /** User-Agent header value. */
  userAgent?: string
  /**
   * Keep-alive interval in seconds. On UDP, while registered, a CRLF datagram to the registrar
   * every 15 s by default keeps the NAT binding open. On TCP/TLS/WS: a CRLF ping (RFC 5626)
   * every 90 s by default; a missed pong (10 s) from a server that answers pings closes the
   * connection, which is then re-dialled and re-registered. 0 = off.
   */
  keepAliveIntervalS?: number
  /**
   * Threshold of the engine's log: records at this level and above go to `logger`, or to
   * stderr when there is no `logger`. Default: nothing without `logger`; `'info'` with one.
   * Credentials are masked in every record.
   */
  logLevel?: LogLevel
  /**
   * Receives the engine's log records, one object argument per call (pino and winston
   * loggers work as they are). Records of this service go to this logger only; the few
   * records no service can be told from (the SIP stack's own tasks) go to every service's
   * logger. A logger that throws is caught: the record is dropped and counted in
   * `metrics().loggerErrors`. When JS falls behind by 4096 records, the newer ones are dropped
   * (counted in `metrics().logRecordsDropped`) rather than queued.
   */
  logger?: Logger
  /**
   * Every SIP message sent and received, as a `debug` record of target `sip_native::trace`
   * (whatever `logLevel` is) with `direction` ('sent' | 'received'), `transport`, `remote`,
   * `sipCallId`, `sipMessage` (the whole message, `Authorization` masked) and `callId` when the
   * message belongs to one of this service's calls. Off by default; without `logger` it goes
   * to stderr.
   */
  sipTrace?: boolean
  /**
   * The service's `pbx_use_websocket`: `true` selects SIP over WebSocket (RFC 7118), `ws` or
   * `wss` by the scheme of `websocketUrl`.
   */
  useWebsocket?: boolean
  /** `ws://host[:port][/path]` or `wss://...` of the WebSocket transport (default `ws(s)://server:serverPort/`). */
  websocketUrl?: string
  /**
   * Outbound proxy, a SIP URI such as `'sip:proxy.example.com:5070;transport=udp'`: every
   * out-of-dialog request (REGISTER, INVITE) is sent there with a preloaded
   * `Route: <proxy;lr>`; the Request-URI stays the registrar or the callee.
   */
  outboundProxy?: string
  /**
   * DNS servers for locating SIP servers (NAPTR, SRV, A/AAAA): `'ip'`, `'ip:port'` or
   * `'[v6]:port'`. Default: the system's resolver configuration.
   */
  dnsServers?: string[]
  /** TLS settings (server certificate check, client certificate). */
  tls?: TlsConfig
  accounts?: AccountConfig[]
  /**
   * Session timers (RFC 4028), as pjsua2's `timerUse`: `'off'` (no `Supported: timer`, the
   * peer's Session-Expires ignored), `'optional'` (default: the timer runs when the peer uses
   * it too), `'required'` (`Require: timer` on our INVITE; an INVITE from a peer without timer
   * support gets 421), `'always'` (the timer runs even with a peer that does not support it,
   * and we refresh).
   */
  sessionTimers?: SessionTimerMode
  /** The Session-Expires we ask for and accept at most, in seconds (default 1800). */
  sessionExpiresSec?: number
  /**
   * Our Min-SE in seconds (default 90): an INVITE or refresh asking for less gets 422. Values
   * below RFC 4028's 90 s floor are accepted (at least 2) for lab use and tests only.
   */
  minSessionExpiresSec?: number
  /**
   * How we refresh when we are the refresher: `'update'` (UPDATE without SDP) or `'invite'`
   * (re-INVITE with the current SDP). Default: UPDATE when the peer's Allow lists it, else
   * re-INVITE.
   */
  sessionRefresh?: SessionRefresh
  /**
   * Concurrent calls of the whole service at most (every account together): beyond, an
   * incoming call gets 486 Busy Here before it rings and `makeCall` rejects. 0 (default): no limit.
   */
  maxCalls?: number
  /**
   * The sources (CIDRs, IPv4 and IPv6: `['10.0.0.0/8', '2001:db8::/32']`) whose INVITE,
   * SUBSCRIBE, REFER... outside a dialog are accepted; others get `403 Forbidden`, no event.
   * Default with `server`: the PBX's resolved addresses and the outbound proxy's; without
   * `server`: everyone. `['0.0.0.0/0', '::/0']` accepts everyone.
   */
  acceptFrom?: string[]
  /** Token bucket per source for requests from sources not accepted (default 10/s, burst 20). */
  rateLimit?: { perSecond?: number; burst?: number }
  /**
   * Largest SIP message in bytes, on every transport. UDP: default and at most 8192, larger
   * datagrams dropped. TCP, TLS, WS, WSS: default 65535; a larger message is answered
   * `513 Message Too Large` (when routable) and the connection is closed.
   */
  maxMessageSize?: number
  /**
   * Follow a 3xx to our INVITE to its Contacts, highest q first (default true); `false` ends
   * the call with the 3xx, its reason naming the Contacts. `makeCall`'s option overrides it.
   */
  followRedirects?: boolean
  /** At most this many redirected INVITEs per call (default 5). */
  maxRedirects?: number
  /**
   * Reliable provisional responses (RFC 3262, 100rel). 'supported' (default): `Supported:
   * 100rel` on our INVITEs, reliable 180/183 when the caller requires them. 'required':
   * `Require: 100rel` on our INVITEs, reliable 1xx to every caller that supports it (421 to one
   * that does not). 'off': not offered; an INVITE requiring it gets 420.
   */
  prack?: 'supported' | 'required' | 'off'
  /**
   * SRTP with SDES keys (RFC 4568; AES_CM_128_HMAC_SHA1_80 and _32). 'off' (default): plain
   * RTP, an `RTP/SAVP` offer gets 488. 'optional': `RTP/AVP` offers with `a=crypto` lines, SRTP
   * when the peer answers with a key, plain RTP otherwise. 'mandatory': `RTP/SAVP` offers; an
   * offer without a usable key gets 488. Keys travel in the SDP: use `sips:`/TLS (a warning is
   * logged when they would go over a plain transport).
   */
  srtp?: 'off' | 'optional' | 'mandatory'
}

/** See {@link SipServiceConfig.sessionTimers}. */
export type SessionTimerMode = 'off' | 'optional' | 'required' | 'always'
/** See {@link SipServiceConfig.sessionRefresh}. */
export type SessionRefresh = 'update' | 'invite'

/** The service's PBX settings row. Numbers may be strings, as the database returns them. */
export interface PbxSettingsRow {
  pbx_server?: string | null
  pbx_port?: number | string | null
  pbx_transport?: string | null
  pbx_rtp_port_min?: number | string | null
  pbx_rtp_port_max?: number | string | null
  pbx_use_websocket?: boolean | number | string | null
  pbx_websocket_url?: string | null
  [other: string]: unknown
}

/** The service's per-operator settings row. */
export interface OperatorSettingsRow {
  pbx_extension?: string | number | null
  pbx_username?: string | number | null
  pbx_password?: string | null
  pbx_display_name?: string | null
  [other: string]: unknown
}

export type RegistrationState = 'registering' | 'registered' | 'unregistering' | 'unregistered' | 'failed'
export type CallState = 'calling' | 'incoming' | 'ringing' | 'early' | 'connecting' | 'confirmed' | 'disconnected'

export interface RegistrationEvent {
  type: 'registration'
  account: string
  state: RegistrationState
  /** SIP status code of the last REGISTER response (0 for a timeout or transport error). */
  code: number
  reason: string
  /** Seconds granted by the registrar (0 when not registered). */
  expires: number
}

export interface IncomingCallEvent {
  type: 'incoming_call'
  callId: string
  /** The SIP Call-ID header of the INVITE. */
  sipCallId: string
  /** The account (extension) that was called. */
  account: string
  /** Caller URI, e.g. `sip:1000@pbx`. */
  from: string
  /** Called URI. */
  to: string
  /** Caller's user part (number). */
  fromUser: string
  displayName: string | null
  /**
   * Every header of the INVITE as [name, value] pairs, in order, repeated headers kept
   * (credentials masked).
   */
  headers: Array<[string, string]>
}

export interface CallStateEvent {
  type: 'call_state'
  callId: string
  state: CallState
  direction: 'outgoing' | 'incoming'
  /** Last SIP status code of the call (0 if none). */
  code: number
  /** What happened; on `disconnected` by the peer, the `text` of its Reason header if any. */
  reason: string
  /** The peer's RFC 3326 Reason header on its BYE or CANCEL, as sent (`SIP;cause=200;text="..."`). */
  reasonHeader: string | null
}

export interface ErrorEvent {
  type: 'error'
  message: string
}

/** The stream connection (TCP/TLS/WS/WSS) to the PBX changed state. */
export interface TransportEvent {
  type: 'transport'
  transport: 'tcp' | 'tls' | 'ws' | 'wss'
  /** The server as configured, `host:port`. */
  remote: string
  state: 'connecting' | 'connected' | 'disconnected' | 'reconnecting'
  /** Why it failed or closed, e.g. "cannot connect to TCP 127.0.0.1:5070: connection refused". */
  reason: string
}

export interface DtmfEvent {
  type: 'dtmf'
  callId: string
  /** '0'-'9', '*', '#', 'A'-'D'. */
  digit: string
  /** How it arrived: RFC 4733 telephone-event RTP packets, or a SIP INFO (application/dtmf-relay). */
  method: 'rfc4733' | 'info'
  /**
   * Duration, ms. SIP INFO carries the whole duration; an RFC 4733 digit is reported at its
   * first packet (as PJSIP does, so the application hears it at once), with the duration that
   * packet announced so far (typically one packet time, 20 ms).
   */
  durationMs: number
}

/**
 * A call's hold state changed: by 'local' when our hold()/unhold() re-INVITE was accepted, by
 * 'remote' when the peer's re-INVITE or UPDATE put us on hold (a=sendonly, a=inactive) or
 * resumed us (our sending stops and restarts with it).
 */
export interface HoldEvent {
  type: 'hold'
  callId: string
  by: 'local' | 'remote'
  held: boolean
}

/** An outgoing call followed a 3xx: a new INVITE to `target`, same call (and callId). */
export interface RedirectEvent {
  type: 'redirect'
  callId: string
  /** The 3xx status that redirected (301, 302, ...). */
  code: number
  /** The Contact URI tried now. */
  target: string
  /** 1 for the call's first redirect, up to `maxRedirects`. */
  hop: number
}

/** A request inside a call failed or was never answered; the call and its media go on. */
export interface RequestFailedEvent {
  type: 'request_failed'
  callId: string
  /** The SIP method, e.g. 'INVITE' for a re-INVITE. */
  method: string
  /** What it was for: 'hold' | 'unhold' | 'reinvite' | 'update'. */
  purpose: string
  /** The final status; 408 when the peer stayed silent for 64·T1. */
  code: number
  reason: string
}

/** Our public SIP address was learned or changed; Contact and Via carry it from now on. */
export interface PublicAddressEvent {
  type: 'public_address'
  address: string
  port: number
  /** 'rport': the registrar's Via received/rport; 'stun': a STUN binding response. */
  source: 'rport' | 'stun'
}

/** One NOTIFY of a transfer we asked for: the status the transfer target gave the new call. */
export interface TransferEvent {
  type: 'transfer'
  /** The call we transferred. */
  callId: string
  /** The sipfrag's status code (100, 180, 200, 486...; 0 when the last NOTIFY was unreadable). */
  code: number
  reason: string
  /** The last report: the subscription ended or the status is final. */
  final: boolean
}

/** The peer asks us to transfer the call (REFER). Accepted by default. */
export interface ReferEvent {
  type: 'refer'
  /** The call the REFER came in (the transferee's side: ours). */
  callId: string
  /** The Refer-To value as received, e.g. `<sip:2000@pbx>`. */
  referTo: string
  referredBy: string | null
  /** The Replaces of an attended transfer (unescaped), if any. */
  replaces: string | null
  /** The REFER's headers, in order. */
  headers: Array<[string, string]>
  /** Accepts: 202, the new call is placed (`callInfo().referredFrom` = callId) and reported back by NOTIFY. Returns false when already decided. */
  accept(): boolean
  /** Refuses with `code` (4xx-6xx, default 603 Decline). Returns false when already decided. */
  reject(code?: number): boolean
}

/** An INVITE with Replaces took one of our calls over (attended transfer by our peer). */
export interface CallReplacedEvent {
  type: 'call_replaced'
  /** The old call: it ends with reason 'replaced'. */
  callId: string
  /** The new call, answered already. */
  newCallId: string
}

export interface TransferOptions {
  /** Extra headers on the REFER, e.g. { 'X-CRM-Id': '42' }. */
  headers?: Record<string, string>
}

export interface SipServiceEvents {
  registration: [RegistrationEvent]
  incoming_call: [IncomingCallEvent]
  call_state: [CallStateEvent]
  dtmf: [DtmfEvent]
  hold: [HoldEvent]
  redirect: [RedirectEvent]
  request_failed: [RequestFailedEvent]
  public_address: [PublicAddressEvent]
  transfer: [TransferEvent]
  refer: [ReferEvent]
  call_replaced: [CallReplacedEvent]
  transport: [TransportEvent]
  error: [ErrorEvent]
}

export interface PlayFileOptions {
  /** Start again at the end until stopPlayback() (default false). */
  loop?: boolean
}

export interface ToneOptions {
  /** Hz, or two frequencies summed (default 1000). */
  frequency?: number | [number, number]
  /** Default 1000 ms; 0 = until stopPlayback(). */
  durationMs?: number
  /** Level in dBFS of each component (default -10). */
  level?: number
}

export interface RecordOptions {
  /** 1: what is heard on the call, mixed (default). 2: channel 1 = the remote party, channel 2 = us. */
  channels?: 1 | 2
}


export interface SendDtmfOptions {
  /** 'rfc4733' (default, in the RTP stream) or 'info' (SIP INFO application/dtmf-relay). */
  method?: 'rfc4733' | 'info'
  /** Tone duration per digit, ms (default 100). */
  durationMs?: number
}

/** 16-bit little-endian mono PCM at `sampleRate`, in frames of 20 ms, as Node streams. */
export interface CallAudio {
  readonly sampleRate: number
  /** What the remote party sends us, decoded. Bounded: if not read, old frames are dropped (and counted). */
  readonly readable: import('node:stream').Readable
  /** What we send; writes wait (back-pressure) while 200 ms are queued. Replaces file/tone playback. */
  readonly writable: import('node:stream').Writable
}



/** A call. Its `id` is the `callId` of every event about it. */
export interface Call {
  readonly id: string
  /** The SIP Call-ID header of the call's dialog. */
  readonly sipCallId: string
  readonly direction: 'outgoing' | 'incoming'
  readonly from: string
  readonly to: string
  readonly state: CallState
  /** On a call placed for a peer's REFER: the id of the call the REFER came in. */
  readonly referredFrom?: string
  hangup(options?: HangupOptions): Promise<void>
  answer(options?: AnswerOptions): Promise<void>
  reject(code?: number, reason?: string, options?: RejectOptions): Promise<void>
  /** A snapshot of the call (see {@link SipService.callInfo}). */
  callInfo(): CallInfo
  /** See SipService.progress. */
  progress(options?: ProgressOptions): Promise<void>
  hold(options?: HoldOptions): Promise<void>
  unhold(): Promise<void>
  reinvite(options?: ReofferOptions): Promise<void>
  update(options?: ReofferOptions): Promise<void>
  playFile(path: string, options?: PlayFileOptions): Promise<void>
  playTone(options?: ToneOptions): Promise<void>
  stopPlayback(): Promise<void>
  record(path: string, options?: RecordOptions): Promise<void>
  stopRecording(): Promise<RecordingInfo>
  sendDtmf(digits: string, options?: SendDtmfOptions): Promise<void>
  stats(): CallStats
  /** Blind transfer to a number/URI, or attended transfer to another call's peer (see SipService.transfer). */
  transfer(target: string | Call, options?: TransferOptions): Promise<void>
  /** PCM streams; created on first access. */
  readonly audio: CallAudio
}

/** Extra SIP headers, e.g. `{ 'X-CRM-Id': '42' }`: names are tokens, values one line. */
export type ExtraHeaders = Record<string, string>

export interface AnswerOptions {
  /** Headers of the 200 OK. */
  headers?: ExtraHeaders
}

export interface RejectOptions {
  /** Headers of the final response. */
  headers?: ExtraHeaders
}

export interface HangupOptions {
  /** `cause` of the RFC 3326 `Reason: SIP;cause=<code>;text="<reason>"` on the BYE, CANCEL or 603. */
  code?: number
  /** `text` of that Reason (with no `code`: cause 200 for a BYE, 487 for a CANCEL, 603 for a rejection). */
  reason?: string
  /** Headers of the BYE, CANCEL or 603. */
  headers?: ExtraHeaders
}

/** An account as {@link SipService.accounts} lists it. */
export interface AccountStatus {
  extension: string
  /** The digest user name (the extension when none is configured). */
  username: string
  /** Where its registration is. */
  state: RegistrationState
}

/** A snapshot of a call. Times are ms since the Unix epoch. */
export interface CallInfo {
  id: string
  sipCallId: string
  state: CallState
  direction: 'outgoing' | 'incoming'
  /** Caller and called URIs, as on the Call object. */
  from: string
  to: string
  /** The extension of the call's account (null without accounts). */
  account: string | null
  /** Our URI in the call: `from` of an outgoing call, `to` of an incoming one. */
  localUri: string
  /** The peer's URI. */
  remoteUri: string
  /** The peer's Contact URI (its INVITE's or its answer's), once known. */
  remoteContact: string | null
  /** `'PCMU' | 'PCMA' | 'G722'` once the media runs. */
  codec: string | null
  /** Who holds the call (see {@link SipService.hold}). */
  hold: HoldState
  startTime: number
  /** When our 200 went out or the peer's arrived. */
  answerTime?: number | null
  endTime?: number | null
  /** For a call placed on a REFER: our id of the transferred call. */
  referredFrom?: string | null
}

export interface OptionsRequestOptions {
  /**
   * How long to wait for the final response, ms. Default and maximum: the transaction's
   * Timer F, 64·T1 (32 s with the default `timerT1Ms`).
   */
  timeoutMs?: number
}

/** The final response to an OPTIONS request. */
export interface OptionsResponse {
  /** Its status code: 200, or any other final status (a 404 or 401 also proves the server is up). */
  code: number
  reason: string
  /** From the first send to the final response, ms (UDP retransmissions included). */
  rttMs: number
}

export interface MakeCallOptions {
  /** Extra headers for the INVITE, e.g. `{ 'X-Campaign': '42' }`. */
  headers?: Record<string, string>
  /** Overrides the config's `followRedirects` for this call. */
  followRedirects?: boolean
}

export interface ProgressOptions {
  /** Extra headers for the 183, e.g. `{ 'X-Queue': 'sales' }`. */
  headers?: Record<string, string>
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * One engine log record, as the logger's method gets it. The event's own fields (camelCase:
 * `account`, `peer`, `error`, `code`, ...) are properties too.
 */
export interface LogRecord {
  /** `trace` records (only at `logLevel: 'trace'`) go to `logger.trace`, or `debug` without one. */
  level: LogLevel
  /** The engine module that logged it, e.g. `sipua::account::registration`, `sip_native::trace`. */
  target: string
  message: string
  /** `message` again, under the key pino prints as the message. */
  msg: string
  /** The call's id (the `callId` of its events) when the record is about a call. */
  callId?: string
  [field: string]: unknown
}

/** The logger interface: pino, winston, console-like objects. */
export interface Logger {
  debug(record: LogRecord): unknown
  info(record: LogRecord): unknown
  warn(record: LogRecord): unknown
  error(record: LogRecord): unknown
  trace?(record: LogRecord): unknown
}

export declare class SipService extends EventEmitter<SipServiceEvents> {
  constructor(config?: SipServiceConfig)
  /** Builds a service from the `pbx_*` settings rows; `overrides` (camelCase) win. */
  static fromSettings(
    pbx: PbxSettingsRow,
    operators?: OperatorSettingsRow[],
    overrides?: Partial<SipServiceConfig>,
  ): SipService
  /** Binds the transport and registers the accounts. Resolves once bound (registration goes on). */
  start(): Promise<void>
  /** Ends calls, unregisters, closes sockets; the process may then exit. */
  stop(): Promise<void>
  readonly isRunning: boolean
  localAddress(): LocalAddress
  /** Every listener: UDP, and TCP when the transport is TCP. */
  localAddresses(): LocalAddress[]
  /**
   * Places a call. `from` picks the account (extension, user name or SIP URI); `to` is a number,
   * an extension or a SIP URI. Resolves when the INVITE is sent; follow `call_state` events.
   */
  makeCall(from: string, to: string, options?: MakeCallOptions): Promise<Call>
  /**
   * SIP ping (RFC 3261 §11): an out-of-dialog OPTIONS to `uri` (a SIP URI, `user@host`,
   * `host[:port]`, or a number at `server`), sent as REGISTER and INVITE are: over the PBX
   * connection on TCP/TLS/WS, through `outboundProxy` when set. Resolves with any final
   * response, 2xx or not, as `fetch()` does; challenges are not answered. Rejects with an
   * Error naming the URI when no response came within `timeoutMs` ("no response within N
   * ms") or the target cannot be reached; with a TypeError for a URI that is not one.
   */
  options(uri: string, options?: OptionsRequestOptions): Promise<OptionsResponse>
  /** Answers an incoming call with 200 OK and an SDP answer; `options.headers` go on the 200. */
  answer(callId: string | Call, options?: AnswerOptions): Promise<void>
  /**
   * Rejects an incoming call (default 486 Busy Here); `reason` becomes an RFC 3326 Reason,
   * `options.headers` go on the response.
   */
  reject(callId: string | Call, code?: number, reason?: string, options?: RejectOptions): Promise<void>
  /**
   * Ends a call: CANCEL before answer, BYE after, or a 603 for an incoming call not answered.
   * Resolves once the call is disconnected: at once after a BYE (a peer that does not answer it
   * does not delay us), on the 487 after a CANCEL, or 64·T1 after a CANCEL nobody answers.
   * Never rejects because the peer was silent. `options.code`/`options.reason` become
   * `Reason: SIP;cause=<code>;text="<reason>"` (RFC 3326) on it, `options.headers` go on it too.
   */
  hangup(callId: string | Call, options?: HangupOptions): Promise<void>
  /**
   * Puts a confirmed call on hold by re-INVITE (a=sendonly; a=inactive when the peer holds us
   * too), with `music` looped to the peer while held; rejects (and emits request_failed) if the
   * peer refuses or never answers, the call keeping its media. A 491 (glare) is retried after
   * the RFC 3261 §14.1 random delay.
   */
  hold(callId: string | Call, options?: HoldOptions): Promise<void>
  /** Resumes a held call by re-INVITE (a=sendrecv, or a=recvonly while the peer holds us); music on hold stops. */
  unhold(callId: string | Call): Promise<void>
  /**
   * Sends a re-INVITE: with our SDP offer (default), or with none (`offer: false`): the peer
   * offers in its 200 and our ACK carries the answer. Glare (491) is retried; a refusal leaves
   * the media as it was and rejects.
   */
  reinvite(callId: string | Call, options?: ReofferOptions): Promise<void>
  /** Sends an UPDATE (RFC 3311) with our SDP offer (default) or without a body (`offer: false`). */
  update(callId: string | Call, options?: ReofferOptions): Promise<void>
  /**
   * Transfers a confirmed call by REFER. `target`: a number or SIP URI (blind transfer), or
   * another of our calls, a Call or its id (attended transfer: Refer-To carries Replaces naming
   * that call's dialog). Resolves when the peer accepts the REFER (2xx); rejects with the
   * status otherwise. Progress follows as `transfer` events until `final`.
   */
  transfer(callId: string | Call, target: string | Call, options?: TransferOptions): Promise<void>
  /**
   * Early media on an incoming call not answered yet: 183 Session Progress with our SDP
   * answer (reliable, PRACKed, when 100rel is in force) and the call's media starts, so
   * playFile/playTone/record/audio work before answer(). The call stays 'incoming'; the 200 of
   * answer() repeats the same answer. Rejects when the INVITE had no SDP offer.
   */
  progress(callId: string | Call, options?: ProgressOptions): Promise<void>
  /** Plays a WAV file (any common rate/channels, converted) to the call; resolves when it ends or is stopped; rejects with the path and reason if unreadable. */
  playFile(callId: string, path: string, options?: PlayFileOptions): Promise<void>
  /** Plays a tone (or a two-tone pair); resolves when it ends or is stopped. */
  playTone(callId: string, options?: ToneOptions): Promise<void>
  /** Stops file/tone playback (their promises resolve). */
  stopPlayback(callId: string): Promise<void>
  /** Records the call to a 16-bit WAV file; resolves once recording has started. */
  record(callId: string, path: string, options?: RecordOptions): Promise<void>
  stopRecording(callId: string): Promise<RecordingInfo>
  /** Sends DTMF digits (0-9 * # A-D); resolves when all were sent. */
  sendDtmf(callId: string, digits: string, options?: SendDtmfOptions): Promise<void>
  /** Connects two calls' audio both ways (transcoding when their codecs differ). */
  bridge(callIdA: string, callIdB: string): Promise<void>
  /** Disconnects a call from its bridge partner. */
  unbridge(callId: string): Promise<void>
  /** RTP statistics of a call. */
  callStats(callId: string): CallStats
  /** The calls not yet disconnected. */
  calls(): Call[]
  getCall(callId: string): Call | undefined
  counters(): EndpointCounters
  /**
   * Counters and gauges of registrations, calls, RTP and transports, as a plain object. Never
   * throws: before `start()` every figure is 0; after `stop()` the counters keep the run's
   * totals and the gauges are 0; a new `start()` begins from 0 again (a counter reset).
   */
  metrics(): SipMetrics
  /**
   * `metrics()` in the Prometheus text exposition format 0.0.4, metric names prefixed
   * `sip_native_`; serve it with `Content-Type: text/plain; version=0.0.4; charset=utf-8`.
   */
  metricsText(): string
  /** The media pacing clock's tick interval quantiles in ms (20 = perfect pacing). */
  mediaClock(): MediaClock
  /**
   * Adds an operator's account while running: a typed account or an operator settings row
   * (the same checks and `pbx_*` mapping as at start; a duplicate extension is an error).
   * Resolves once the account is in the table; its `registration` events follow.
   */
  addAccount(row: AccountConfig | OperatorSettingsRow): Promise<void>
  /**
   * Removes an account: its calls end (BYE/CANCEL/603 with `Reason: SIP;cause=200;text="account
   * removed"`) and it un-REGISTERs; resolves when both are done (bounded by `stopGraceMs`).
   * Rejects for an unknown extension.
   */
  removeAccount(extension: string): Promise<void>
  /** The accounts with their registration state. */
  accounts(): AccountStatus[]
  /** A snapshot of a call; throws for a call the engine does not know (any more). */
  callInfo(callId: string | Call): CallInfo
}

/** The name the call-center service uses; the same class. */
export declare class PJSIPNativeService extends SipService {}
export default SipService

/** Options of `hold()`. */
export interface HoldOptions {
  /** A WAV file (any common rate/channels) looped to the peer while the call is held. */
  music?: string
}

/** Options of `reinvite()` and `update()`. */
export interface ReofferOptions {
  /** Send our SDP offer (default true); false: no body (a re-INVITE then asks the peer to offer). */
  offer?: boolean
}

/** Who holds a call. */
export type HoldState = 'none' | 'local' | 'remote' | 'both'
