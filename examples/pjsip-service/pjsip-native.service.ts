// The call-center service's PJSIP wrapper, migrated from a Python pjsua2 child process (JSON lines
// over stdio) to the in-process `sip-native` addon.
//
// What stayed the same for the callers:
//   - the class name and that it is an EventEmitter;
//   - start(), stop(), makeCall(from, to), hangup(callId), answer(callId), reject(callId);
//   - handleEvent(event) receives the same `{ type: 'incoming_call', from, to, ... }` objects the
//     Python wrapper printed, and re-emits them under their `type` (plus a catch-all 'event').
// What went away: the child process, its stdout parser, the restart-on-crash logic and the
// request/response correlation ids. Every call is now a Promise that settles with the result.
//
// The service's DI framework (NestJS in production) is left out: the constructor takes the rows
// the settings repository returns.

import { EventEmitter } from 'node:events'
import {
  SipService,
  type Call,
  type CallState,
  type CallStateEvent,
  type IncomingCallEvent,
  type OperatorSettingsRow,
  type PbxSettingsRow,
  type RegistrationEvent,
  type RegistrationState,
  type SipMetrics,
} from 'sip-native'

/** The events, as the Python wrapper printed them (one JSON object per line). */
export type PjsipEvent =
  | {
      type: 'incoming_call'
      callId: string
      /** Caller URI, e.g. `sip:1000@it005.ru`. */
      from: string
      /** Called URI. */
      to: string
      /** Caller number (user part of `from`). */
      fromUser: string
      /** Operator extension that was called. */
      account: string
      displayName: string | null
      headers: Array<[string, string]>
    }
  | {
      type: 'registration_state'
      account: string
      state: RegistrationState
      code: number
      reason: string
      expires: number
    }
  | {
      type: 'call_state'
      callId: string
      state: CallState
      direction: 'incoming' | 'outgoing'
      code: number
      reason: string
    }
  | { type: 'call_ended'; callId: string; code: number; reason: string }
  | { type: 'error'; message: string }

export interface MakeCallResult {
  success: boolean
  callId?: string
  error?: string
}

export interface CommandResult {
  success: boolean
  error?: string
}

export interface Logger {
  log(message: string): void
  warn(message: string): void
  error(message: string): void
}

export class PJSIPNativeService extends EventEmitter {
  private sip: SipService | null = null
  private readonly activeCalls = new Map<string, Call>()
  private readonly registered = new Map<string, RegistrationState>()

  constructor(
    private readonly pbxSettings: PbxSettingsRow,
    private readonly operators: OperatorSettingsRow[],
    private readonly logger: Logger = console,
  ) {
    super()
  }

  /** True once start() resolved and until stop(). */
  get isStarted(): boolean {
    return this.sip?.isRunning ?? false
  }

  /** Registration state per operator extension, as last reported. */
  registrationStates(): ReadonlyMap<string, RegistrationState> {
    return this.registered
  }

  async start(): Promise<void> {
    if (this.sip) return
    if (!this.pbxSettings.pbx_server) throw new Error('PBX settings have no pbx_server')
    // Every row goes through as it is: pbx_transport UDP/TCP/TLS, or pbx_use_websocket with
    // pbx_websocket_url for SIP over WebSocket, as the sip.js softphone used.
    const sip = SipService.fromSettings(this.pbxSettings, this.operators)
    sip.on('incoming_call', (e) => this.onIncomingCall(e))
    sip.on('registration', (e) => this.onRegistration(e))
    sip.on('call_state', (e) => this.onCallState(e))
    sip.on('error', (e) => this.handleEvent({ type: 'error', message: e.message }))

    this.sip = sip
    try {
      await sip.start()
    } catch (err) {
      this.sip = null
      sip.removeAllListeners()
      throw err
    }
    const local = sip.localAddress()
    this.logger.log(`PJSIP native service started on ${local.address}:${local.port}/${local.transport}, ` +
      `${this.operators.length} operator account(s) registering with ${this.pbxSettings.pbx_server}`)
  }

  async stop(): Promise<void> {
    const sip = this.sip
    if (!sip) return
    this.sip = null
    try {
      await sip.stop()
    } finally {
      sip.removeAllListeners()
      this.activeCalls.clear()
      this.registered.clear()
      this.logger.log('PJSIP native service stopped')
    }
  }

