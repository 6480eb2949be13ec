// Starts the tracker that the real-client tests talk to.
//
// - With env SIGTRACKER_BIN set: spawns
//     $SIGTRACKER_BIN --host 127.0.0.1 --port <free port> --db <tmpdir>/t.db --log-level warn \
//       [--test-drop-offers] $SIGTRACKER_ARGS
//   and waits until GET http://127.0.0.1:<port>/health answers 200.
// - Otherwise: starts the reference tracker (`bittorrent-tracker/server`) in-process, WebSocket
//   only, on 127.0.0.1 and a free port, as a stand-in for ours.
//
// Relaying of offers is disabled when the caller asks for it ({ noRelay: true }, used by the
// negative control) or when env TRACKER_NO_RELAY=1 is set. For our binary that is the test-only
// flag --test-drop-offers; for the stand-in, the `offers` of every incoming announce are removed
// before the reference server sees them, so announces are still answered but nothing is relayed.
//
// Env TRACKER_RECORD=<file> (stand-in only) appends every WebSocket message in either direction to
// <file> as JSON lines, to see what real clients send.
//
// Returns { url, kind, port, noRelay, logs(), stop() }.

import { execFileSync, spawn } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

const HOST = '127.0.0.1'
const STARTUP_TIMEOUT_MS = 15000

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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function startTracker (opts = {}) {
  const noRelay = Boolean(opts.noRelay) || process.env.TRACKER_NO_RELAY === '1'
  if (process.env.SIGTRACKER_BIN) return startBinary(process.env.SIGTRACKER_BIN, noRelay, Boolean(opts.tls))
  if (opts.tls) throw new Error('the reference tracker has no TLS listener')
  return startReference(noRelay)
}

// --------------------------------------------------------------------------------------------
// Our binary

async function startBinary (bin, noRelay, tls) {
  const extra = (process.env.SIGTRACKER_ARGS || '').split(/\s+/).filter(Boolean)
  // The free port can be taken between probing and binding: if the process exits during
  // start-up, try again (twice) with another port. A process that hangs is not retried.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startBinaryOnce(bin, noRelay, extra, tls)
    } catch (err) {
      if (!err.exitedEarly || attempt >= 3) throw err
    }
  }
}

async function startBinaryOnce (bin, noRelay, extra, tls) {
  const port = await freePort()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-rc-'))
  const args = ['--host', HOST, '--port', String(port), '--db', path.join(dir, 't.db'),
    '--log-level', 'warn']
  // With tls: a self-signed certificate for 127.0.0.1 and a wss listener next to the ws one (the
  // clients trust it through NODE_EXTRA_CA_CERTS=caFile).
  let tlsPort = 0
  const caFile = path.join(dir, 'cert.pem')
  if (tls) {
    tlsPort = await freePort()
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', caFile], { stdio: 'ignore' })
    args.push('--listen', `ws://${HOST}:${port}`, '--listen', `wss://${HOST}:${tlsPort}`,
      '--tls-cert', caFile, '--tls-key', path.join(dir, 'key.pem'))
  }
  if (noRelay) args.push('--test-drop-offers')
  args.push(...extra)

  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const append = (chunk) => {
    output += chunk
    if (output.length > 200000) output = output.slice(-100000)
  }
  child.stdout.on('data', append)
  child.stderr.on('data', append)
  let exited = null
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal }
      resolve(exited)
    })
    child.on('error', (err) => {
      exited = { error: err.message }
      resolve(exited)
    })
  })
  // Never leave the tracker behind if the test process dies without calling stop().
  const killOnExit = () => { try { child.kill('SIGKILL') } catch {} }
  process.on('exit', killOnExit)

  const cleanup = () => {
    process.removeListener('exit', killOnExit)
    rmSync(dir, { recursive: true, force: true })
  }

  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  let healthy = false
  while (Date.now() < deadline && !exited) {
    try {
      const res = await fetch(`http://${HOST}:${port}/health`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer().catch(() => {})
      if (res.status === 200) { healthy = true; break }
    } catch {}
    await sleep(100)
  }
  if (!healthy) {
    const exitedEarly = Boolean(exited)
    if (!exited) child.kill('SIGKILL')
    await exitPromise
    cleanup()
    const err = new Error(`sigtracker did not become healthy on port ${port} ` +
      `(cmd: ${bin} ${args.join(' ')}; exit: ${JSON.stringify(exited)})\n` +
      `--- tracker output ---\n${output}`)
    err.exitedEarly = exitedEarly
    throw err
  }

  let stopped = false
  return {
    kind: 'sigtracker',
    url: `ws://${HOST}:${port}`,
    tlsUrl: tls ? `wss://${HOST}:${tlsPort}` : null,
    caFile: tls ? caFile : null,
    port,
    noRelay,
    logs: () => output,
    /** The tracker's /stats.json (the plain port serves it). */
    async stats () {
      const res = await fetch(`http://${HOST}:${port}/stats.json`, { signal: AbortSignal.timeout(5000) })
      return res.json()
    },
    async stop () {
      if (stopped) return
      stopped = true
      if (!exited) {
        child.kill('SIGTERM')
        const t = setTimeout(() => { if (!exited) child.kill('SIGKILL') }, 5000)
        await exitPromise
        clearTimeout(t)
      }
      cleanup()
    }
  }
}

