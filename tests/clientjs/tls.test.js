// The browser client library (clients/js) over wss:// in headless Chromium, against the real
// tracker binary with a ws:// and a wss:// listener. Run by scripts/run-clientjs.sh.
//
// The certificate is made here with the `openssl` command: a throw-away CA and a server
// certificate it signs for 127.0.0.1, as tests/integration/tls.test.mjs does. Chromium does not
// know that CA. The pages that must get through run in a browser launched with
// --ignore-certificate-errors-spki-list naming the server certificate's key, so that exactly that
// certificate is accepted and the handshake succeeds at the first try. (Playwright's
// ignoreHTTPSErrors, which tests/realclients uses, works too, but Chromium then aborts a first
// handshake on every connection before it lets the certificate through: the server would count a
// TLS error per page, and the test checks that there is none.) A browser without the flag shows
// that the certificate is really checked, i.e. that the test goes over TLS and not around it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, launchBrowser, openPage, startStatic, startTracker, tempDir } from './harness.js';

const RTC = { rtcConfig: { iceServers: [] } };
const MiB = 1024 * 1024;
// Days the test certificates are valid: they live only as long as the test's temporary directory.
const CERT_DAYS = '2';

let browser, trusting, web, tmp, tr;
const cleanups = [];

/** Runs the openssl command in the temporary directory; a failure throws with its stderr. */
function openssl(...args) {
    execFileSync('openssl', args, { cwd: tmp.dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Makes ca.pem (a test CA) and cert.pem + key.pem (a server certificate for 127.0.0.1 it signs).
 * Returns the base64 SHA-256 of the server certificate's public key (SubjectPublicKeyInfo), the
 * form --ignore-certificate-errors-spki-list takes.
 */
function makeCertificates() {
    fs.writeFileSync(path.join(tmp.dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', 'ca.key', '-out', 'ca.pem', '-days', CERT_DAYS, '-subj', '/CN=sigtracker clientjs test CA');
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', 'key.pem', '-out', 'cert.csr', '-subj', '/CN=127.0.0.1');
    openssl('x509', '-req', '-in', 'cert.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x5151',
        '-days', CERT_DAYS, '-out', 'cert.pem', '-extfile', 'ext.cnf');
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(tmp.dir, 'cert.pem')));
    const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
    return crypto.createHash('sha256').update(spki).digest('base64');
}

before(async () => {
    tmp = tempDir();
    const spki = makeCertificates();
    [browser, trusting, web] = await Promise.all([
        launchBrowser(),
        launchBrowser([`--ignore-certificate-errors-spki-list=${spki}`]),
        startStatic(),
    ]);
    // One tracker, two listeners: harness.js waits for the ws:// one (its --host/--port are the
    // same address, so they add nothing), and the wss:// one is up by then too (both are opened
    // before the loop starts).
    const port = await freePort();
    const tlsPort = await freePort();
    const t = await startTracker(port, path.join(tmp.dir, 'tls.db'), [
        '--listen', `ws://127.0.0.1:${port}`, '--listen', `wss://127.0.0.1:${tlsPort}`,
        '--tls-cert', path.join(tmp.dir, 'cert.pem'), '--tls-key', path.join(tmp.dir, 'key.pem'),
    ]);
    tr = { ...t, wss: `wss://127.0.0.1:${tlsPort}/` };
    cleanups.push(() => t.stop());
});

after(async () => {
    for (const f of cleanups.reverse()) await f().catch(() => {});
    await browser?.close();
    await trusting?.close();
    await web?.close();
    tmp?.cleanup();
});

/** A fresh browser context; trust picks the browser that accepts the test certificate. */
async function context(trust) {
    const c = await (trust ? trusting : browser).newContext();
    cleanups.push(() => c.close());
    return c;
}

/** The server's /stats.json, read over its ws:// listener's plain HTTP. */
async function stats() {
    const res = await fetch(`${tr.http}/stats.json`);
    assert.equal(res.status, 200);
    return res.json();
}

const infoHash = (n) => n.toString(16).padStart(40, '0');

/**
 * Page a seeds size random bytes on infohash h through the tracker at urlA; page b announces
 * through urlB, connects to a over WebRTC and downloads them. Returns both sides' findings.
 */
async function seedAndFetch(a, b, urlA, urlB, h, size) {
    const seeder = await a.evaluate(async ({ url, h, size, RTC }) => {
        const file = t.randomBytes(size);
        window.client = await st.connect(url, RTC);
        client.on('connection', ({ channel }) => st.sendWithBackpressure(channel, file));
        const res = await client.announce(h, { left: 0, uploaded: 0, downloaded: size });
        return { peerId: client.peerId, sha256: await t.sha256Hex(file), res };
    }, { url: urlA, h, size, RTC });
    const leecher = await b.evaluate(async ({ url, h, size, RTC }) => {
        window.client = await st.connect(url, RTC);
        const res = await client.announce(h, { left: size, uploaded: 0, downloaded: 0 });
        const seeder = res.peers.find((p) => p.complete);
        const t0 = performance.now();
        const channel = await client.connectPeer(seeder.peerId, { infoHash: h });
        const bytes = await t.receiveBytes(channel, size);
        const ms = performance.now() - t0;
        const done = await client.complete(h, { downloaded: size });
        return { peerId: client.peerId, res, sha256: await t.sha256Hex(bytes), ms, done };
    }, { url: urlB, h, size, RTC });
    return { seeder, leecher };
}

test('two pages over wss:// claim IDs, announce, connect over WebRTC and exchange 1 MiB', async () => {
    const before = await stats();
    const ctx = await context(true);
    const [a, b] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    const h = infoHash(0x7151);
    const { seeder, leecher } = await seedAndFetch(a, b, tr.wss, tr.wss, h, MiB);

    assert.match(seeder.peerId, /^[A-Za-z0-9]{20}$/);
    assert.match(leecher.peerId, /^[A-Za-z0-9]{20}$/);
    assert.notEqual(seeder.peerId, leecher.peerId);
    assert.equal(seeder.res.complete, 1);
    assert.ok(leecher.res.peers.some((p) => p.peerId === seeder.peerId && p.complete), JSON.stringify(leecher.res));
    assert.equal(leecher.sha256, seeder.sha256);
    assert.equal(leecher.done.complete, 2);
    assert.equal(leecher.done.incomplete, 0);

    // Both pages really came over TLS: the server counted a handshake for each (full or, should
    // Chromium reuse a ticket from the first page for the second, resumed) and no TLS error.
    const now = await stats();
    const handshakes = now.tls_handshakes_full + now.tls_handshakes_resumed -
        before.tls_handshakes_full - before.tls_handshakes_resumed;
    assert.ok(handshakes >= 2, `TLS handshakes during the test: ${handshakes}`);
    assert.equal(now.tls_errors, before.tls_errors);
    // Chromium speaks TLS 1.3: each connection ran on our own record layer after its handshake.
    assert.equal(now.tls_handed_over - before.tls_handed_over, handshakes);

    // The library kept its peer ID and token per URL, wss:// included.
    const stored = await b.evaluate((url) => sessionStorage.getItem(`sigtracker:${url}`), tr.wss);
    assert.equal(JSON.parse(stored).peerId, leecher.peerId);
    console.log(`# 1 MiB over the data channel after signalling over wss:// in ${Math.round(leecher.ms)} ms`);
    await Promise.all([a, b].map((p) => p.evaluate(() => client.close())));
});

test('a page on ws:// and a page on wss:// share a swarm and connect', async () => {
    const ctx = await context(true);
    const [a, b] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    const h = infoHash(0x7152);
    const { seeder, leecher } = await seedAndFetch(a, b, tr.url, tr.wss, h, 64 * 1024);
    assert.ok(leecher.res.peers.some((p) => p.peerId === seeder.peerId), JSON.stringify(leecher.res));
    assert.equal(leecher.sha256, seeder.sha256);
    await Promise.all([a, b].map((p) => p.evaluate(() => client.close())));
});

test('a page that does not trust the test CA cannot connect over wss://', async () => {
    const before = await stats();
    const ctx = await context(false);
    const p = await openPage(ctx, web.origin);
    const refused = await p.evaluate(async (url) => {
        try {
            window.client = await st.connect(url);
            return { ok: true };
        } catch (e) {
            return { ok: false, name: e.name };
        }
    }, tr.wss);
    assert.equal(refused.ok, false, 'the handshake should fail on the unknown CA');
    // Chromium aborts the handshake when it sees the certificate: the server counts a TLS error.
    const deadline = Date.now() + 5000;
    let now = await stats();
    while (now.tls_errors === before.tls_errors && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        now = await stats();
    }
    assert.ok(now.tls_errors > before.tls_errors, 'the server should have seen a failed handshake');
});
