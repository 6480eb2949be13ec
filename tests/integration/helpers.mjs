// Integration-test helpers: start the real sigtracker binary, talk to it with `ws` clients and
// with hand-made HTTP requests and WebSocket frames over plain TCP sockets.
//
// Environment:
//   SIGTRACKER_BIN        the binary (default: build/sigtracker of this tree)
//   SIGTRACKER_SANITIZED  "1" for an ASan+UBSan build: timeouts are stretched, and every stop()
//                         checks the exit status and the sanitizer output (it always does both,
//                         the sanitizer text simply never appears in a plain build).
//
// The end of every test file stops (SIGTERM) each server still running and fails the file unless it
// exited with code 0 and printed no sanitizer report; stopChecked() does the same at any time.
//
// Every server is started as
//   $SIGTRACKER_BIN --host 127.0.0.1 --port <free port> --db <fresh tmpdir>/t.db [extra flags]
// and considered up once GET /health answers 200. Servers still running when the test process
// exits are killed (SIGKILL), so a failing test never leaves one behind.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after } from 'node:test'
import { inspect } from 'node:util'
import WebSocket from 'ws'

export { WebSocket }

const HERE = path.dirname(fileURLToPath(import.meta.url))
export const ROOT = path.resolve(HERE, '..', '..')
export const BIN = path.resolve(process.env.SIGTRACKER_BIN || path.join(ROOT, 'build', 'sigtracker'))
export const SANITIZED = process.env.SIGTRACKER_SANITIZED === '1'
export const HOST = '127.0.0.1'

/** Multiplier for time limits that depend on the speed of the server. */
export const SLOW = SANITIZED ? 3 : 1
/** Default time to wait for one expected message. */
export const MSG_TIMEOUT_MS = 3000 * SLOW
const STARTUP_TIMEOUT_MS = 10000 * SLOW
const STOP_TIMEOUT_MS = 10000 * SLOW

/** Text that must never appear in a sanitized server's stderr. */
export const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer', 'WARNING: ThreadSanitizer']

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

// ------------------------------------------------------------------------------------------------
// Server process

const running = new Set()
const servers = new Set()

// The end-of-file check: every server this test file started and did not stop-and-check itself is
// stopped with SIGTERM now, and must exit with code 0 and no sanitizer report. (A root-level hook:
// it runs after every test and suite hook of the file, and its failure fails the run.)
after(async () => {
  const failures = []
  for (const srv of servers) {
    if (srv.checked || !srv.child) continue
    try {
      await srv.stopChecked()
    } catch (err) {
      failures.push(err.message)
    } finally {
      srv.cleanup()
    }
  }
  if (failures.length) assert.fail(failures.join('\n\n'))
})

process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL') } catch {}
  }
})

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** The environment for a server process: sanitizer options unless the caller set them. */
function serverEnv () {
  const env = { ...process.env }
  if (SANITIZED) {
    env.ASAN_OPTIONS ??= 'detect_leaks=1:abort_on_error=1'
    env.UBSAN_OPTIONS ??= 'print_stacktrace=1:halt_on_error=1'
  }
  return env
}

/** Returns the lines of text that show a sanitizer report, or []. */
export function sanitizerFindings (stderr) {
  return stderr.split('\n').filter((line) => SANITIZER_MARKERS.some((m) => line.includes(m)))
}

/**
 * The messages of the server's log lines, decoded, one a line: the msg field of each logfmt line
 * (--log-format text, where quotes and backslashes in a message are escaped) or JSON line; other
 * lines (a sanitizer's report, main's "sigtracker: ..." on stderr) are kept as they are.
 */
export function logMessages (stderr) {
  return stderr.split('\n').map((line) => {
    if (line.startsWith('{')) {
      try {
        return JSON.parse(line).msg ?? line
      } catch {
        return line
      }
    }
    const m = /^ts=\S+ level=\S+ msg=(?:"((?:[^"\\]|\\.)*)"|(\S*))/.exec(line)
    if (!m) return line
    if (m[2] !== undefined) return m[2]
    return m[1].replace(/\\(x[0-9a-f]{2}|.)/g, (_, e) =>
      e === 'n' ? '\n' : e === 't' ? '\t' : e[0] === 'x' && e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : e)
  }).join('\n')
}

