// Runs a seeder and a leecher (node-peer.mjs, each its own process) against one tracker URL and
// collects what happened. Used by node-clients.test.mjs (must connect) and negative.test.mjs
// (must not connect when the tracker does not relay offers).

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const PEER_SCRIPT = path.join(here, 'node-peer.mjs')

class PeerProcess {
  constructor (role, url, infoHash, message, caFile) {
    this.role = role
    this.message = message
    this.events = []
    this.raw = ''
    this.waiters = []
    this.exit = null
    this.child = spawn(process.execPath, [PEER_SCRIPT, role, url, infoHash, message], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: caFile ? { ...process.env, NODE_EXTRA_CA_CERTS: caFile } : process.env
    })
    let buf = ''
    this.child.stdout.setEncoding('utf8')
    this.child.stdout.on('data', (chunk) => {
      this.raw += chunk
      buf += chunk
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        try {
          this.events.push(JSON.parse(line))
        } catch {
          // not one of ours (a library printing): keep it in raw only
        }
      }
      this.poke()
    })
    this.child.stderr.setEncoding('utf8')
    this.child.stderr.on('data', (chunk) => { this.raw += `[stderr] ${chunk}` })
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal }
        this.poke()
        resolve(this.exit)
      })
    })
    this.child.stdin.on('error', () => {})
  }

  poke () {
    for (const w of this.waiters.slice()) w()
  }

  has (pred) {
    return this.events.some(pred)
  }

  // Resolves true once pred matches an event, false at the deadline or when the process exits.
  waitFor (pred, deadline) {
    return new Promise((resolve) => {
      let timer = null
      const check = () => {
        if (this.has(pred)) return finish(true)
        if (this.exit || Date.now() >= deadline) return finish(false)
        // A timer may fire a moment before Date.now() reaches the deadline (timers run on the
        // monotonic clock): arm it again, or a silent process would be waited for forever.
        clearTimeout(timer)
        timer = setTimeout(check, Math.max(1, deadline - Date.now()))
      }
      const finish = (v) => {
        clearTimeout(timer)
        this.waiters = this.waiters.filter((w) => w !== check)
        resolve(v)
      }
      this.waiters.push(check)
      check()
    })
  }

  async stop () {
    if (this.exit) return
    this.child.stdin.end()
    const t = setTimeout(() => { if (!this.exit) this.child.kill('SIGKILL') }, 3000)
    await this.exited
    clearTimeout(t)
  }
}

const isUpdate = (e) => e.ev === 'update'
const isConnect = (e) => e.ev === 'connect'
const gotText = (text) => (e) => e.ev === 'data' && e.text === text

/**
 * @param {object} opts
 * @param {string} opts.url          tracker ws:// URL
 * @param {number} opts.windowMs     how long after the leecher starts to wait for both messages
 * @param {number} [opts.seederAnnounceMs] how long to wait for the seeder's first announce response
 * @param {string} [opts.leecherUrl] the leecher's tracker URL (default: url; the cluster test gives
 *                                   it another node)
 * @param {function} [opts.beforeLeecher] awaited with { infoHash } after the seeder's announce was
 *                                   answered, before the leecher starts; if it throws, `error`
 *                                   says so and no leecher is started
 */
export async function runNodePair ({ url, windowMs, seederAnnounceMs = 20000, leecherUrl = url, beforeLeecher, caFile }) {
  const infoHash = randomBytes(20).toString('hex')
  const nonce = randomBytes(4).toString('hex')
  const seederMsg = `hello from seeder ${nonce}`
  const leecherMsg = `hello from leecher ${nonce}`
  const t0 = Date.now()
  const result = {
    infoHash,
    seederMsg,
    leecherMsg,
    seederAnnounced: false,
    leecherAnnounced: false,
    seederGot: false,
    leecherGot: false,
    error: null,
    anyConnect: false,
    anyPeer: false,
    doneMs: null,
    elapsedMs: 0,
    transcript: ''
  }

  const seeder = new PeerProcess('seeder', url, infoHash, seederMsg, caFile)
  let leecher = null
  try {
    // The seeder is in the swarm first, as in real life; its announce is sent only after its
    // offers are gathered (node-datachannel waits ~5 s), so this also sets the pace.
    result.seederAnnounced = await seeder.waitFor(isUpdate, Date.now() + seederAnnounceMs)
    if (!result.seederAnnounced) return result
    if (beforeLeecher) {
      try {
        await beforeLeecher({ infoHash })
      } catch (err) {
        result.error = `before the leecher: ${err.message}`
        return result
      }
    }

    leecher = new PeerProcess('leecher', leecherUrl, infoHash, leecherMsg, caFile)
    const deadline = Date.now() + windowMs
    await Promise.all([
      seeder.waitFor(gotText(leecherMsg), deadline),
      leecher.waitFor(gotText(seederMsg), deadline)
    ])
    result.doneMs = Date.now() - t0
    result.leecherAnnounced = leecher.has(isUpdate)
    result.seederGot = seeder.has(gotText(leecherMsg))
    result.leecherGot = leecher.has(gotText(seederMsg))
    result.anyConnect = seeder.has(isConnect) || leecher.has(isConnect)
    result.anyPeer = seeder.has((e) => e.ev === 'peer') || leecher.has((e) => e.ev === 'peer')
    return result
  } finally {
    await Promise.all([seeder.stop(), leecher && leecher.stop()])
    result.elapsedMs = Date.now() - t0
    result.transcript = [seeder, leecher].filter(Boolean).map((p) =>
      `--- ${p.role} (exit ${JSON.stringify(p.exit)}) ---\n${p.raw}`).join('\n')
  }
}
