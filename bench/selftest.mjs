// selftest.mjs: checks bench/build/loadgen's WebSocket client against a deliberately awkward
// server, so that its RFC 6455 claims are tested rather than assumed. Run: `make -C bench check`.
//
// The server here is raw TCP (no ws library) so that it controls every byte. For each WebTorrent
// announce it answers with, in one TCP write:
//   - the announce response split into three fragments (text, continuation, continuation+FIN)
//     with a ping interleaved between them (control frames may come between fragments);
//   - one relayed offer whose frame needs a 64-bit length (a padded SDP of 70,000 bytes);
//   - one relayed offer with a 16-bit length, whose IDs hold the awkward bytes (NUL, quote,
//     backslash, control characters, 0x7f-0xff) in raw UTF-8 form, as bittorrent-tracker sends;
// and it checks that every client frame is masked and valid JSON, that each ping gets a pong with
// the same payload, that every offer is answered with the right to_peer_id, offer_id and
// info_hash, and that scrapes (answered here) are well formed.
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const LOADGEN = fileURLToPath(new URL('./build/loadgen', import.meta.url))
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
// Payload of the 64-bit-length offer: beyond 65,535 bytes, the 16-bit length's limit.
const BIG_SDP_BYTES = 70000

const failures = []
const stats = { frames: 0, unmasked: 0, badJson: 0, pings: 0, pongs: 0, badPongs: 0, offers: 0, answers: 0, badAnswers: 0, scrapes: 0 }
const expected = new Map() // offer_id (latin1) -> { to, ih }

function frame (opcode, payload, fin = true) {
  const n = payload.length
  let head
  if (n < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, n])
  } else if (n <= 0xffff) {
    head = Buffer.alloc(4)
    head[0] = (fin ? 0x80 : 0) | opcode
    head[1] = 126
    head.writeUInt16BE(n, 2)
  } else {
    head = Buffer.alloc(10)
    head[0] = (fin ? 0x80 : 0) | opcode
    head[1] = 127
    head.writeBigUInt64BE(BigInt(n), 2)
  }
  return Buffer.concat([head, payload])
}

// JSON.stringify of a latin1 "binary string", as bittorrent-tracker writes IDs: raw UTF-8 for
// 0x7f-0xff, \uXXXX only for control characters.
const bin = (buf) => buf.toString('latin1')

function onMessage (sock, text) {
  let m
  try {
    m = JSON.parse(text)
  } catch {
    stats.badJson++
    return
  }
  if (m.action === 'scrape' && Array.isArray(m.info_hash)) {
    stats.scrapes++
    const files = Object.fromEntries(m.info_hash.map((ih) => [ih, { complete: 1, incomplete: 0, downloaded: 1 }]))
    sock.write(frame(0x1, Buffer.from(JSON.stringify({ action: 'scrape', files }))))
    return
  }
  if (m.answer) {
    stats.answers++
    const want = expected.get(m.offer_id)
    if (!want || want.to !== m.to_peer_id || want.ih !== m.info_hash) stats.badAnswers++
    else expected.delete(m.offer_id)
    return
  }
  if (m.action !== 'announce') return
  const response = Buffer.from(JSON.stringify({
    complete: 1, incomplete: 2, action: 'announce', interval: 120, info_hash: m.info_hash
  }))
  const third = Math.floor(response.length / 3)
  const pingPayload = randomBytes(8)
  sock.pendingPings.push(pingPayload.toString('hex'))
  stats.pings++
  const parts = [
    frame(0x1, response.subarray(0, third), false),
    frame(0x9, pingPayload),
    frame(0x0, response.subarray(third, 2 * third), false),
    frame(0x0, response.subarray(2 * third), true)
  ]
  if (m.offers && m.offers.length > 0) {
    const from = bin(Buffer.from([0x00, 0x22, 0x5c, 0x0a, 0x7f, 0x80, 0xff, 0xc3, 0x01, 0x1f,
      0x20, 0x41, 0xe9, 0x9f, 0x10, 0x0d, 0x09, 0x08, 0x0c, 0x2f]))
    // The big one reuses the client's first offer ID: its send time gives the relay latency.
    const big = { action: 'announce', offer: { type: 'offer', sdp: 'x'.repeat(BIG_SDP_BYTES) },
      offer_id: m.offers[0].offer_id, peer_id: from, info_hash: m.info_hash }
    const oddId = bin(Buffer.concat([Buffer.from([0x22, 0x5c, 0x00, 0xff]), randomBytes(16)]))
    const small = { action: 'announce', offer: m.offers[0].offer, offer_id: oddId, peer_id: from,
      info_hash: m.info_hash }
    for (const o of [big, small]) {
      expected.set(o.offer_id, { to: from, ih: m.info_hash })
      parts.push(frame(0x1, Buffer.from(JSON.stringify(o))))
      stats.offers++
    }
  }
  sock.write(Buffer.concat(parts))
}

