// The browser client library (clients/js) in headless Chromium against the real tracker binary.
// Run by scripts/run-clientjs.sh (inside a private network namespace when it can make one).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, launchBrowser, openPage, startStatic, startTracker, tempDir } from './harness.js';

const RTC = { rtcConfig: { iceServers: [] } };
const MiB = 1024 * 1024;

let browser, web, tmp;
const cleanups = [];

before(async () => {
    tmp = tempDir();
    [browser, web] = await Promise.all([launchBrowser(), startStatic()]);
});

after(async () => {
    for (const f of cleanups.reverse()) await f().catch(() => {});
    await browser?.close();
    await web?.close();
    tmp?.cleanup();
});

/** A tracker on a free port with its own database, stopped after the suite. */
async function tracker(name, extraArgs) {
    const port = await freePort();
    const db = path.join(tmp.dir, `${name}.db`);
    const t = await startTracker(port, db, extraArgs);
    cleanups.push(() => t.stop());
    return { ...t, db };
}

/** A fresh browser context (own sessionStorage), closed after the suite. */
async function context() {
    const c = await browser.newContext();
    cleanups.push(() => c.close());
    return c;
}

const infoHash = (n) => n.toString(16).padStart(40, '0');

test('two pages find each other through an announce and exchange 1 MiB over the data channel', async () => {
    const tr = await tracker('transfer');
    const ctx = await context();
    const [a, b] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    const h = infoHash(0x1111);

    // A generates the file and seeds it: every connection that opens gets the file.
    const seeder = await a.evaluate(async ({ url, h, size, RTC }) => {
        const file = t.randomBytes(size);
        window.client = await st.connect(url, RTC);
        client.on('connection', ({ channel }) => st.sendWithBackpressure(channel, file));
        const res = await client.announce(h, { left: 0, uploaded: 0, downloaded: size });
        return { peerId: client.peerId, sha256: await t.sha256Hex(file), res };
    }, { url: tr.url, h, size: MiB, RTC });
    assert.equal(seeder.res.complete, 1);
    assert.deepEqual(seeder.res.peers, []);

    // B leeches: its announce answer names A, it connects through the helper and downloads.
    const leecher = await b.evaluate(async ({ url, h, size, RTC }) => {
        window.client = await st.connect(url, RTC);
        const res = await client.announce(h, { left: size, uploaded: 0, downloaded: 0 });
        const seeder = res.peers.find((p) => p.complete);
        const t0 = performance.now();
        const channel = await client.connectPeer(seeder.peerId, { infoHash: h });
        const bytes = await t.receiveBytes(channel, size);
        const ms = performance.now() - t0;
        const done = await client.complete(h, { downloaded: size });
        return { peerId: client.peerId, res, sha256: await t.sha256Hex(bytes), ms, done, label: channel.label };
    }, { url: tr.url, h, size: MiB, RTC });

    assert.ok(leecher.res.peers.some((p) => p.peerId === seeder.peerId && p.complete), JSON.stringify(leecher.res));
    assert.equal(leecher.res.complete, 1);
    assert.equal(leecher.res.incomplete, 1);
    assert.equal(leecher.sha256, seeder.sha256);
    assert.equal(leecher.done.complete, 2);
    assert.equal(leecher.done.incomplete, 0);
    console.log(`# 1 MiB over the data channel in ${Math.round(leecher.ms)} ms (connect + transfer)`);
});

test('a reloaded page gets its peer ID back; another page without the token is refused', async () => {
    const tr = await tracker('reload');
    const ctx = await context();
    const p = await openPage(ctx, web.origin);
    const first = await p.evaluate(async (url) => {
        window.client = await st.connect(url);
        return { peerId: client.peerId, stored: sessionStorage.getItem(`sigtracker:${url}`) };
    }, tr.url);
    assert.match(first.peerId, /^[A-Za-z0-9]{20}$/);
    assert.equal(JSON.parse(first.stored).peerId, first.peerId);

    await p.reload();
    await p.waitForFunction(() => window.st !== undefined);
    const second = await p.evaluate(async (url) => {
        window.client = await st.connect(url);
        return { peerId: client.peerId, stored: sessionStorage.getItem(`sigtracker:${url}`) };
    }, tr.url);
    assert.equal(second.peerId, first.peerId);
    assert.match(JSON.parse(second.stored).token, /^[0-9a-f]{32}$/);

    // A different tab has no token for that ID: the server refuses it and connect() rejects.
    const q = await openPage(ctx, web.origin);
    const refused = await q.evaluate(async ({ url, id }) => {
        try {
            await st.connect(url, { peerId: id });
            return { ok: true };
        } catch (e) {
            return { ok: false, name: e.name, code: e.code, isError: e instanceof Error };
        }
    }, { url: tr.url, id: first.peerId });
    assert.deepEqual(refused, { ok: false, name: 'SigtrackerError', code: 'peer_id_taken', isError: true });

    // The reloaded page still holds its ID and works.
    const still = await p.evaluate(async () => {
        const res = await client.scrape(['00000000000000000000000000000000000000aa']);
        return { state: client.state, res };
    });
    assert.equal(still.state, 'open');
    assert.deepEqual(still.res['00000000000000000000000000000000000000aa'], { complete: 0, incomplete: 0, downloaded: 0 });
});