function tail (text, n = 4000) {
  return text.length > n ? '...' + text.slice(-n) : text
}

/**
 * Runs the binary with the given arguments, expecting it to exit by itself (start-up errors).
 * Returns { code, signal, stderr, stdout }. Kills it and throws if it is still running after
 * timeoutMs.
 */
export function runBinary (args, { timeoutMs = STARTUP_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv() })
    running.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${BIN} ${args.join(' ')} was still running after ${timeoutMs} ms ` +
        `(expected it to exit); stderr:\n${tail(stderr)}`))
    }, timeoutMs)
    child.on('error', (err) => { clearTimeout(timer); running.delete(child); reject(err) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      running.delete(child)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/**
 * Asserts that a stopped server (the result of stop()) exited with code 0 on SIGTERM and that its
 * stderr has no sanitizer report.
 */
export function assertCleanExit (result, what = 'server') {
  const findings = sanitizerFindings(result.stderr)
  assert.deepEqual(findings, [],
    `${what}: sanitizer report in stderr:\n${tail(result.stderr, 20000)}`)
  assert.ok(result.code === 0 && result.signal === null,
    `${what}: expected exit code 0 after SIGTERM, got code ${result.code} signal ${result.signal}; ` +
    `stderr:\n${tail(result.stderr)}`)
}

export class Server {
  constructor ({ args = [], dir, dbPath, port }) {
    this.extraArgs = args
    this.dir = dir
    this.dbPath = dbPath
    this.port = port
    this.child = null
    this.exit = null // { code, signal } once exited
    this._stderr = ''
    this._stderrAll = ''
    this.checked = false // the current process's exit was checked
    servers.add(this)
  }

  get url () { return `ws://${HOST}:${this.port}/` }
  get httpBase () { return `http://${HOST}:${this.port}` }

  /** stderr of the current process. */
  get stderr () { return this._stderr }
  /** stderr of every process started by this Server (across restarts). */
  get stderrAll () { return this._stderrAll }

  args () {
    return ['--host', HOST, '--port', String(this.port), '--db', this.dbPath, ...this.extraArgs]
  }

  async _spawn () {
    this._stderr = ''
    this.exit = null
    this.checked = false
    const child = spawn(BIN, this.args(), { stdio: ['ignore', 'ignore', 'pipe'], env: serverEnv() })
    this.child = child
    running.add(child)
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d) => {
      this._stderr += d
      this._stderrAll += d
    })
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        running.delete(child)
        this.exit = { code, signal }
        resolve(this.exit)
      })
    })
    child.on('error', (err) => {
      this._stderr += `\nspawn error: ${err.message}\n`
    })
    const deadline = Date.now() + STARTUP_TIMEOUT_MS
    for (;;) {
      if (this.exit) {
        const err = new Error(`server exited during start-up (code ${this.exit.code}, signal ` +
          `${this.exit.signal}); args: ${this.args().join(' ')}\nstderr:\n${tail(this._stderr)}`)
        err.exitedEarly = true
        err.stderr = this._stderr
        throw err
      }
      try {
        const res = await httpGet(this, '/health', { timeoutMs: 1000 })
        if (res.status === 200) return this
      } catch {}
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`server did not answer GET /health within ${STARTUP_TIMEOUT_MS} ms; ` +
          `stderr:\n${tail(this._stderr)}`)
      }
      await sleep(25)
    }
  }

  /**
   * Sends SIGTERM and waits for the process to exit. Returns { code, signal, stderr }. Does not
   * judge the result: see stopChecked().
   */
  async stop () {
    if (!this.child) throw new Error('server was never started')
    if (!this.exit) {
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await this.exited
      clearTimeout(timer)
      if (this.exit.signal === 'SIGKILL') {
        this._stderr += `\n[helpers] no exit within ${STOP_TIMEOUT_MS} ms of SIGTERM: killed\n`
      }
    }
    return { ...this.exit, stderr: this._stderr }
  }

  /** stop(), then asserts a clean exit (code 0, no sanitizer report). Returns the result. */
  async stopChecked () {
    const result = await this.stop()
    this.checked = true
    assertCleanExit(result, `server on port ${this.port}`)
    return result
  }

  /**
   * Stops the server (asserting a clean exit) and starts it again with the same flags on the same
   * database, on the same port when it is still free (another one otherwise).
   */
  async restart () {
    const result = await this.stopChecked()
    await this.start()
    return result
  }

  /**
   * Starts the process again (after stop() or a crash) with the same flags and database, on the
   * same port when it is still free (another one otherwise).
   */
  async start () {
    if (this.child && !this.exit) throw new Error('server is still running')
    try {
      await this._spawn()
    } catch (err) {
      if (!err.exitedEarly || !/cannot listen/.test(err.stderr || '')) throw err
      this.port = await freePort()
      await this._spawn()
    }
    return this
  }

  /** Removes the temporary directory (the server must be stopped). */
  cleanup () {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }
}

