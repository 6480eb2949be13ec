// Two real bittorrent-tracker Clients (seeder and leecher, separate processes, WebRTC through
// node-datachannel) find each other through the tracker and exchange one message each way over
// a WebRTC data channel. Runs against $SIGTRACKER_BIN or, without it, the reference tracker. With
// $SIGTRACKER_BIN, the same pair meets again over wss:// (our TLS listener) and across the two
// schemes (seeder on wss://, leecher on ws://).

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runNodePair } from './node-harness.mjs'
import { startTracker } from './tracker.mjs'

let tracker
before(async () => { tracker = await startTracker() })
after(async () => { if (tracker) await tracker.stop() })

test('node bittorrent-tracker clients exchange a message over WebRTC via the tracker',
  { timeout: 90000 }, async (t) => {
    t.diagnostic(`tracker: ${tracker.kind} ${tracker.url}${tracker.noRelay ? ' (NO RELAY)' : ''}`)
    const r = await runNodePair({ url: tracker.url, windowMs: 45000 })
    t.diagnostic(`done after ${r.doneMs} ms (total ${r.elapsedMs} ms)`)
    const why = () => `\n${r.transcript}\n--- tracker log ---\n${tracker.logs()}`
    assert.ok(r.seederAnnounced, `seeder got no announce response${why()}`)
    assert.ok(r.leecherAnnounced, `leecher got no announce response${why()}`)
    assert.ok(r.leecherGot, `leecher did not receive "${r.seederMsg}"${why()}`)
    assert.ok(r.seederGot, `seeder did not receive "${r.leecherMsg}"${why()}`)
  })

const TLS_SKIP = process.env.SIGTRACKER_BIN ? false : 'the reference tracker has no TLS listener'

for (const mixed of [false, true]) {
  test(`node bittorrent-tracker clients over wss://${mixed ? ' (seeder) and ws:// (leecher)' : ''}`,
    { timeout: 90000, skip: TLS_SKIP }, async (t) => {
      const tr = await startTracker({ tls: true })
      try {
        const r = await runNodePair({
          url: tr.tlsUrl, leecherUrl: mixed ? tr.url : tr.tlsUrl, windowMs: 45000, caFile: tr.caFile
        })
        const why = () => `\n${r.transcript}\n--- tracker log ---\n${tr.logs()}`
        assert.ok(r.seederAnnounced, `seeder got no announce response${why()}`)
        assert.ok(r.leecherAnnounced, `leecher got no announce response${why()}`)
        assert.ok(r.leecherGot, `leecher did not receive "${r.seederMsg}"${why()}`)
        assert.ok(r.seederGot, `seeder did not receive "${r.leecherMsg}"${why()}`)
        // Node's TLS 1.3 connections ran on our own record layer after the handshake.
        const st = await tr.stats()
        assert.ok(st.tls_handed_over >= (mixed ? 1 : 2), `tls_handed_over ${st.tls_handed_over}${why()}`)
        assert.equal(st.tls_errors, 0, `tls_errors ${st.tls_errors}${why()}`)
      } finally {
        await tr.stop()
      }
    })
}
