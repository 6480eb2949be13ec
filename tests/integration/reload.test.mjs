// SIGHUP reloads the configuration file on the real binary: new limits apply to connections that
// are already open, settings that need a restart are named and kept, and a broken file changes
// nothing while the server keeps serving.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import {
  MSG_TIMEOUT_MS, closeAll, connect, logMessages, randomInfoHash, randomPeerId, sleep, startServer, stats,
  waitForStats
} from './helpers.mjs'

const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-reload-'))
after(() => rmSync(dir, { recursive: true, force: true }))

let fileNo = 0
function confPath () {
  return path.join(dir, `r${++fileNo}.conf`)
}

/** Sends SIGHUP and waits until /stats.json shows the reload applied (or refused). */
async function reload (srv, { refused = false } = {}) {
  const before = await stats(srv)
  const key = refused ? 'config_reload_failures' : 'config_reloads'
  srv.child.kill('SIGHUP')
  return waitForStats(srv, (s) => s[key] === before[key] + 1, { what: `${key} + 1` })
}

/** Waits until the server's stderr matches re. */
async function waitLog (srv, re, timeoutMs = MSG_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs
  while (!re.test(logMessages(srv.stderr))) {
    if (Date.now() > deadline) assert.fail(`no log line matching ${re}; stderr:\n${srv.stderr}`)
    await sleep(20)
  }
}

const BASE = '[tracker]\nmin-interval = 0\n'

test('a lower max-numwant applies to an open connection', async (t) => {
  const conf = confPath()
  writeFileSync(conf, BASE + 'max-numwant = 50\n')
  const srv = await startServer({ args: ['--config', conf], t })
  const ih = randomInfoHash()
  const peers = []
  for (let i = 0; i < 6; i++) {
    const c = await connect(srv, { name: `p${i}` })
    await c.ola(randomPeerId(`p${i}`))
    await c.request({ type: 'announce', info_hash: ih, event: 'started', left: 10 }, { type: 'announce' })
    peers.push(c)
  }
  const asker = peers[0]
  const a1 = await asker.request({ type: 'announce', info_hash: ih, num_want: 10 }, { type: 'announce' })
  assert.equal(a1.peers.length, 5)

  writeFileSync(conf, BASE + 'max-numwant = 2\n')
  await reload(srv)
  assert.ok(asker.isOpen)
  const a2 = await asker.request({ type: 'announce', info_hash: ih, num_want: 10 }, { type: 'announce' })
  assert.equal(a2.peers.length, 2, 'the new cap applies on the same connection')
  // default-numwant (20) is clamped to the new cap as at start-up, so it changes too.
  await waitLog(srv, /reload of .*: 2 changed \(max-numwant 50 -> 2, default-numwant 20 -> 2\); no access list; 0 kept until a restart; \d+ ms/)
  await closeAll(peers)
})

test('a lower msg-rate applies to an open connection (its token bucket follows)', async (t) => {
  const conf = confPath()
  writeFileSync(conf, BASE + '[limits]\nmsg-rate = 1000\nmsg-burst = 1000\n')
  const srv = await startServer({ args: ['--config', conf], t })
  const c = await connect(srv)
  // Plenty of room before the reload.
  for (let i = 0; i < 30; i++) c.sendJson({ type: 'ping' })
  for (let i = 0; i < 30; i++) assert.deepEqual(await c.next(), { type: 'pong' })

  writeFileSync(conf, BASE + '[limits]\nmsg-rate = 1\nmsg-burst = 3\n')
  await reload(srv)
  for (let i = 0; i < 10; i++) c.sendJson({ type: 'ping' })
  // The bucket held up to 1000 tokens; it is cut to the new burst of 3 at its next use.
  for (let i = 0; i < 3; i++) assert.deepEqual(await c.next(), { type: 'pong' })
  const limited = await c.next()
  assert.equal(limited.type, 'error')
  assert.equal(limited.code, 'rate_limited')
  assert.ok(c.isOpen, 'the connection stays open')
  const s = await stats(srv)
  assert.ok(s.rate_limited >= 7, `rate_limited ${s.rate_limited}`)
  await c.close()
})