/**
 * Starts a server with `args` added to the standard flags. Options:
 *   args   extra command-line flags
 *   t      a node:test context: the server is then stopped (and its exit checked) in t.after
 * Retries with another port when the chosen one was taken in the meantime.
 */
export async function startServer ({ args = [], t } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-it-'))
  const dbPath = path.join(dir, 't.db')
  let srv
  for (let attempt = 1; ; attempt++) {
    srv = new Server({ args, dir, dbPath, port: await freePort() })
    try {
      await srv._spawn()
      break
    } catch (err) {
      servers.delete(srv) // judged here: it never served
      if (!err.exitedEarly || !/cannot listen/.test(err.stderr || '') || attempt >= 3) {
        rmSync(dir, { recursive: true, force: true })
        throw err
      }
    }
  }
  if (t) {
    t.after(async () => {
      try {
        await srv.stopChecked()
      } finally {
        srv.cleanup()
      }
    })
  }
  return srv
}

// ------------------------------------------------------------------------------------------------
// Plain HTTP

/**
 * GET path with Node's http client (no keep-alive), from localAddress when given. Returns
 * { status, headers, body }.
 */
export function httpGet (srv, p, { timeoutMs = MSG_TIMEOUT_MS, headers = {}, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const opts = { host: HOST, port: srv.port, path: p, agent: false, headers, localAddress }
    const req = http.get(opts, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${p}: no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}

/** GET /stats.json (from localAddress when given), parsed. */
export async function stats (srv, { localAddress } = {}) {
  const res = await httpGet(srv, '/stats.json', { localAddress })
  assert.equal(res.status, 200, `GET /stats.json answered ${res.status}: ${res.body}`)
  return JSON.parse(res.body)
}

/**
 * Polls /stats.json until check(stats) returns true; returns the last stats. Fails after
 * timeoutMs with the last stats in the message.
 */
export async function waitForStats (srv, check, { timeoutMs = 3000 * SLOW, what = '', localAddress } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    last = await stats(srv, { localAddress })
    if (check(last)) return last
    if (Date.now() > deadline) {
      assert.fail(`stats never satisfied ${what || check.toString()} within ${timeoutMs} ms; ` +
        `last: ${JSON.stringify(last)}`)
    }
    await sleep(25)
  }
}

/**
 * Sends `request` (a string or Buffer) on a fresh TCP connection and collects everything until the
 * server closes. Returns { raw, status, headers, body } (headers lower-cased).
 */
export function rawHttp (srv, request, { timeoutMs = MSG_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, HOST)
    const chunks = []
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error(`raw HTTP: the server did not close within ${timeoutMs} ms; got:\n` +
        Buffer.concat(chunks).toString('latin1')))
    }, timeoutMs)
    sock.on('connect', () => sock.write(request))
    sock.on('data', (d) => chunks.push(d))
    sock.on('error', (err) => { clearTimeout(timer); reject(err) })
    sock.on('close', () => {
      clearTimeout(timer)
      const raw = Buffer.concat(chunks).toString('latin1')
      resolve({ raw, ...parseHttpHead(raw) })
    })
  })
}

/** Parses a response head (and body when the head is complete). */
export function parseHttpHead (raw) {
  const end = raw.indexOf('\r\n\r\n')
  const head = end >= 0 ? raw.slice(0, end) : raw
  const lines = head.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] || '')
  const headers = {}
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  return { status: m ? Number(m[1]) : null, headers, body: end >= 0 ? raw.slice(end + 4) : '' }
}