test('after a server restart the client reconnects and re-announces by itself', async () => {
    let tr = await tracker('restart');
    const ctx = await context();
    const a = await openPage(ctx, web.origin);
    const h = infoHash(0x2222);
    const before = await a.evaluate(async ({ url, h }) => {
        window.client = await st.connect(url, { reconnect: { minDelay: 100, maxDelay: 1000 } });
        window.events = t.record(client);
        await client.announce(h, { left: 1000 });
        return client.peerId;
    }, { url: tr.url, h });

    const t0 = Date.now();
    await tr.stop();
    tr = await startTracker(tr.port, tr.db); // same port, same database
    cleanups.push(() => tr.stop());

    // Wait for the client's own re-announce answer after reconnecting.
    const after = await a.evaluate(async ({ h }) => {
        await t.until(() => {
            const i = events.findIndex((e) => e.type === 'connect' && e.detail.reconnected);
            return i >= 0 && events.slice(i).some((e) => e.type === 'announce' && e.detail.infoHash === h);
        }, 20000);
        return { peerId: client.peerId, state: client.state, types: events.map((e) => e.type) };
    }, { h });
    const took = Date.now() - t0;
    assert.equal(after.peerId, before);
    assert.equal(after.state, 'open');
    assert.ok(after.types.includes('disconnect') && after.types.includes('reconnecting'), after.types.join(','));

    // The new server process knows A again: another page's announce answer lists it.
    const b = await openPage(ctx, web.origin);
    const seen = await b.evaluate(async ({ url, h }) => {
        const c = await st.connect(url);
        const res = await c.announce(h, { left: 0 });
        const files = await c.scrape([h]);
        return { res, files };
    }, { url: tr.url, h });
    assert.ok(seen.res.peers.some((p) => p.peerId === before), JSON.stringify(seen.res));
    assert.equal(seen.files[h].incomplete, 1);
    assert.equal(seen.files[h].complete, 1);
    console.log(`# restart to re-announce answer: ${took} ms`);
});

test('both sides offer at once and still end with exactly one connection', async () => {
    const tr = await tracker('glare');
    const ctx = await context();
    const [a, b] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    const setup = async (url) => {
        window.client = await st.connect(url, { rtcConfig: { iceServers: [] }, WebSocket: t.GatedWebSocket });
        t.gate.closed = true; // hold incoming signals until both sides have offered
        return client.peerId;
    };
    const [ida, idb] = await Promise.all([a.evaluate(setup, tr.url), b.evaluate(setup, tr.url)]);

    const start = (other) => {
        window.linked = client.connectPeer(other, { timeout: 20000 }).then(
            (ch) => ({ ok: true, label: ch.label, state: ch.readyState }),
            (e) => ({ ok: false, code: e.code, message: e.message }),
        );
    };
    await Promise.all([a.evaluate(start, idb), b.evaluate(start, ida)]);
    // Both made their offer before seeing the other's: a true collision.
    await Promise.all([a, b].map((p) => p.waitForFunction(() => t.counters.offers >= 1)));
    await Promise.all([a.evaluate(() => t.openGate()), b.evaluate(() => t.openGate())]);

    const [ra, rb] = await Promise.all([a.evaluate(() => window.linked), b.evaluate(() => window.linked)]);
    assert.equal(ra.ok, true, JSON.stringify(ra));
    assert.equal(rb.ok, true, JSON.stringify(rb));

    // Each side sends on its channel and the other receives it: the two channels are one.
    const listen = (other) => {
        window.got = t.nextMessage(client.connections.get(other).channel);
    };
    await Promise.all([a.evaluate(listen, idb), b.evaluate(listen, ida)]);
    const say = (other) => client.connections.get(other).channel.send(`hello from ${client.peerId}`);
    await Promise.all([a.evaluate(say, idb), b.evaluate(say, ida)]);
    const [ma, mb] = await Promise.all([a.evaluate(() => window.got), b.evaluate(() => window.got)]);
    assert.equal(ma, `hello from ${idb}`);
    assert.equal(mb, `hello from ${ida}`);

    await new Promise((r) => setTimeout(r, 500)); // nothing else may appear afterwards
    const state = () => ({
        pcs: t.counters.pcs,
        offers: t.counters.offers,
        links: client.connections.size,
        pc: [...client.connections.values()][0].pc.connectionState,
    });
    const [sa, sb] = await Promise.all([a.evaluate(state), b.evaluate(state)]);
    for (const s of [sa, sb]) {
        assert.equal(s.pcs, 1, JSON.stringify(s));
        assert.equal(s.links, 1, JSON.stringify(s));
        assert.equal(s.pc, 'connected', JSON.stringify(s));
    }
});