test('settings that need a restart are named and kept; the server keeps serving', async (t) => {
  const conf = confPath()
  writeFileSync(conf, BASE)
  const srv = await startServer({ args: ['--config', conf], t })
  // --port and --db are on the command line (helpers), so change what is not: reuse-port,
  // cluster and listen.
  writeFileSync(conf, BASE + '[network]\nreuse-port = true\nlisten = ws://127.0.0.1:1\n' +
    '[limits]\nmax-per-ip = 9\n')
  await reload(srv)
  await waitLog(srv, /reload: changed reuse-port from "false" to "true": needs a restart; keeping "false"/)
  await waitLog(srv, /reload: changed listen from "\(from host and port\)" to "ws:\/\/127\.0\.0\.1:1": needs a restart; keeping/)
  await waitLog(srv, /reload of .*: 1 changed \(max-per-ip 1024 -> 9\); no access list; 2 kept until a restart/)
  const c = await connect(srv)
  await c.request({ type: 'ping' }, { type: 'pong' })
  await c.close()
})

test('a broken file on SIGHUP changes nothing and the server keeps serving', async (t) => {
  const conf = confPath()
  writeFileSync(conf, BASE + 'max-numwant = 3\n')
  const srv = await startServer({ args: ['--config', conf], t })
  const ih = randomInfoHash()
  const peers = []
  for (let i = 0; i < 5; i++) {
    const c = await connect(srv, { name: `q${i}` })
    await c.ola(randomPeerId(`q${i}`))
    await c.request({ type: 'announce', info_hash: ih, event: 'started', left: 1 }, { type: 'announce' })
    peers.push(c)
  }
  writeFileSync(conf, BASE + 'max-numwant = 1\n[limits]\nmax-per-ip = many\n')
  const s = await reload(srv, { refused: true })
  assert.equal(s.config_reloads, 0)
  await waitLog(srv, new RegExp(`reload refused: ${conf.replace(/[.]/g, '\\.')}:5: key max-per-ip wants a whole number .* not "many"; the running configuration is unchanged`))
  // The old max-numwant (3) still holds, on old and new connections alike.
  const a = await peers[0].request({ type: 'announce', info_hash: ih, num_want: 10 }, { type: 'announce' })
  assert.equal(a.peers.length, 3)
  const fresh = await connect(srv)
  await fresh.ola(randomPeerId('fresh'))
  const b = await fresh.request({ type: 'announce', info_hash: ih, num_want: 10 }, { type: 'announce' })
  assert.equal(b.peers.length, 3)
  // A deleted file is refused the same way.
  rmSync(conf)
  await reload(srv, { refused: true })
  await waitLog(srv, /reload refused: cannot read the configuration file .*No such file/)
  // Fixed: the next reload applies.
  writeFileSync(conf, BASE + 'max-numwant = 1\n')
  await reload(srv)
  const c = await peers[1].request({ type: 'announce', info_hash: ih, num_want: 10 }, { type: 'announce' })
  assert.equal(c.peers.length, 1)
  await closeAll(peers, fresh)
})

test('timeouts apply to open connections: a shorter idle-timeout closes an idle one', async (t) => {
  const conf = confPath()
  writeFileSync(conf, BASE + '[liveness]\nidle-timeout = 300\n')
  const srv = await startServer({ args: ['--config', conf], t })
  const idle = await connect(srv)
  await idle.request({ type: 'ping' }, { type: 'pong' })
  writeFileSync(conf, BASE + '[liveness]\nidle-timeout = 1\n')
  await reload(srv)
  const bye = await idle.next({ type: 'bye' }, 5000)
  assert.equal(bye.reason, 'idle')
  await idle.closed
})
