// A real L4 load balancer in front of sigtracker: Debian's haproxy in `mode tcp`, one frontend
// whose backend sends PROXY v1 (`send-proxy`) and one that sends v2 (`send-proxy-v2`, with health
// checks that send v2 LOCAL). WebSocket clients bound to different 127.0.0.x addresses connect
// through it; every connection reaches sigtracker from 127.0.0.1 (haproxy's address, the one
// --trusted-proxy names), yet each must be counted as its own client: --max-per-ip 2 fills up per
// client, across both frontends, and the debug log names the clients.
//
// Skipped, with a message, only when haproxy is not installed (scripts/install-deps.sh installs it).

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { HOST, SLOW, freePort, randomPeerId, sleep, startServer } from './helpers.mjs'
import { connectFrom, statsOf, waitStats } from './abuse-helpers.mjs'

/** Where haproxy may be: on PATH, or in /usr/sbin (not on every user's PATH). */
function findHaproxy () {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    const p = path.join(dir || '.', 'haproxy')
    if (dir && existsSync(p)) return p
  }
  return null
}

const HAPROXY = findHaproxy()

/** Resolves once something accepts TCP connections on port (127.0.0.1). */
async function waitListening (port, child, what) {
  const deadline = Date.now() + 10000 * SLOW
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`)
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host: HOST })
      s.on('connect', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${what} is not listening on port ${port}`)
    await sleep(50)
  }
}

/** Starts haproxy with a configuration written to a temporary directory; stops it in t.after. */
async function startHaproxy (t, backendPort) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-haproxy-'))
  const v1Port = await freePort()
  const v2Port = await freePort()
  const cfg = `global
    maxconn 256

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend pp_v1
    bind ${HOST}:${v1Port}
    default_backend sig_v1

backend sig_v1
    server sig ${HOST}:${backendPort} send-proxy

frontend pp_v2
    bind ${HOST}:${v2Port}
    default_backend sig_v2

backend sig_v2
    server sig ${HOST}:${backendPort} send-proxy-v2 check check-send-proxy inter 500ms
`
  const cfgPath = path.join(dir, 'haproxy.cfg')
  writeFileSync(cfgPath, cfg)
  // -db: stay in the foreground, so the test owns the process.
  const child = spawn(HAPROXY, ['-db', '-f', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => { output += d })
  child.stderr.on('data', (d) => { output += d })
  t.after(async () => {
    if (child.exitCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([gone, sleep(5000)])
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  })
  try {
    await waitListening(v1Port, child, 'haproxy')
    await waitListening(v2Port, child, 'haproxy')
  } catch (err) {
    throw new Error(`${err.message}; haproxy said:\n${output}`)
  }
  return { v1Port, v2Port, output: () => output }
}

describe('behind haproxy (mode tcp, send-proxy and send-proxy-v2)', () => {
  test('clients are seen with their own addresses through haproxy', { skip: HAPROXY ? false : 'haproxy is not installed (scripts/install-deps.sh installs it)' }, async (t) => {
    const srv = await startServer({ t, args: ['--max-per-ip', '2', '--trusted-proxy', '127.0.0.1', '--log-level', 'debug'] })
    const hap = await startHaproxy(t, srv.port)
    const via = (port) => ({ port })
    const open = []
    try {
      // 127.0.0.3: one client through each frontend fills its cap of 2.
      const a1 = await connectFrom(via(hap.v1Port), { localAddress: '127.0.0.3', name: 'A via v1' })
      const a2 = await connectFrom(via(hap.v2Port), { localAddress: '127.0.0.3', name: 'A via v2' })
      open.push(a1, a2)
      await a1.ola(randomPeerId('a1'))
      await a2.ola(randomPeerId('a2'))
      // A third from 127.0.0.3, through either frontend, is refused at the header: 503.
      for (const port of [hap.v1Port, hap.v2Port]) {
        await assert.rejects(connectFrom(via(port), { localAddress: '127.0.0.3', name: 'A again' }),
          /Unexpected server response: 503/)
      }
      // Other clients are served, although every connection arrives from haproxy's 127.0.0.1.
      for (const [addr, port] of [['127.0.0.4', hap.v2Port], ['127.0.0.4', hap.v1Port], ['127.0.0.5', hap.v2Port]]) {
        const c = await connectFrom(via(port), { localAddress: addr, name: `${addr} via ${port}` })
        open.push(c)
        assert.deepEqual(await c.request({ type: 'ping' }, { type: 'pong' }), { type: 'pong' })
      }
      await assert.rejects(connectFrom(via(hap.v1Port), { localAddress: '127.0.0.4' }), /Unexpected server response: 503/)
      // Messages flow through the balancer both ways.
      const IH = 'ab'.repeat(20)
      const r1 = await a1.request({ type: 'announce', info_hash: IH, event: 'started', left: 1 }, { type: 'announce' })
      assert.equal(r1.incomplete, 1)
      const r2 = await a2.request({ type: 'announce', info_hash: IH, event: 'started', left: 0 }, { type: 'announce' })
      assert.deepEqual([r2.complete, r2.incomplete], [1, 1])
      // A client that leaves gives its address's slot back.
      await a1.close()
      open.shift()
      await waitStats(srv, (s) => s.identified_peers === 1, { what: 'A via v1 gone' })
      open.push(await connectFrom(via(hap.v1Port), { localAddress: '127.0.0.3', name: 'A back' }))

      const st = await statsOf(srv)
      assert.ok(st.proxy_headers >= 7, JSON.stringify(st))
      assert.ok(st.refused >= 3, JSON.stringify(st))
      assert.equal(st.proxy_refused_malformed, 0, JSON.stringify(st))
      assert.equal(st.proxy_refused_untrusted, 0, JSON.stringify(st))
      assert.match(srv.stderr, /connection from proxy 127\.0\.0\.1 is for client 127\.0\.0\.3 port \d+ \(PROXY v1\)/)
      assert.match(srv.stderr, /connection from proxy 127\.0\.0\.1 is for client 127\.0\.0\.5 port \d+ \(PROXY v2\)/)
      // haproxy's health checks (every 500 ms) send v2 LOCAL: they keep haproxy's own address.
      await waitStats(srv, (s) => s.proxy_kept_address >= 1, { what: 'a LOCAL health check', timeoutMs: 5000 * SLOW })
    } catch (err) {
      err.message += `\nhaproxy said:\n${hap.output()}`
      throw err
    } finally {
      for (const c of open) c.terminate()
    }
  })
})