test('server errors become SigtrackerErrors with the server code; rate limits are waited out', async () => {
    const tr = await tracker('errors', ['--signal-rate', '1', '--signal-burst', '2']);
    const ctx = await context();
    const [a, b] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    const idb = await b.evaluate(async (url) => {
        window.client = await st.connect(url);
        window.got = [];
        client.on('signal', (s) => got.push(s));
        return client.peerId;
    }, tr.url);
    const res = await a.evaluate(async ({ url, idb }) => {
        const client = await st.connect(url, { rtcConfig: { iceServers: [] } });
        const errors = [];
        client.on('error', (e) => errors.push({ name: e.name, code: e.code, ref: e.ref, to: e.to, retryAfterMs: e.retryAfterMs }));
        // A signal to nobody: an 'error' event carrying peer_not_found and the addressee.
        client.signal('nobody-here', 'offer', { hello: 1 });
        await t.until(() => errors.length === 1);
        const notFound = errors[0];
        // The helper rejects with the server's error when the peer is not there.
        const link = await client.connectPeer('nobody-here').then(() => null, (e) => ({ name: e.name, code: e.code }));
        // Three signals at once against a bucket of two: the third is refused with
        // rate_limited, and the next one waits for the time the server named.
        errors.length = 0;
        for (const n of [1, 2, 3]) client.signal(idb, 'candidate', { n });
        await t.until(() => errors.some((e) => e.code === 'rate_limited'));
        client.signal(idb, 'candidate', { n: 4 });
        return { notFound, errors, link };
    }, { url: tr.url, idb });
    assert.deepEqual(res.notFound, { name: 'SigtrackerError', code: 'peer_not_found', ref: 'offer', to: 'nobody-here', retryAfterMs: undefined });
    assert.deepEqual(res.link, { name: 'SigtrackerError', code: 'peer_not_found' });
    const limited = res.errors.find((e) => e.code === 'rate_limited');
    assert.equal(limited.ref, 'candidate');
    assert.ok(limited.retryAfterMs > 0, JSON.stringify(limited));
    // The fourth signal arrives anyway (held back, then sent), and nothing else got refused.
    const got = await b.evaluate(() => t.until(() => got.some((s) => s.payload.n === 4)).then(() => got.map((s) => s.payload.n)));
    assert.deepEqual(got, [1, 2, 4]);
    assert.equal(res.errors.filter((e) => e.code === 'rate_limited').length, 1, JSON.stringify(res.errors));
});

test('a send to a tab that reloads mid-transfer rejects with channel_closed instead of waiting forever', async () => {
    const tr = await tracker('send-closed');
    const ctx = await context();
    const [a, b] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    const size = 32 * MiB;
    const ida = await a.evaluate(async ({ url, RTC, size }) => {
        window.client = await st.connect(url, RTC);
        const file = t.randomBytes(size);
        window.outcome = new Promise((resolve) => {
            client.on('connection', ({ channel }) => {
                let sent = 0;
                st.sendWithBackpressure(channel, file, { onProgress: (n) => (sent = n) }).then(
                    () => resolve({ ok: true, sent }),
                    (e) => resolve({ ok: false, name: e.name, code: e.code, sent, at: performance.now() }),
                );
            });
        });
        return client.peerId;
    }, { url: tr.url, RTC, size });
    // B reloads itself as soon as 1 MiB has arrived: the sender is then far from done.
    const reloadedAt = await b.evaluate(async ({ url, RTC, ida }) => {
        window.client = await st.connect(url, RTC);
        const channel = await client.connectPeer(ida);
        let got = 0;
        return new Promise((resolve) => {
            channel.onmessage = (ev) => {
                got += ev.data.byteLength;
                if (got < 1024 * 1024) return;
                channel.onmessage = null;
                resolve(performance.timeOrigin + performance.now());
                setTimeout(() => location.reload(), 0);
            };
        });
    }, { url: tr.url, RTC, ida });
    const outcome = await a.evaluate(() => window.outcome.then((o) => ({ ...o, at: performance.timeOrigin + (o.at ?? 0) })));
    assert.equal(outcome.ok, false, JSON.stringify(outcome));
    assert.equal(outcome.name, 'SigtrackerError');
    assert.equal(outcome.code, 'channel_closed');
    assert.ok(outcome.sent < size, JSON.stringify(outcome));
    console.log(`# the send ended ${Math.round(outcome.at - reloadedAt)} ms after the receiver started to reload, at ${outcome.sent} of ${size} bytes`);
});
