// sip-native: a SIP user agent for Node.js, in Rust. Hand-written facade over the generated
// `binding.d.ts`; this file is the public API.
import { EventEmitter } from 'node:events'

export type Transport = 'udp' | 'tcp' | 'tls' | 'UDP' | 'TCP' | 'TLS'

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
}

/** Typed configuration of a {@link SipService}. */
export interface SipServiceConfig {
  /** PBX / registrar host. Omit for peer-to-peer use (no registration). */
  server?: string
  /** PBX SIP port (default 5060). */
  serverPort?: number
  /** SIP transport (default `'udp'`). */
  transport?: Transport
  /** Local address to bind (default `'0.0.0.0'`). */
  bindAddress?: string
  /** Local SIP port (default 5060; 0 = any free port, see {@link SipService.localAddress}). */
  localPort?: number
  /** Address to advertise in Contact/Via/SDP when it differs from the bound one. */
  publicAddress?: string
  /** RTP port range, inclusive (default 10000-20000). */
  rtpPortMin?: number
  rtpPortMax?: number
  /** Registration lifetime in seconds (default 300). */
  registerExpires?: number
  /** An unanswered incoming call is rejected with 480 after this many ms (default 60000). */
  incomingCallTimeoutMs?: number
  /** An outgoing call with no final answer is cancelled after this many ms (default 60000). */
  inviteTimeoutMs?: number
  /** User-Agent header value. */
  userAgent?: string
  /** Engine log level to stderr (credentials masked): 'error' | 'warn' | 'info' | 'debug' | 'trace'. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug' | 'trace'
  /** The service's `pbx_use_websocket`; only `false` is accepted (native SIP is the point). */
  useWebsocket?: boolean
  websocketUrl?: string
  accounts?: AccountConfig[]
}

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
  /** The account (extension) that was called. */
  account: string
  /** Caller URI, e.g. `sip:1000@pbx`. */
  from: string
  /** Called URI. */
  to: string
  /** Caller's user part (number). */
  fromUser: string
  displayName: string | null
  /** Request headers as [name, value] pairs (credentials masked). */
  headers: Array<[string, string]>
}

export interface CallStateEvent {
  type: 'call_state'
  callId: string
  state: CallState
  direction: 'outgoing' | 'incoming'
  /** Last SIP status code of the call (0 if none). */
  code: number
  reason: string
}

export interface ErrorEvent {
  type: 'error'
  message: string
}

export interface SipServiceEvents {
  registration: [RegistrationEvent]
  incoming_call: [IncomingCallEvent]
  call_state: [CallStateEvent]
  error: [ErrorEvent]
}

export interface LocalAddress {
  address: string
  port: number
  transport: 'udp' | 'tcp' | 'tls'
}

export interface EndpointCounters {
  /** Calls not yet disconnected. */
  liveCalls: number
  /** SIP transactions still held by the stack. */
  liveTransactions: number
  /** Malformed datagrams dropped (or answered 400). */
  malformedMessages: number
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
  hangup(): Promise<void>
}

export interface MakeCallOptions {
  /** Extra headers for the INVITE, e.g. `{ 'X-Campaign': '42' }`. */
  headers?: Record<string, string>
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
  /**
   * Places a call. `from` picks the account (extension, user name or SIP URI); `to` is a number,
   * an extension or a SIP URI. Resolves when the INVITE is sent; follow `call_state` events.
   */
  makeCall(from: string, to: string, options?: MakeCallOptions): Promise<Call>
  /** Answers an incoming call with 200 OK and an SDP answer. */
  answer(callId: string): Promise<void>
  /** Rejects an incoming call (default 486 Busy Here). */
  reject(callId: string, code?: number, reason?: string): Promise<void>
  /** Ends a call: CANCEL before answer, BYE after, or a 603 for an incoming call not answered. */
  hangup(callId: string | Call): Promise<void>
  /** The calls not yet disconnected. */
  calls(): Call[]
  getCall(callId: string): Call | undefined
  counters(): EndpointCounters
}

/** The name the call-center service uses; the same class. */
export declare class PJSIPNativeService extends SipService {}
export default SipService