function onData (sock, chunk) {
  sock.buf = Buffer.concat([sock.buf, chunk])
  if (!sock.upgraded) {
    const end = sock.buf.indexOf('\r\n\r\n')
    if (end < 0) return
    const head = sock.buf.subarray(0, end).toString()
    const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1]
    if (!key || !/upgrade:\s*websocket/i.test(head) || !/sec-websocket-version:\s*13/i.test(head)) {
      failures.push('bad upgrade request: ' + JSON.stringify(head))
      sock.destroy()
      return
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64')
    sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`)
    sock.upgraded = true
    sock.buf = sock.buf.subarray(end + 4)
  }
  for (;;) {
    const b = sock.buf
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
    if (!masked) stats.unmasked++
    const mask = masked ? b.subarray(off, off + 4) : null
    if (masked) off += 4
    if (b.length < off + len) return
    const payload = Buffer.from(b.subarray(off, off + len))
    if (mask) for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3]
    sock.buf = b.subarray(off + len)
    stats.frames++
    const op = b[0] & 0x0f
    if (op === 0xa) {
      stats.pongs++
      if (sock.pendingPings.shift() !== payload.toString('hex')) stats.badPongs++
    } else if (op === 0x1 || op === 0x2) {
      onMessage(sock, payload.toString())
    } else if (op === 0x8) {
      sock.end()
    }
  }
}

const server = createServer((sock) => {
  sock.buf = Buffer.alloc(0)
  sock.pendingPings = []
  sock.on('data', (c) => onData(sock, c))
  sock.on('error', () => {})
})

server.listen(0, '127.0.0.1', () => {
  const port = server.address().port
  const lg = spawn(LOADGEN, ['--port', String(port), '--mode', 'wt', '--connections', '4',
    '--offers', '3', '--torrents', '50', '--scrape-ratio', '0.2', '--duration', '2', '--warmup', '0.5'])
  let out = ''
  lg.stdout.on('data', (d) => { out += d })
  lg.stderr.on('data', (d) => { out += d })
  lg.on('exit', (code) => {
    server.close()
    const r = Object.fromEntries(((/^RESULT (.*)$/m.exec(out) || [])[1] || '').split(' ')
      .map((kv) => kv.split('=')))
    if (code !== 0) failures.push(`loadgen exited with ${code}`)
    if (!(Number(r.ann_n) > 0)) failures.push('no announce was answered')
    if (Number(r.malformed) !== 0) failures.push(`loadgen saw ${r.malformed} malformed messages`)
    if (Number(r.unmatched) !== 0) failures.push(`loadgen saw ${r.unmatched} unmatched responses`)
    if (!(Number(r.offer_n) > 0)) failures.push('no offer relay latency was measured')
    if (stats.unmasked) failures.push(`${stats.unmasked} client frames were not masked`)
    if (stats.badJson) failures.push(`${stats.badJson} client messages were not valid JSON`)
    if (stats.scrapes === 0 || r.errors !== '0') failures.push(`scrapes: ${stats.scrapes}, loadgen errors: ${r.errors}`)
    if (stats.pongs === 0 || stats.badPongs) failures.push(`pongs: ${stats.pongs}, wrong: ${stats.badPongs}`)
    if (stats.answers === 0 || stats.badAnswers) failures.push(`answers: ${stats.answers}, wrong: ${stats.badAnswers}`)
    console.log(`selftest: ${JSON.stringify(stats)}`)
    if (failures.length) {
      console.log(out)
      for (const f of failures) console.log(`selftest: FAIL ${f}`)
      process.exit(1)
    }
    console.log('selftest: ok (fragments with an interleaved ping, 16- and 64-bit lengths, ' +
      'several frames per write, raw UTF-8 binary strings, masking, pongs, answers)')
  })
})
