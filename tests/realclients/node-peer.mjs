// One real `bittorrent-tracker` Client (WebRTC via node-datachannel), run as a child process by
// node-harness.mjs. It announces to one WebSocket tracker, and on every peer the tracker brings it
// sends one text message over the data channel once it opens.
//
// Usage: node node-peer.mjs <role> <tracker url> <info_hash hex> <message>
//   role: "seeder" (left: 0) or "leecher" (left: 1 MiB)
//
// It reports everything as JSON lines on stdout: {t, role, ev, ...}. It exits when its stdin
// closes (the parent went away or wants it to stop) or on SIGTERM.

import { randomBytes } from 'node:crypto'
import Client from 'bittorrent-tracker'

const [role, url, infoHash, message] = process.argv.slice(2)
if (!role || !url || !infoHash || !message) {
  console.error('usage: node node-peer.mjs <seeder|leecher> <url> <info_hash hex> <message>')
  process.exit(2)
}

const t0 = Date.now()
function report (ev, fields = {}) {
  process.stdout.write(JSON.stringify({ t: Date.now() - t0, role, ev, ...fields }) + '\n')
}

// WebTorrent-style ASCII peer id: -WW0208- + 12 random chars; the client takes it as hex.
const peerIdText = '-NT0001-' + randomBytes(9).toString('base64').replace(/[+/]/g, 'x')
const peerId = Buffer.from(peerIdText, 'latin1').toString('hex')
const left = role === 'seeder' ? 0 : 1 << 20

const client = new Client({
  infoHash,
  peerId,
  announce: [url],
  port: 6881,
  // No STUN (nothing outside is reachable); node-datachannel only binds to loopback.
  rtcConfig: { iceServers: [], bindAddress: '127.0.0.1' },
  getAnnounceOpts: () => ({ uploaded: 0, downloaded: 0, left })
})

report('start', { peerId: peerIdText, url, infoHash })

client.on('warning', (err) => report('warning', { message: err.message }))
client.on('error', (err) => report('error', { message: err.message }))
client.on('update', (data) => report('update', {
  complete: data.complete, incomplete: data.incomplete, interval: data.interval
}))

const peers = new Set()
client.on('peer', (peer) => {
  peers.add(peer)
  const remote = peer.id ? Buffer.from(peer.id, 'hex').toString('latin1') : null
  report('peer', { remote })
  peer.on('error', (err) => report('peer-error', { remote, message: err.message }))
  peer.on('close', () => report('peer-close', { remote }))
  peer.on('data', (data) => report('data', { remote, text: Buffer.from(data).toString('utf8') }))
  peer.once('connect', () => {
    report('connect', { remote })
    peer.send(message)
    report('sent', { remote, text: message })
  })
})

client.start()

let stopping = false
function stop (why) {
  if (stopping) return
  stopping = true
  report('stop', { why })
  for (const peer of peers) {
    try { peer.destroy() } catch {}
  }
  try { client.destroy() } catch {}
  // node-datachannel can keep the event loop alive: leave explicitly.
  setTimeout(() => process.exit(0), 200)
}

process.stdin.on('end', () => stop('stdin closed'))
process.stdin.on('error', () => stop('stdin error'))
process.stdin.resume()
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
