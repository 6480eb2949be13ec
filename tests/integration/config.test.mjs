// The configuration file on the real binary: --print-config round-trips every key, the committed
// example cannot drift from it, errors name the file, the line and the key (exit 2, nothing
// started), flags override the file, and --check-config says whether all of it is valid.

import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { ROOT, runBinary, startServer, stats } from './helpers.mjs'

const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-config-'))
after(() => rmSync(dir, { recursive: true, force: true }))

let fileNo = 0
/** Writes text to a fresh file in the test directory; returns its path. */
function writeConf (text, name = `c${++fileNo}.conf`) {
  const p = path.join(dir, name)
  writeFileSync(p, text)
  return p
}

/** The key = value lines of a printed configuration, as [key, value] pairs. */
function keyLines (printed) {
  return printed.split('\n').filter((l) => /^[a-z-]+ =/.test(l)).map((l) => {
    const i = l.indexOf(' =')
    return [l.slice(0, i), l.slice(i + 2).trim()]
  })
}

// A value other than the default for every key (the test below fails when a key is missing, so
// a new flag must be added here). Strings that need quoting, several listeners and booleans
// included.
const EVERY_KEY = `
# every key, none at its default
[network]
host = 127.0.0.2
port = 9999
listen = ws://127.0.0.1:9001   # two listeners
listen = wss://[::1]:9443
reuse-port = yes
admin-listen = [::1]:9100
public-metrics = no
[tls]
tls-cert = /etc/ssl/cert one.pem
tls-key = " /etc/ssl/key#1.pem"
[logging]
log-level = warn
log-format = json
log-summary = 30
[database]
db = /var/lib/sigtracker/x.db
db-flush = 7
[tracker]
interval = 300
min-interval = 30
peer-timeout = 500
max-numwant = 70
default-numwant = 25
max-offers = 5
offer-ttl = 60
max-scrape = 50
[access]
allowlist = /etc/sigtracker/allow.txt
[liveness]
ping-interval = 40
ping-timeout = 20
handshake-timeout = 5
idle-timeout = 0
[limits]
max-frame = 32768
max-message = 131072
max-json-depth = 8
max-connections = 5000
max-per-ip = 20
max-swarms = 64
max-outbuf = 131072
stuck-timeout = 15
msg-rate = 10
msg-burst = 40
signal-rate = 20
signal-burst = 80
recv-rate = 30
recv-burst = 90
allow-origin = https://a.example,https://b.example
trusted-proxy = 10.0.0.1,::1
[shedding]
shed-high = 4000
shed-low = 3000
shed-ratio = 6
shed-min-seeders = 2
[cluster]
cluster = redis://127.0.0.1:6379
node-timeout = 20
[testing]
test-drop-offers = 1
`