// ------------------------------------------------------------------------------------------------
// WebSocket client with a message queue

function describePredicate (pred) {
  if (pred === undefined) return 'any message'
  if (typeof pred === 'function') return pred.description || pred.toString()
  return JSON.stringify(pred)
}

/**
 * Turns a predicate argument into a function on parsed messages: a function is used as is, an
 * object matches messages whose own fields deep-equal each of its fields.
 */
function toMatcher (pred) {
  if (pred === undefined) return () => true
  if (typeof pred === 'function') return pred
  return (m) => m !== null && typeof m === 'object' &&
    Object.entries(pred).every(([k, v]) => isDeepStrictEqual(m[k], v))
}

function isDeepStrictEqual (a, b) {
  try {
    assert.deepStrictEqual(a, b)
    return true
  } catch {
    return false
  }
}

export class Client {
  constructor (ws, name) {
    this.ws = ws
    this.name = name
    this.queue = [] // { text, json, binary, data }
    this.waiters = []
    this.closeInfo = null
    this.pings = 0
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        for (const w of this.waiters.splice(0)) w.onClose()
        resolve(this.closeInfo)
      })
    })
    ws.on('ping', () => { this.pings++ })
    ws.on('error', () => {}) // surfaced through close and the waiters
    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat([].concat(data))
      const text = buf.toString('utf8')
      let json = null
      try { json = JSON.parse(text) } catch {}
      const entry = { text, json, binary: isBinary, data: buf }
      const i = this.waiters.findIndex((w) => w.match(entry))
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(entry)
      else this.queue.push(entry)
    })
  }

  /** Sends a JavaScript value as a JSON text message. */
  sendJson (value) {
    this.ws.send(JSON.stringify(value))
  }

  /** Sends a string as a text message, or a Buffer as a binary one. */
  sendRaw (data) {
    this.ws.send(data, { binary: Buffer.isBuffer(data) })
  }

  /**
   * Resolves with the first message (parsed JSON) that matches pred, removing it from the queue.
   * Messages that do not match stay queued. Rejects with a clear message after timeoutMs, or at
   * once if the connection closes first.
   */
  async next (pred, timeoutMs = MSG_TIMEOUT_MS) {
    return (await this.nextEntry(pred, timeoutMs)).json
  }

  /** Like next(), but resolves with { text, json, binary, data } (text is the raw frame text). */
  nextEntry (pred, timeoutMs = MSG_TIMEOUT_MS) {
    const fn = toMatcher(pred)
    const match = (e) => fn(e.json, e)
    const i = this.queue.findIndex(match)
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0])
    const desc = describePredicate(pred)
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (e) => { clearTimeout(timer); resolve(e) },
        onClose: () => {
          clearTimeout(timer)
          reject(new Error(`${this.name}: connection closed (code ${this.closeInfo.code}, ` +
            `reason ${JSON.stringify(this.closeInfo.reason)}) while waiting for ${desc}; ` +
            `unmatched messages: ${this.pending()}`))
        }
      }
      const timer = setTimeout(() => {
        const k = this.waiters.indexOf(waiter)
        if (k >= 0) this.waiters.splice(k, 1)
        reject(new Error(`${this.name}: no message matching ${desc} within ${timeoutMs} ms; ` +
          `unmatched messages: ${this.pending()}`))
      }, timeoutMs)
      if (this.closeInfo) return waiter.onClose()
      this.waiters.push(waiter)
    })
  }

  /** The queued, unconsumed messages, for error texts. */
  pending () {
    return inspect(this.queue.map((e) => e.json ?? e.text), { depth: 5, breakLength: Infinity })
  }

  /** Sends value and waits for the next message matching pred (default: any message). */
  async request (value, pred, timeoutMs) {
    this.sendJson(value)
    return this.next(pred, timeoutMs)
  }

  /**
   * ST dialect barrier: sends {"type":"ping"} and waits for the pong, then asserts that nothing
   * else arrived before it (every message sent to us earlier has been read by then).
   */
  async assertQuiet (what = '') {
    this.sendJson({ type: 'ping' })
    const first = await this.next()
    assert.deepEqual(first, { type: 'pong' },
      `${this.name}: expected no message${what ? ' ' + what : ''} before the pong, got ` +
      JSON.stringify(first))
    assert.equal(this.queue.length, 0, `${this.name}: unexpected messages ${this.pending()}`)
  }

  /** Identifies with an ST ola; asserts success and returns the answer (with token). */
  async ola (peerId, extra = {}) {
    const ans = await this.request({ type: 'ola', peer_id: peerId, ...extra }, { type: 'ola' })
    assert.equal(ans.ok, true, `${this.name}: ola ${peerId} refused: ${JSON.stringify(ans)}`)
    this.peerId = peerId
    return ans
  }

  get isOpen () { return this.ws.readyState === WebSocket.OPEN }

  /** Starts a normal close and waits for the close event. */
  async close (code = 1000) {
    if (!this.closeInfo) this.ws.close(code)
    return this.closed
  }

  /** Destroys the TCP connection without a close handshake. */
  terminate () {
    this.ws.terminate()
    return this.closed
  }
}

