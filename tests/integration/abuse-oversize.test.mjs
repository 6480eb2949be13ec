// Abuse: oversized and deeply nested messages. A message above --max-message (64 KiB) gets close
// 1009 before its payload is buffered, whole or in fragments; JSON deeper than --max-json-depth or
// with more than 1,024 values (SERVER_MAX_JSON_TOKENS) gets a bad_json error and the connection
// stays usable; unknown fields are ignored within that budget. Honest peers are served throughout.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OP, closeAll, connect, rawWs, sleep, startServer } from './helpers.mjs'
import { HonestSt, statsOf, wtBin } from './abuse-helpers.mjs'

const BYE_PROTOCOL = { type: 'bye', reason: 'protocol_error' }

/** {"type":"ping", ...} padded with a string field to exactly `bytes` bytes. */
function pingOfSize (bytes) {
  const base = JSON.stringify({ type: 'ping', pad: '' })
  return JSON.stringify({ type: 'ping', pad: 'p'.repeat(bytes - base.length) })
}

/** An object nested `depth` levels deep (the top-level object counts as 1). */
function nested (depth) {
  let inner = '{}'
  for (let d = 2; d < depth; d++) inner = `{"k":${inner}}`
  return depth === 1 ? '{"type":"ping"}' : `{"type":"ping","n":${inner}}`
}

