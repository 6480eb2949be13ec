// Self-test of the cluster tier's Redis harness (no sigtracker involved): start, RESP and
// redis-cli, pause/resume, stop/kill/restart on the same socket, persistence, and a subscriber
// that sees binary and 5 MB publishes. If this file fails, the other cluster tests cannot be
// trusted.

import assert from 'node:assert/strict'
import { existsSync, statSync } from 'node:fs'
import net from 'node:net'
import { describe, test } from 'node:test'
import { RedisError, respCommand, startRedis, waitFor } from './cluster-helpers.mjs'

/** A raw subscriber on the unix socket: collects every message of `channel` as Buffers. */
function subscribe (sock, channel) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: sock })
    const got = []
    let buf = Buffer.alloc(0)
    let subscribed = false
    s.on('error', reject)
    s.on('connect', () => s.write(`*2\r\n$9\r\nSUBSCRIBE\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n`))
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      // Parse "*3 $7 message $<n> channel $<n> payload" frames (and the subscribe confirmation).
      for (;;) {
        const r = parseArray3(buf)
        if (!r) break
        buf = buf.subarray(r.off)
        if (r.items[0].toString() === 'subscribe') {
          subscribed = true
          resolve({ got, close: () => s.destroy(), get subscribed () { return subscribed } })
        } else if (r.items[0].toString() === 'message') {
          got.push(r.items[2])
        }
      }
    })
  })
}

function parseArray3 (buf) {
  if (buf.length < 4 || buf[0] !== 0x2a) return null
  let off = buf.indexOf('\r\n') + 2
  if (off < 2) return null
  const items = []
  for (let i = 0; i < 3; i++) {
    const eol = buf.indexOf('\r\n', off)
    if (eol < 0) return null
    const kind = buf[off]
    const n = Number(buf.toString('latin1', off + 1, eol))
    if (kind === 0x3a) { // integer
      items.push(Buffer.from(String(n)))
      off = eol + 2
      continue
    }
    if (buf.length < eol + 2 + n + 2) return null
    items.push(buf.subarray(eol + 2, eol + 2 + n))
    off = eol + 2 + n + 2
  }
  return { items, off }
}

describe('Redis harness', () => {
  test('starts on a private unix socket (no TCP), answers RESP and redis-cli', async (t) => {
    const redis = await startRedis()
    t.after(() => redis.destroy())
    assert.ok(redis.url.startsWith('unix:/'), redis.url)
    assert.ok(statSync(redis.sock).isSocket(), `${redis.sock} should be a socket`)
    assert.equal(statSync(redis.sock).mode & 0o777, 0o700, 'unixsocketperm 700')
    assert.equal(await redis.command('PING'), 'PONG')
    assert.equal(await redis.cli('ping'), 'PONG')
    assert.equal(await redis.command('SET', 'k', Buffer.from([0, 1, 2, 255])), 'OK')
    assert.deepEqual(await respCommand(redis.sock, ['GET', 'k'], { buffers: true }), Buffer.from([0, 1, 2, 255]))
    assert.equal(await redis.command('CONFIG', 'GET', 'port').then((r) => r[1]), '0')
    assert.equal(await redis.command('CONFIG', 'GET', 'save').then((r) => r[1]), '')
    assert.equal(await redis.command('CONFIG', 'GET', 'appendonly').then((r) => r[1]), 'no')
    await assert.rejects(redis.command('NOSUCHCOMMAND'), RedisError)
  })

  test('tcp: true also listens on 127.0.0.1:<port> (redis:// URL)', async (t) => {
    const redis = await startRedis({ tcp: true })
    t.after(() => redis.destroy())
    assert.match(redis.tcpUrl, /^redis:\/\/127\.0\.0\.1:\d+$/)
    const pong = await new Promise((resolve, reject) => {
      const s = net.connect(redis.tcpPort, '127.0.0.1', () => s.write('PING\r\n'))
      s.on('data', (d) => { resolve(d.toString()); s.destroy() })
      s.on('error', reject)
    })
    assert.equal(pong, '+PONG\r\n')
  })

  test('pause() stalls every command until resume()', async (t) => {
    const redis = await startRedis()
    t.after(() => redis.destroy())
    redis.pause()
    const t0 = Date.now()
    await assert.rejects(respCommand(redis.sock, ['PING'], { timeoutMs: 500 }), /no reply/)
    assert.ok(Date.now() - t0 >= 450)
    // A command sent while paused is answered after the resume.
    const late = respCommand(redis.sock, ['PING'], { timeoutMs: 5000 })
    await new Promise((resolve) => setTimeout(resolve, 200))
    redis.resume()
    assert.equal(await late, 'PONG')
  })

  test('stop(), kill() and restart() keep the socket path; data survives only with persist', async (t) => {
    const volatile = await startRedis()
    t.after(() => volatile.destroy())
    await volatile.command('SET', 'x', '1')
    await volatile.restart()
    assert.equal(await volatile.command('GET', 'x'), null, 'without persist, a restart empties Redis')
    await volatile.command('SET', 'x', '2')
    await volatile.restart({ signal: 'SIGKILL' })
    assert.equal(await volatile.command('GET', 'x'), null)
    await volatile.stop()
    await assert.rejects(volatile.command('PING'), /ENOENT|ECONNREFUSED|closed/)
    await volatile.start()
    assert.equal(await volatile.command('PING'), 'PONG')

    const durable = await startRedis({ persist: true })
    t.after(() => durable.destroy())
    assert.equal(await durable.command('CONFIG', 'GET', 'appendonly').then((r) => r[1]), 'yes')
    await durable.command('SET', 'y', 'kept')
    await durable.restart()
    assert.equal(await durable.command('GET', 'y'), 'kept', 'with persist, SIGTERM keeps the data')
    await durable.command('SET', 'z', 'kept too')
    await durable.restart({ signal: 'SIGKILL' })
    assert.equal(await durable.command('GET', 'z'), 'kept too', 'with persist (fsync always), SIGKILL keeps the data')
    // A paused server can be stopped (SIGTERM then SIGCONT) and restarted.
    durable.pause()
    await durable.restart()
    assert.equal(await durable.command('GET', 'y'), 'kept')
  })

  test('a subscriber receives binary and 5 MB publishes', async (t) => {
    const redis = await startRedis()
    t.after(() => redis.destroy())
    const sub = await subscribe(redis.sock, 'st:all')
    t.after(() => sub.close())
    const bin = Buffer.from([0, 13, 10, 0xff, 0x22, 0x5c])
    assert.equal(await redis.publish('st:all', bin), 1)
    const big = Buffer.alloc(5 << 20, 0x41)
    assert.equal(await redis.publish('st:all', big), 1)
    await waitFor(() => sub.got.length === 2, { what: 'two messages received' })
    assert.deepEqual(sub.got[0], bin)
    assert.equal(sub.got[1].length, big.length)
  })

  test('destroy() removes the directory', async () => {
    const redis = await startRedis()
    const dir = redis.dir
    await redis.destroy()
    assert.ok(!existsSync(dir))
    assert.ok(!redis.running)
  })
})
