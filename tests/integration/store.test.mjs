// The infohash database: completions survive a restart; bad database paths fail start-up clearly.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import {
  HOST, closeAll, connect, connectMany, freePort, randomInfoHash, randomPeerId, runBinary,
  sanitizerFindings, startServer
} from './helpers.mjs'

function announce (client, infoHash, fields = {}) {
  return client.request({ type: 'announce', info_hash: infoHash, ...fields }, { type: 'announce' })
}

async function scrape (srv, hashes) {
  const c = await connect(srv, { name: 'scraper' })
  try {
    await c.ola(randomPeerId('scr'))
    const ans = await c.request({ type: 'scrape', info_hashes: hashes }, { type: 'scrape' })
    assert.deepEqual(Object.keys(ans.files).sort(), hashes.map((h) => h.toLowerCase()).sort())
    return ans.files
  } finally {
    await c.close()
  }
}

describe('store', () => {
  test('scrape "downloaded" survives a restart; live counts do not', async (t) => {
    // --db-flush is long on purpose: what is written must be written by the SIGTERM shutdown.
    const srv = await startServer({ t, args: ['--min-interval', '0', '--db-flush', '3600'] })
    const IH = randomInfoHash()
    const IH2 = randomInfoHash() // announced, never completed
    const NEVER = randomInfoHash() // never announced
    const peers = await connectMany(srv, 3, 'st')
    try {
      for (const p of peers) {
        await p.ola(randomPeerId('st'))
        await announce(p, IH, { event: 'started', left: 100 })
      }
      await announce(peers[0], IH2, { event: 'started', left: 1 })
      // Two of the three complete.
      for (const p of peers.slice(0, 2)) {
        const ans = await announce(p, IH, { event: 'completed', left: 0 })
        assert.equal(ans.type, 'announce')
      }
      assert.deepEqual(await scrape(srv, [IH, IH2, NEVER]), {
        [IH]: { complete: 2, incomplete: 1, downloaded: 2 },
        [IH2]: { complete: 0, incomplete: 1, downloaded: 0 },
        [NEVER]: { complete: 0, incomplete: 0, downloaded: 0 }
      })
      // Restart with the peers still connected: they are told, and the completions are written
      // by the shutdown (the periodic flush is an hour away).
      await srv.restart()
      for (const p of peers) {
        assert.deepEqual(await p.next(), { type: 'bye', reason: 'shutdown' })
        assert.equal((await p.closed).code, 1001)
      }
    } finally {
      await closeAll(peers)
    }
    assert.deepEqual(await scrape(srv, [IH, IH2, NEVER]), {
      [IH]: { complete: 0, incomplete: 0, downloaded: 2 },
      [IH2]: { complete: 0, incomplete: 0, downloaded: 0 },
      [NEVER]: { complete: 0, incomplete: 0, downloaded: 0 }
    })

    // A completion after the restart adds to what the file held, and survives the next restart.
    const p = await connect(srv, { name: 'late' })
    try {
      await p.ola(randomPeerId('late'))
      await announce(p, IH, { event: 'started', left: 9 })
      const ans = await announce(p, IH, { event: 'completed', left: 0 })
      assert.equal(ans.complete, 1)
      // Upper-case infohashes address the same record.
      assert.deepEqual(await scrape(srv, [IH.toUpperCase()]), { [IH]: { complete: 1, incomplete: 0, downloaded: 3 } })
    } finally {
      await p.close()
    }
    await srv.restart()
    assert.deepEqual(await scrape(srv, [IH]), { [IH]: { complete: 0, incomplete: 0, downloaded: 3 } })
  })

  test('completions are written by the periodic flush too', async (t) => {
    const srv = await startServer({ t, args: ['--min-interval', '0', '--db-flush', '1'] })
    const IH = randomInfoHash()
    const p = await connect(srv, { name: 'flush' })
    try {
      await p.ola(randomPeerId('fl'))
      await announce(p, IH, { event: 'completed', left: 0 })
    } finally {
      await p.close()
    }
    // Wait for a committed batch, then kill the server hard: nothing may depend on the shutdown.
    const deadline = Date.now() + 8000
    for (;;) {
      const res = await fetch(`${srv.httpBase}/stats.json`)
      const st = await res.json()
      if (st.db_rows_written >= 1) break
      assert.ok(Date.now() < deadline, `no database batch committed: ${JSON.stringify(st)}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    srv.child.kill('SIGKILL')
    await srv.exited
    // Start again on the same file (the after hook then checks the clean SIGTERM exit of this one).
    await srv.start()
    assert.deepEqual(await scrape(srv, [IH]), { [IH]: { complete: 0, incomplete: 0, downloaded: 1 } })
  })

  describe('bad database paths: clear error, non-zero exit, nothing served', () => {
    const dirs = []
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    })
    const tmp = () => {
      const d = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-baddb-'))
      dirs.push(d)
      return d
    }

    async function expectStartupFailure (dbPath, pattern) {
      const port = await freePort()
      const r = await runBinary(['--host', HOST, '--port', String(port), '--db', dbPath])
      assert.notEqual(r.code, 0, `exit code 0 for --db ${dbPath}; stderr:\n${r.stderr}`)
      assert.equal(r.signal, null, `killed by ${r.signal}; stderr:\n${r.stderr}`)
      assert.ok(r.stderr.includes(dbPath), `stderr should name the path ${dbPath}:\n${r.stderr}`)
      assert.match(r.stderr, pattern)
      assert.deepEqual(sanitizerFindings(r.stderr), [], r.stderr)
      // Nothing listens on the port.
      await assert.rejects(fetch(`http://${HOST}:${port}/health`))
      return r
    }

    test('a directory', async () => {
      const d = tmp()
      await expectStartupFailure(d, /cannot open database .*directory/)
    })

    test('a path in a missing directory', async () => {
      const d = tmp()
      await expectStartupFailure(path.join(d, 'missing', 'deeper', 't.db'), /cannot open database/)
    })

    test('a file that is not SQLite (left untouched)', async () => {
      const d = tmp()
      const f = path.join(d, 'notes.db')
      const content = Buffer.concat([Buffer.from('These are my notes, not a database.\n'), randomBytes(8192)])
      writeFileSync(f, content)
      await expectStartupFailure(f, /not a database/)
      assert.ok(readFileSync(f).equals(content), 'the file was modified')
    })

  })
})