  /**
   * Places a call from an operator (`from`: extension or user name) to `to` (a number, an
   * extension or a SIP URI). Resolves once the INVITE is sent; the outcome comes as
   * `call_state` / `call_ended` events.
   */
  async makeCall(from: string, to: string): Promise<MakeCallResult> {
    const sip = this.requireStarted()
    try {
      const call = await sip.makeCall(from, to)
      this.activeCalls.set(call.id, call)
      this.logger.log(`call ${call.id}: ${from} -> ${to}`)
      return { success: true, callId: call.id }
    } catch (err) {
      const message = errorMessage(err)
      this.logger.error(`makeCall ${from} -> ${to} failed: ${message}`)
      return { success: false, error: message }
    }
  }

  async hangup(callId: string): Promise<CommandResult> {
    return this.command('hangup', callId, (sip) => sip.hangup(callId))
  }

  async answer(callId: string): Promise<CommandResult> {
    return this.command('answer', callId, (sip) => sip.answer(callId))
  }

  async reject(callId: string, code = 486): Promise<CommandResult> {
    return this.command('reject', callId, (sip) => sip.reject(callId, code))
  }

  /** Live calls, by id. */
  getActiveCalls(): Call[] {
    return [...this.activeCalls.values()]
  }

  /** The SIP figures for the service's health page (`null` while it is not started). */
  metrics(): SipMetrics | null {
    return this.sip?.metrics() ?? null
  }

  /** The SIP figures for the service's `/metrics` route, in Prometheus text ('' while it is not started). */
  metricsText(): string {
    return this.sip?.metricsText() ?? ''
  }

  /**
   * Single entry point of every event, as before: the old code called this with each JSON line
   * parsed from the Python child. It re-emits the event under its `type` and as 'event'.
   */
  handleEvent(event: PjsipEvent): void {
    switch (event.type) {
      case 'incoming_call':
        this.logger.log(`incoming call ${event.callId} from ${event.from} to ${event.to}`)
        break
      case 'registration_state':
        this.logger.log(`registration ${event.account}: ${event.state} (${event.code} ${event.reason})`)
        break
      case 'call_ended':
        this.logger.log(`call ${event.callId} ended (${event.code} ${event.reason})`)
        break
      case 'error':
        this.logger.error(`sip-native: ${event.message}`)
        break
      default:
        break
    }
    this.emit(event.type, event)
    this.emit('event', event)
  }

  // -------------------------------------------------------------------------------------------

  private onIncomingCall(e: IncomingCallEvent): void {
    const call = this.sip?.getCall(e.callId)
    if (call) this.activeCalls.set(e.callId, call)
    this.handleEvent({
      type: 'incoming_call',
      callId: e.callId,
      from: e.from,
      to: e.to,
      fromUser: e.fromUser,
      account: e.account,
      displayName: e.displayName,
      headers: e.headers,
    })
  }

  private onRegistration(e: RegistrationEvent): void {
    this.registered.set(e.account, e.state)
    this.handleEvent({
      type: 'registration_state',
      account: e.account,
      state: e.state,
      code: e.code,
      reason: e.reason,
      expires: e.expires,
    })
  }

  private onCallState(e: CallStateEvent): void {
    this.handleEvent({
      type: 'call_state',
      callId: e.callId,
      state: e.state,
      direction: e.direction,
      code: e.code,
      reason: e.reason,
    })
    if (e.state === 'disconnected') {
      this.activeCalls.delete(e.callId)
      this.handleEvent({ type: 'call_ended', callId: e.callId, code: e.code, reason: e.reason })
    }
  }

  private async command(
    name: string,
    callId: string,
    run: (sip: SipService) => Promise<void>,
  ): Promise<CommandResult> {
    const sip = this.requireStarted()
    try {
      await run(sip)
      return { success: true }
    } catch (err) {
      const message = errorMessage(err)
      this.logger.warn(`${name} ${callId} failed: ${message}`)
      return { success: false, error: message }
    }
  }

  private requireStarted(): SipService {
    if (!this.sip) throw new Error('PJSIPNativeService is not started: call start() first')
    return this.sip
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

// Example wiring with the rows the settings repository returns (see DESIGN.md):
//
//   const service = new PJSIPNativeService(
//     { pbx_server: 'it005.ru', pbx_port: 5060, pbx_transport: 'UDP',
//       pbx_rtp_port_min: 10000, pbx_rtp_port_max: 12000, pbx_use_websocket: false },
//     [{ pbx_extension: '7779', pbx_username: '7779', pbx_password: process.env.PBX_PASSWORD,
//        pbx_display_name: 'Оператор call-центра' }],
//   )
//   service.on('incoming_call', (e) => service.answer(e.callId))
//   await service.start()
//   const { callId } = await service.makeCall('7779', '1000')