// --------------------------------------------------------------------------------------------
// Reference tracker stand-in

// One line per message for the diagnostics: binary ids as hex, SDP reduced to its length.
function summarize (text) {
  let msg
  try {
    msg = JSON.parse(text)
  } catch {
    return `(${text.length} bytes, not JSON)`
  }
  if (!msg || typeof msg !== 'object') return `(${text.length} bytes) ${text.slice(0, 80)}`
  const id = (v) => (typeof v === 'string' && /^[\x20-\x7e]*$/.test(v)
    ? v
    : Buffer.from(String(v), 'latin1').toString('hex'))
  const parts = [`${Buffer.byteLength(text)}B`]
  for (const [k, v] of Object.entries(msg)) {
    switch (k) {
      case 'offers':
        parts.push(`offers=${Array.isArray(v) ? v.length : typeof v}`)
        break
      case 'offer':
      case 'answer':
        parts.push(`${k}=<${v && v.type} sdp ${v && v.sdp && v.sdp.length}>`)
        break
      case 'info_hash':
      case 'peer_id':
      case 'to_peer_id':
      case 'offer_id':
        parts.push(`${k}=${id(v)}`)
        break
      default:
        parts.push(`${k}=${JSON.stringify(v)}`)
    }
  }
  return parts.join(' ')
}

async function startReference (noRelay) {
  const { default: Server } = await import('bittorrent-tracker/server')
  const recordFile = process.env.TRACKER_RECORD || null
  const log = []
  const note = (line) => {
    log.push(line)
    if (log.length > 2000) log.shift()
  }
  const t0 = Date.now()
  const record = (dir, data) => {
    note(`+${Date.now() - t0}ms ${dir} ${summarize(String(data))}`)
    if (!recordFile) return
    appendFileSync(recordFile, JSON.stringify({ t: Date.now(), dir, msg: String(data) }) + '\n')
  }

  const sockets = new Set()
  let connections = 0

  class StandIn extends Server {
    onWebSocketConnection (socket, opts) {
      const id = ++connections
      sockets.add(socket)
      note(`+${Date.now() - t0}ms conn#${id} open`)
      socket.once('close', () => {
        sockets.delete(socket)
        note(`+${Date.now() - t0}ms conn#${id} closed`)
      })
      const send = socket.send.bind(socket)
      socket.send = (data, ...rest) => { record(`out conn#${id}`, data); return send(data, ...rest) }
      socket.rcId = id
      return super.onWebSocketConnection(socket, opts)
    }

    _onWebSocketRequest (socket, opts, params) {
      record(`in  conn#${socket.rcId}`, params)
      if (noRelay) {
        // Answer the announce, but never relay its offers (negative control).
        try {
          const msg = JSON.parse(String(params))
          if (msg && Array.isArray(msg.offers)) {
            note(`dropped ${msg.offers.length} offers`)
            delete msg.offers
            params = JSON.stringify(msg)
          }
        } catch {}
      }
      return super._onWebSocketRequest(socket, opts, params)
    }
  }

  const server = new StandIn({ http: false, udp: false, ws: true, stats: false })
  server.on('error', (err) => note(`error: ${err.message}`))
  server.on('warning', (err) => note(`warning: ${err.message}`))

  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('reference tracker did not start listening')),
      STARTUP_TIMEOUT_MS)
    server.once('error', (err) => { clearTimeout(t); reject(err) })
    server.listen(0, HOST, () => { clearTimeout(t); resolve() })
  })
  const { port } = server.http.address()

  let stopped = false
  return {
    kind: 'reference',
    url: `ws://${HOST}:${port}`,
    port,
    noRelay,
    logs: () => log.join('\n'),
    stop () {
      if (stopped) return Promise.resolve()
      stopped = true
      // server.close() waits for open connections: cut the WebSockets first.
      for (const socket of sockets) socket.terminate()
      return new Promise((resolve) => {
        const t = setTimeout(resolve, 5000)
        server.close(() => { clearTimeout(t); resolve() })
      })
    }
  }
}