describe('oversize and depth', () => {
  test('a message above 64 KiB is closed with 1009, whole or fragmented; 64 KiB exactly is served', async (t) => {
    const srv = await startServer({ t })
    const honest = await HonestSt.create(srv)
    try {
      // Exactly --max-message is accepted.
      const ok = await connect(srv, { name: 'at-limit' })
      ok.sendRaw(pingOfSize(65536))
      assert.deepEqual(await ok.next(), { type: 'pong' })
      // One byte more: bye protocol_error, close 1009.
      const big = await connect(srv, { name: 'over-limit' })
      big.sendRaw(pingOfSize(65537))
      assert.equal((await big.closed).code, 1009)
      assert.deepEqual(big.queue.map((e) => e.json), [BYE_PROTOCOL])
      // 70 KiB from an identified peer.
      const big2 = await connect(srv, { name: '70k' })
      await big2.ola('seventy-k')
      big2.sendRaw(JSON.stringify({ type: 'offer', to: honest.A, payload: 'x'.repeat(70 * 1024) }))
      assert.equal((await big2.closed).code, 1009)
      assert.deepEqual(big2.queue.map((e) => e.json), [BYE_PROTOCOL])

      // In fragments that are each small: 3 x 24 KiB.
      const frag = await rawWs(srv, { name: 'fragments' })
      const body = Buffer.from(pingOfSize(72 * 1024))
      frag.sendFrame({ opcode: OP.TEXT, fin: false, payload: body.subarray(0, 24576) })
      frag.sendFrame({ opcode: OP.CONT, fin: false, payload: body.subarray(24576, 49152) })
      frag.sendFrame({ opcode: OP.CONT, fin: true, payload: body.subarray(49152) })
      let c = await frag.expectClose()
      assert.equal(c.code, 1009)
      assert.deepEqual(c.before.filter((f) => f.opcode === OP.TEXT).map((f) => f.json), [BYE_PROTOCOL])

      // A frame header announcing 1 GiB: refused on the header, nothing else needs to arrive.
      const liar = await rawWs(srv, { name: 'liar' })
      const head = Buffer.alloc(14)
      head[0] = 0x81
      head[1] = 0x80 | 127
      head.writeBigUInt64BE(1n << 30n, 2)
      liar.write(head)
      liar.write(Buffer.from('{"ty'))
      c = await liar.expectClose()
      assert.equal(c.code, 1009)
      // And 2^63 - 1 in the 64-bit length (the largest legal value).
      const liar2 = await rawWs(srv, { name: 'liar2' })
      head.writeBigUInt64BE((1n << 63n) - 1n, 2)
      liar2.write(head)
      assert.equal((await liar2.expectClose()).code, 1009)

      // The server kept no big buffers.
      const st = await statsOf(srv)
      assert.ok(st.heap_bytes < 1 << 20, `heap_bytes ${st.heap_bytes}`)
      assert.deepEqual(await ok.request({ type: 'ping' }), { type: 'pong' })
      await honest.check('after oversized messages')
      await ok.close()
    } finally {
      await closeAll(honest.clients)
    }
  })

  test('--max-json-depth 4: 5 levels get bad_json and the connection stays usable; 1,024 values at most; unknown fields are ignored', async (t) => {
    const srv = await startServer({ t, args: ['--max-json-depth', '4'] })
    const honest = await HonestSt.create(srv)
    const c = await connect(srv, { name: 'deep' })
    const w = await connect(srv, { name: 'wt-deep' })
    try {
      const tooDeep = { type: 'error', code: 'bad_json', message: 'message is nested too deeply' }
      const tooMany = { type: 'error', code: 'bad_json', message: 'message has too many JSON values' }
      await c.ola('deep-one')
      // 4 levels: served.
      c.sendRaw(nested(4))
      assert.deepEqual(await c.next(), { type: 'pong' })
      // 5 levels: refused, in every shape, and the connection stays usable.
      for (const text of [nested(5), '[[[[[1]]]]]', `{"type":"ping","a":[[[{}]]]}`, '['.repeat(30000) + ']'.repeat(30000)]) {
        c.sendRaw(text)
        assert.deepEqual(await c.next(), tooDeep, text.slice(0, 40))
        assert.deepEqual(await c.request({ type: 'ping' }), { type: 'pong' })
      }
      // An announce nested too deeply is refused as a whole.
      c.sendRaw(`{"type":"announce","info_hash":"${'ab'.repeat(20)}","event":"started","x":[[[[1]]]]}`)
      assert.deepEqual(await c.next(), tooDeep)

      // The token budget: 1,024 values (keys count) are served, 1,025 are not.
      const fields = (n, arr) => {
        const o = { type: 'ping' }
        for (let i = 0; i < n; i++) o[`u${i}`] = null
        if (arr !== undefined) o.arr = Array(arr).fill(0)
        return JSON.stringify(o)
      }
      // 1 object + 2 (type) + 2 x 509 + 1 key + 1 array + 1 element = 1024.
      c.sendRaw(fields(509, 1))
      assert.deepEqual(await c.next(), { type: 'pong' }, '1,024 values')
      c.sendRaw(fields(509, 2))
      assert.deepEqual(await c.next(), tooMany, '1,025 values')
      // 500 unknown fields: ignored.
      c.sendRaw(fields(500))
      assert.deepEqual(await c.next(), { type: 'pong' })
      // 2,000 unknown fields (4,003 values) are over the documented budget of 1,024 values.
      c.sendRaw(fields(2000))
      assert.deepEqual(await c.next(), tooMany)
      // 1,500 array elements.
      c.sendRaw(JSON.stringify({ type: 'ping', a: Array(1500).fill(1) }))
      assert.deepEqual(await c.next(), tooMany)
      c.sendRaw(JSON.stringify({ type: 'scrape', info_hashes: Array(1500).fill('ab'.repeat(20)) }))
      assert.deepEqual(await c.next(), tooMany)
      // Still usable, still identified.
      const sc = await c.request({ type: 'scrape', info_hashes: ['ab'.repeat(20)] })
      assert.equal(sc.type, 'scrape', JSON.stringify(sc))

      // WebTorrent connections get the same refusals as failures.
      const IH = wtBin()
      w.sendJson({ action: 'scrape', info_hash: IH })
      assert.equal((await w.next()).action, 'scrape')
      w.sendRaw(`{"action":"announce","x":[[[[1]]]]}`)
      assert.deepEqual(await w.next(), { action: 'announce', 'failure reason': 'message is nested too deeply' })
      w.sendRaw(JSON.stringify({ action: 'scrape', info_hash: Array(1500).fill('a'.repeat(20)) }))
      assert.deepEqual(await w.next(), { action: 'announce', 'failure reason': 'message has too many JSON values' })
      w.sendJson({ action: 'scrape', info_hash: IH })
      assert.equal((await w.next()).action, 'scrape')

      await honest.check('after deep and wide messages')
      await sleep(10)
      assert.ok(c.isOpen && w.isOpen)
    } finally {
      await closeAll(c, w, honest.clients)
    }
  })
})