describe('--print-config', () => {
  test('every key round-trips: print, load the print, print again: identical', async () => {
    const defaults = await runBinary(['--print-config'])
    assert.equal(defaults.code, 0, defaults.stderr)
    const first = await runBinary(['--config', writeConf(EVERY_KEY), '--print-config'])
    assert.equal(first.code, 0, first.stderr)
    assert.equal(first.stderr, '')
    const again = await runBinary(['--config', writeConf(first.stdout), '--print-config'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.stdout, first.stdout)

    // Every key of the defaults' print is set here to something else.
    const def = new Map(keyLines(defaults.stdout))
    const got = keyLines(first.stdout)
    const keys = new Set(got.map(([k]) => k))
    for (const k of def.keys()) {
      if (k === 'denylist') continue // cannot be set with allowlist
      assert.ok(keys.has(k), `EVERY_KEY lacks ${k}`)
      const v = got.find(([key]) => key === k)[1]
      assert.notEqual(v, def.get(k), `${k} is at its default (${v}) in EVERY_KEY`)
    }
    assert.ok(defaults.stdout.includes('\n# listen = ws://0.0.0.0:8000\n'))
    assert.deepEqual(got.filter(([k]) => k === 'listen').map(([, v]) => v),
      ['ws://127.0.0.1:9001', 'wss://[::1]:9443'])
    assert.ok(first.stdout.includes('\ntls-key = " /etc/ssl/key#1.pem"\n'))
    assert.ok(first.stdout.includes('\nreuse-port = true\n'))
    assert.ok(first.stdout.includes('\ntest-drop-offers = true\n'))

    // Each key comes with its help, unit, default and reload behaviour as comments.
    assert.match(first.stdout,
      /\n# max-per-ip: connections per client address \(0 = unlimited\)\n# unit: conns; default: 1024; applies on reload \(SIGHUP\)\nmax-per-ip = 20\n/)
    assert.match(first.stdout, /\n# port: .*\n# unit: port; default: 8000; needs a restart\nport = 9999\n/)
  })

  test('flags override the file, and the print shows the result', async () => {
    const conf = writeConf('[limits]\nmax-per-ip = 20\nmsg-rate = 5\n[network]\nreuse-port = true\n' +
      'listen = ws://127.0.0.1:1000\n')
    const r = await runBinary(['--config', conf, '--msg-rate', '9', '--no-reuse-port',
      '--listen', 'ws://127.0.0.1:2000', '--listen=ws://[::1]:2001', '--print-config'])
    assert.equal(r.code, 0, r.stderr)
    const kv = keyLines(r.stdout)
    const get = (k) => kv.filter(([key]) => key === k).map(([, v]) => v)
    assert.deepEqual(get('max-per-ip'), ['20'])
    assert.deepEqual(get('msg-rate'), ['9'])
    assert.deepEqual(get('reuse-port'), ['false'])
    // The command line's --listen list replaces the file's.
    assert.deepEqual(get('listen'), ['ws://127.0.0.1:2000', 'ws://[::1]:2001'])
  })

  test('the committed example is what --print-config prints, in etc/ and in the docs', async () => {
    const r = await runBinary(['--print-config'])
    assert.equal(r.code, 0)
    const example = readFileSync(path.join(ROOT, 'etc', 'sigtracker.conf.example'), 'utf8')
    assert.equal(example, r.stdout,
      'etc/sigtracker.conf.example differs from --print-config: run scripts/update-config-example.sh')
    const doc = readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8')
    const m = /<!-- BEGIN sigtracker\.conf\.example -->\n```ini\n([\s\S]*?)```\n<!-- END sigtracker\.conf\.example -->/.exec(doc)
    assert.ok(m, 'docs/configuration.md has no example block')
    assert.equal(m[1], r.stdout,
      'the example in docs/configuration.md differs: run scripts/update-config-example.sh')
  })
})

describe('errors name the file, the line and the key; nothing starts (exit 2)', () => {
  const cases = [
    ['an unknown key', 'port = 9000\n\nno-such-key = 3\n', ':3: unknown key "no-such-key"'],
    ['a bad number', '[limits]\nmax-per-ip = lots\n', ':2: key max-per-ip wants a whole number from 0 to 10000000 (conns), not "lots"'],
    ['a bad boolean', 'reuse-port = maybe\n', ':1: key reuse-port wants true or false'],
    ['a key in the wrong section', '[tracker]\nmsg-rate = 5\n', ':2: key msg-rate belongs in section [limits], not [tracker]'],
    ['a key set twice', 'port = 1\nport = 2\n', ':2: key port is already set on line 1'],
    ['a syntax error', 'max-per-ip 20\n', ':1: expected `key = value`'],
    ['min-interval above interval', 'interval = 60\nmin-interval = 90\n', ':2: key min-interval (90) must not exceed interval (60)'],
    ['a wss listener without a certificate', 'listen = ws://127.0.0.1:1\nlisten = wss://127.0.0.1:2\n', ':2: key listen: wss://127.0.0.1:2 needs tls-cert and tls-key'],
    ['a certificate without its key', 'tls-cert = /c.pem\n', ':1: key tls-cert needs tls-key too'],
    ['both access lists', 'allowlist = /a.txt\ndenylist = /d.txt\n', ':2: key denylist: --allowlist and --denylist cannot both be set'],
    ['a bad listen URL', 'listen = ws://[::1:80\n', ':1: key listen "ws://[::1:80": an IPv6 address needs its closing \']\'']
  ]
  for (const [what, text, expected] of cases) {
    test(what, async () => {
      const conf = writeConf(text)
      const r = await runBinary(['--config', conf, '--port', '1'])
      assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`)
      assert.ok(r.stderr.includes(`sigtracker: ${conf}${expected}`),
        `stderr ${JSON.stringify(r.stderr)} lacks ${JSON.stringify(conf + expected)}`)
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line')
      // --check-config says the same, with the same exit code.
      const c = await runBinary(['--config', conf, '--check-config'])
      assert.equal(c.code, 2)
      assert.ok(c.stderr.includes(`${conf}${expected}`), c.stderr)
    })
  }

  test('a missing file', async () => {
    const r = await runBinary(['--config', path.join(dir, 'absent.conf')])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /cannot read the configuration file .*absent\.conf: No such file/)
  })

  test('a bad flag is named as a flag', async () => {
    const r = await runBinary(['--config', writeConf('port = 9000\n'), '--max-per-ip', '-3'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--max-per-ip wants a whole number/)
  })
})

describe('--check-config', () => {
  test('a valid file and list: exit 0 and a clear message', async () => {
    const list = writeConf('08ada5a7a6183aae1e09d831df6748d566095a10\n# x\nDD8255ECDC7CA55FB0BBF81323D87062DB1F6D1C\n', 'ok.txt')
    const conf = writeConf(`[limits]\nmax-per-ip = 20\n[access]\nallowlist = ${list}\n`)
    const r = await runBinary(['--config', conf, '--check-config'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `sigtracker: configuration OK (file ${conf}; allowlist ${list}: 2 infohashes)\n`)
    const flags = await runBinary(['--max-per-ip', '3', '--check-config'])
    assert.equal(flags.code, 0)
    assert.match(flags.stdout, /configuration OK \(no file, flags only; no access list\)/)
  })

  test('a malformed access list: exit 2, naming its line', async () => {
    const list = writeConf('08ada5a7a6183aae1e09d831df6748d566095a10\n\nnot-an-infohash\n', 'bad.txt')
    const r = await runBinary(['--denylist', list, '--check-config'])
    assert.equal(r.code, 2)
    assert.ok(r.stderr.includes(`${list}:3: expected an infohash (40 hex characters), found "not-an-infohash"`), r.stderr)
  })
})

test('a server started from a file uses it, and flags win', async (t) => {
  const conf = writeConf('[limits]\nmax-per-ip = 7\nmax-connections = 50\n[tracker]\ninterval = 77\n')
  const srv = await startServer({ args: ['--config', conf, '--max-connections', '60'], t })
  const s = await stats(srv)
  assert.equal(s.max_connections, 60)
  assert.equal(s.config_reloads, 0)
  assert.match(srv.stderr, /, 7 per address/)
  assert.ok(srv.stderr.includes(`configuration from ${conf} and the command line; SIGHUP reloads it`))
})