/** Opens a `ws` client to srv (path "/" unless given). Resolves once open. */
export function connect (srv, { path: p = '/', name, headers } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${HOST}:${srv.port}${p}`, { headers, perMessageDeflate: false })
    const client = new Client(ws, name || `client@${p}`)
    const onError = (err) => reject(new Error(`${client.name}: connect failed: ${err.message}`))
    ws.once('error', onError)
    ws.once('open', () => {
      ws.off('error', onError)
      resolve(client)
    })
  })
}

/** Opens n clients named prefix1..prefixN. */
export function connectMany (srv, n, prefix = 'c') {
  return Promise.all(Array.from({ length: n }, (_, i) => connect(srv, { name: `${prefix}${i + 1}` })))
}

/** Closes every client given (normal close); ignores ones already closed. */
export async function closeAll (...clients) {
  await Promise.all(clients.flat().filter(Boolean).map((c) => c.close().catch(() => {})))
}

/** A random 40-hex-character infohash (lower case). */
export function randomInfoHash () {
  return randomBytes(20).toString('hex')
}

/** A random ST peer ID with the given prefix. */
export function randomPeerId (prefix = 'p') {
  return `${prefix}-${randomBytes(6).toString('hex')}`
}

// ------------------------------------------------------------------------------------------------
// Raw WebSocket over net.Socket: hand-made frames

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xA }

/**
 * Builds one client-to-server frame.
 *   fin (true), rsv (0..7, the RSV1-3 bits), opcode, payload (Buffer or string),
 *   mask (true), maskKey (4 random bytes), lengthForm ('auto' | 16 | 64) to force an extended
 *   length encoding.
 */
export function buildFrame ({ fin = true, rsv = 0, opcode = OP.TEXT, payload = Buffer.alloc(0),
  mask = true, maskKey = randomBytes(4), lengthForm = 'auto' } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8')
  const len = data.length
  let head
  let form = lengthForm
  if (form === 'auto') form = len < 126 ? 7 : len <= 0xffff ? 16 : 64
  if (form === 7) {
    head = Buffer.alloc(2)
    head[1] = len
  } else if (form === 16) {
    head = Buffer.alloc(4)
    head[1] = 126
    head.writeUInt16BE(len, 2)
  } else {
    head = Buffer.alloc(10)
    head[1] = 127
    head.writeBigUInt64BE(BigInt(len), 2)
  }
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)
  if (!mask) return Buffer.concat([head, data])
  head[1] |= 0x80
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = data[i] ^ maskKey[i & 3]
  return Buffer.concat([head, maskKey, body])
}

/** A close frame payload: 2-byte code and a UTF-8 (or raw Buffer) reason. */
export function closePayload (code, reason = '') {
  const r = Buffer.isBuffer(reason) ? reason : Buffer.from(reason, 'utf8')
  const b = Buffer.alloc(2)
  b.writeUInt16BE(code, 0)
  return Buffer.concat([b, r])
}

/**
 * A raw WebSocket connection: the upgrade is done by hand and frames are parsed as they arrive.
 * Frames from the server are queued as { fin, rsv, opcode, masked, payload }; for close frames,
 * code and reason are added; for text frames, text (and json when it parses).
 */
export class RawWs {
  constructor (sock, name) {
    this.sock = sock
    this.name = name
    this.buf = Buffer.alloc(0)
    this.frames = []
    this.waiters = []
    this.ended = false
    this.protocolError = null
    this.endedPromise = new Promise((resolve) => { this._resolveEnded = resolve })
  }

  _attach () {
    this.sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d])
      this._parse()
    })
    const finish = () => {
      if (this.ended) return
      this.ended = true
      for (const w of this.waiters.splice(0)) w.onEnd()
      this._resolveEnded()
    }
    this.sock.on('end', finish)
    this.sock.on('close', finish)
    this.sock.on('error', () => finish())
  }

  _parse () {
    for (;;) {
      const b = this.buf
      if (b.length < 2) return
      let len = b[1] & 0x7f
      let off = 2
      if (len === 126) {
        if (b.length < 4) return
        len = b.readUInt16BE(2)
        off = 4
      } else if (len === 127) {
        if (b.length < 10) return
        len = Number(b.readBigUInt64BE(2))
        off = 10
      }
      const masked = (b[1] & 0x80) !== 0
      if (masked) off += 4
      if (b.length < off + len) return
      let payload = Buffer.from(b.subarray(off, off + len))
      if (masked) {
        const key = b.subarray(off - 4, off)
        for (let i = 0; i < len; i++) payload[i] ^= key[i & 3]
      }
      const frame = { fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, masked, payload }
      if (frame.opcode === OP.CLOSE) {
        frame.code = len >= 2 ? payload.readUInt16BE(0) : null
        frame.reason = len > 2 ? payload.subarray(2).toString('utf8') : ''
      }
      if (frame.opcode === OP.TEXT) {
        frame.text = payload.toString('utf8')
        try { frame.json = JSON.parse(frame.text) } catch {}
      }
      this.buf = b.subarray(off + len)
      const i = this.waiters.findIndex((w) => w.match(frame))
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(frame)
      else this.frames.push(frame)
    }
  }

  /** Writes bytes as they are. */
  write (bytes) {
    this.sock.write(bytes)
  }

  /** Builds a frame (see buildFrame) and writes it. */
  sendFrame (opts) {
    this.write(buildFrame(opts))
  }

  sendText (text, opts = {}) {
    this.sendFrame({ opcode: OP.TEXT, payload: text, ...opts })
  }

  sendJson (value) {
    this.sendText(JSON.stringify(value))
  }

  /** Resolves with the next frame from the server matching pred (a function on the frame). */
  nextFrame (pred = () => true, timeoutMs = MSG_TIMEOUT_MS) {
    const i = this.frames.findIndex(pred)
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0])
    const desc = describePredicate(pred)
    return new Promise((resolve, reject) => {
      const waiter = {
        match: pred,
        resolve: (f) => { clearTimeout(timer); resolve(f) },
        onEnd: () => {
          clearTimeout(timer)
          reject(new Error(`${this.name}: the server closed the TCP connection while waiting ` +
            `for a frame matching ${desc}; frames left: ${this.describeFrames()}`))
        }
      }
      const timer = setTimeout(() => {
        const k = this.waiters.indexOf(waiter)
        if (k >= 0) this.waiters.splice(k, 1)
        reject(new Error(`${this.name}: no frame matching ${desc} within ${timeoutMs} ms; ` +
          `frames left: ${this.describeFrames()}`))
      }, timeoutMs)
      if (this.ended) return waiter.onEnd()
      this.waiters.push(waiter)
    })
  }

  /** The next text frame, parsed. */
  async nextJson (timeoutMs) {
    const f = await this.nextFrame((fr) => fr.opcode === OP.TEXT, timeoutMs)
    return f.json
  }

  describeFrames () {
    return inspect(this.frames.map((f) => ({ opcode: f.opcode, fin: f.fin, code: f.code, text: f.text ?? f.payload.toString('hex') })), { breakLength: Infinity })
  }

  /**
   * Waits for the server's close frame and then for the end of the TCP stream. Returns
   * { code, reason, before } where before lists the frames (other than the close) that were still
   * queued, for example the {"type":"bye"} message.
   */
  async expectClose (timeoutMs = MSG_TIMEOUT_MS) {
    const close = await this.nextFrame((f) => f.opcode === OP.CLOSE, timeoutMs)
    const before = this.frames.splice(0)
    await this.waitEnd(timeoutMs)
    return { code: close.code, reason: close.reason, before, frame: close }
  }

  /** Waits until the server ends the TCP stream (EOF or reset). */
  async waitEnd (timeoutMs = MSG_TIMEOUT_MS) {
    let timer
    const timeout = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: the server did not close the TCP ` +
        `connection within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      await Promise.race([this.endedPromise, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** ST ping/pong round trip on this raw connection. */
  async roundTrip () {
    this.sendJson({ type: 'ping' })
    const m = await this.nextJson()
    assert.deepEqual(m, { type: 'pong' })
  }

  destroy () {
    this.sock.destroy()
  }
}

/** The Sec-WebSocket-Accept value for a key. */
export function acceptFor (key) {
  return createHash('sha1').update(key + WS_GUID).digest('base64')
}

/**
 * Opens a TCP connection and performs the WebSocket upgrade by hand. Returns a RawWs whose
 * `response` holds the parsed 101 answer. Options: path, headers (extra or overriding header
 * lines as an object), name.
 */
export function rawWs (srv, { path: p = '/', headers = {}, name = `raw@${p}` } = {}) {
  const key = randomBytes(16).toString('base64')
  const hdrs = {
    Host: `${HOST}:${srv.port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...headers
  }
  const request = `GET ${p} HTTP/1.1\r\n` +
    Object.entries(hdrs).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n'
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, HOST)
    sock.setNoDelay(true)
    let head = Buffer.alloc(0)
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error(`${name}: no upgrade answer within ${MSG_TIMEOUT_MS} ms; got ` +
        JSON.stringify(head.toString('latin1'))))
    }, MSG_TIMEOUT_MS)
    const onData = (d) => {
      head = Buffer.concat([head, d])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      clearTimeout(timer)
      sock.off('data', onData)
      sock.off('close', onClose)
      const response = parseHttpHead(head.subarray(0, end + 4).toString('latin1'))
      if (response.status !== 101) {
        sock.destroy()
        return reject(new Error(`${name}: upgrade refused: ${head.toString('latin1')}`))
      }
      if (response.headers['sec-websocket-accept'] !== acceptFor(key)) {
        sock.destroy()
        return reject(new Error(`${name}: wrong Sec-WebSocket-Accept ` +
          `${response.headers['sec-websocket-accept']} (want ${acceptFor(key)})`))
      }
      const raw = new RawWs(sock, name)
      raw.response = response
      raw._attach()
      const rest = head.subarray(end + 4)
      if (rest.length) {
        raw.buf = Buffer.from(rest)
        raw._parse()
      }
      resolve(raw)
    }
    const onClose = () => {
      clearTimeout(timer)
      reject(new Error(`${name}: connection closed during the upgrade; got ` +
        JSON.stringify(head.toString('latin1'))))
    }
    sock.on('data', onData)
    sock.on('close', onClose)
    sock.on('error', () => {})
    sock.on('connect', () => sock.write(request))
  })
}

// ------------------------------------------------------------------------------------------------
// WebTorrent binary strings

/** A JS "binary string" (one char per byte, 0-255) of the given bytes. */
export function binStr (bytes) {
  return String.fromCharCode(...bytes)
}

/**
 * A 20-byte WebTorrent ID as a binary string. The first bytes are the nasty ones (NUL, '"', '\',
 * DEL, 0x80, 0xFF and a control byte) so that escaping is always exercised; the rest is random.
 */
export function nastyId () {
  const fixed = [0x00, 0x22, 0x5c, 0x7f, 0x80, 0xff, 0x0a]
  return binStr([...fixed, ...randomBytes(20 - fixed.length)])
}

/** A random 20-byte binary string. */
export function randomBinId () {
  return binStr(randomBytes(20))
}

/** The 40-hex form of a binary string (for the ST dialect). */
export function binToHex (s) {
  return Buffer.from(s, 'latin1').toString('hex')
}

/** True when every byte of buf is 7-bit ASCII. */
export function isSevenBit (buf) {
  for (const b of buf) if (b > 0x7f) return false
  return true
}
