// The browser client library (clients/js) against a CLUSTER: a private redis-server (unix socket in
// a tmpdir, no persistence) and two sigtracker nodes in cluster mode, started with the cluster
// tier's helpers (tests/cluster/cluster-helpers.mjs), inside the network namespace of
// scripts/run-clientjs.sh like everything else of this tier. Pages on different nodes must not
// notice that they are on different nodes:
//
// - two pages, one per node, find each other through an announce, open a data channel through the
//   library's helper (offer, answer and candidates relayed across the nodes) and move 1 MiB;
// - a page behind a load balancer reloads and lands on the other node: it takes its peer ID back
//   with its stored token, and the old connection (on the first node, whose network path died
//   without a close) gets {"type":"bye","reason":"replaced"};
// - with both tabs alive, the old tab's client reports the `bye` and closes for good (no fight
//   over the ID across the nodes).
//
// Propagation between nodes is asynchronous: the tests wait for conditions (scrapes, frames),
// never for fixed times.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { connect as wsConnect, randomPeerId, startCluster, waitFor } from '../cluster/cluster-helpers.mjs';
import { launchBrowser, openPage, startStatic } from './harness.js';

const RTC = { rtcConfig: { iceServers: [] } };
const MiB = 1024 * 1024;
const PROPAGATION_MS = 3000; // how long one node's change may take to show on the other

let browser, web, cl;
const cleanups = [];

before(async () => {
    [browser, web, cl] = await Promise.all([
        launchBrowser(),
        startStatic(),
        startCluster({ nodes: 2, nodeTimeout: 15 }),
    ]);
    await cl.ready(2); // both nodes joined: Redis up, each sees the other
});

after(async () => {
    for (const f of cleanups.reverse()) await f().catch(() => {});
    await browser?.close();
    await web?.close();
    await cl?.teardown(); // stops the nodes (asserting a clean exit) and Redis
});

/** A fresh browser context (own sessionStorage), closed after the suite. */
async function context() {
    const c = await browser.newContext();
    cleanups.push(() => c.close());
    return c;
}

/** The cluster counters of node i's /stats.json. */
async function clusterStats(i) {
    const res = await fetch(`${cl.nodes[i].httpBase}/stats.json`);
    return (await res.json()).cluster;
}

/** An ST ola sent by a plain ws client straight to node i; resolves with the answer. */
async function olaOn(i, peerId, token) {
    const c = await wsConnect(cl.nodes[i], { name: `probe@node${i}` });
    try {
        const msg = { type: 'ola', peer_id: peerId };
        if (token) msg.token = token;
        return await c.request(msg, { type: 'ola' });
    } finally {
        await c.close();
    }
}

/**
 * A TCP load balancer on 127.0.0.1: its n-th connection goes to ports[n] (further ones are
 * refused). freeze(n) stops forwarding in both directions on connection n and keeps its upstream
 * connection open, as when the network path of a client dies and the server is not told; what the
 * server sends is still recorded. frames(n) parses what the server sent on connection n (after the
 * HTTP 101 head) into WebSocket frames { opcode, text, code }.
 */
function startBalancer(ports) {
    const conns = [];
    const sockets = new Set();
    const server = net.createServer((down) => {
        const c = { port: ports[conns.length], frozen: false, fromServer: Buffer.alloc(0), upClosed: false };
        conns.push(c);
        sockets.add(down);
        down.on('error', () => {});
        if (c.port === undefined) return down.destroy();
        const up = net.connect(c.port, '127.0.0.1');
        sockets.add(up);
        up.on('error', () => {});
        down.on('data', (d) => c.frozen || up.write(d));
        up.on('data', (d) => {
            c.fromServer = Buffer.concat([c.fromServer, d]);
            if (!c.frozen) down.write(d);
        });
        down.on('close', () => c.frozen || up.end());
        up.on('close', () => {
            c.upClosed = true;
            if (!c.frozen) down.end();
        });
    });
    return new Promise((resolve) => {
        server.listen(0, '127.0.0.1', () => {
            resolve({
                port: server.address().port,
                conns,
                freeze: (n) => {
                    conns[n].frozen = true;
                },
                frames: (n) => parseServerFrames(conns[n].fromServer),
                close: () => {
                    for (const s of sockets) s.destroy();
                    return new Promise((r) => server.close(r));
                },
            });
        });
    });
}

/** Unmasked server-to-client WebSocket frames after the HTTP head (complete frames only). */
function parseServerFrames(buf) {
    const head = buf.indexOf('\r\n\r\n');
    if (head < 0) return [];
    const frames = [];
    let off = head + 4;
    while (off + 2 <= buf.length) {
        const opcode = buf[off] & 0x0f;
        let len = buf[off + 1] & 0x7f;
        let p = off + 2;
        if (len === 126) {
            if (p + 2 > buf.length) break;
            len = buf.readUInt16BE(p);
            p += 2;
        } else if (len === 127) {
            if (p + 8 > buf.length) break;
            len = Number(buf.readBigUInt64BE(p));
            p += 8;
        }
        if (p + len > buf.length) break;
        const payload = buf.subarray(p, p + len);
        const f = { opcode };
        if (opcode === 1) f.text = payload.toString('utf8');
        if (opcode === 8 && len >= 2) f.code = payload.readUInt16BE(0);
        frames.push(f);
        off = p + len;
    }
    return frames;
}

const infoHash = (n) => n.toString(16).padStart(40, '0');

test('cluster: pages on two nodes find each other through an announce and exchange 1 MiB over the data channel', async () => {
    const [url0, url1] = cl.nodes.map((n) => n.url);
    const ctx = await context();
    const [a, b] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    const h = infoHash(0xc1a5);
    const before = await Promise.all([clusterStats(0), clusterStats(1)]);

    // A, on node 0, generates the file and seeds it: every connection that opens gets the file.
    const seeder = await a.evaluate(async ({ url, h, size, RTC }) => {
        const file = t.randomBytes(size);
        window.client = await st.connect(url, RTC);
        client.on('connection', ({ channel }) => st.sendWithBackpressure(channel, file));
        const res = await client.announce(h, { left: 0, uploaded: 0, downloaded: size });
        return { peerId: client.peerId, sha256: await t.sha256Hex(file), res };
    }, { url: url0, h, size: MiB, RTC });
    assert.equal(seeder.res.complete, 1);
    assert.deepEqual(seeder.res.peers, []);

    // B, on node 1, waits until its node counts A (a scrape), then announces: the answer names A,
    // and B connects to A through the helper and downloads.
    const leecher = await b.evaluate(async ({ url, h, size, RTC, wait }) => {
        window.client = await st.connect(url, RTC);
        const w0 = performance.now();
        await t.untilAsync(async () => (await client.scrape([h]))[h].complete === 1, wait, 'node 1 to count the seeder');
        const waited = performance.now() - w0;
        const res = await client.announce(h, { left: size, uploaded: 0, downloaded: 0 });
        const seeder = res.peers.find((p) => p.complete);
        if (!seeder) return { res, waited };
        const t0 = performance.now();
        const channel = await client.connectPeer(seeder.peerId, { infoHash: h });
        const bytes = await t.receiveBytes(channel, size);
        const ms = performance.now() - t0;
        const done = await client.complete(h, { downloaded: size });
        return { peerId: client.peerId, res, sha256: await t.sha256Hex(bytes), ms, done, waited };
    }, { url: url1, h, size: MiB, RTC, wait: PROPAGATION_MS });

    assert.ok(leecher.res.peers.some((p) => p.peerId === seeder.peerId && p.complete),
        `node 1's announce answer should name the seeder on node 0: ${JSON.stringify(leecher.res)}`);
    assert.equal(leecher.res.complete, 1);
    assert.equal(leecher.res.incomplete, 1);
    assert.equal(leecher.sha256, seeder.sha256);
    assert.equal(leecher.done.complete, 2);
    assert.equal(leecher.done.incomplete, 0);

    // The completion made on node 1 is counted once and read the same on node 0.
    const files = await a.evaluate(({ h, wait }) => t.untilAsync(async () => {
        const f = await client.scrape([h]);
        return f[h].complete === 2 && f[h].incomplete === 0 && f[h].downloaded === 1 && f;
    }, wait, 'node 0 to read complete 2, incomplete 0, downloaded 1').catch((e) => client.scrape([h]).then((f) => ({ error: e.message, f }))), { h, wait: PROPAGATION_MS });
    assert.deepEqual(files[h], { complete: 2, incomplete: 0, downloaded: 1 }, JSON.stringify(files));

    // The signals crossed the cluster: each node delivered frames to the other and got some.
    const now = await Promise.all([clusterStats(0), clusterStats(1)]);
    for (const i of [0, 1]) {
        assert.ok(now[i].remote_out > before[i].remote_out && now[i].remote_in > before[i].remote_in,
            `node ${i}: remote_in/remote_out should have grown: before ${JSON.stringify(before[i])}, after ${JSON.stringify(now[i])}`);
    }
    console.log(`# node 1 counted the seeder after ${Math.round(leecher.waited)} ms; 1 MiB across the nodes in ${Math.round(leecher.ms)} ms (connect + transfer)`);
});

test('cluster: a reload that lands on the other node takes its peer ID back with its token; the old connection gets bye replaced', async () => {
    const [n0, n1] = cl.nodes;
    const lb = await startBalancer([n0.port, n1.port]);
    cleanups.push(() => lb.close());
    const url = `ws://127.0.0.1:${lb.port}/`;
    const ctx = await context();
    const p = await openPage(ctx, web.origin);

    // First load: through the balancer to node 0.
    const first = await p.evaluate(async (url) => {
        window.client = await st.connect(url);
        return { peerId: client.peerId, stored: JSON.parse(sessionStorage.getItem(`sigtracker:${url}`)) };
    }, url);
    assert.equal(lb.conns.length, 1);
    assert.equal(lb.conns[0].port, n0.port);
    assert.equal(first.stored.peerId, first.peerId);
    // The ID is held cluster-wide: node 1 refuses it without the token.
    assert.deepEqual(await olaOn(1, first.peerId), { type: 'ola', ok: false, peer_id: first.peerId, error: 'peer_id_taken' });

    // The tab's network path dies without a close reaching node 0, and the user reloads: the new
    // page connects through the balancer again, which sends it to node 1.
    lb.freeze(0);
    await p.reload();
    await p.waitForFunction(() => window.st !== undefined);
    const second = await p.evaluate(async (url) => {
        const sent = [];
        class Spy extends WebSocket {
            send(data) {
                sent.push(JSON.parse(data));
                super.send(data);
            }
        }
        window.client = await st.connect(url, { WebSocket: Spy });
        return { peerId: client.peerId, ola: sent.find((m) => m.type === 'ola'), stored: JSON.parse(sessionStorage.getItem(`sigtracker:${url}`)) };
    }, url);
    assert.equal(lb.conns.length, 2);
    assert.equal(lb.conns[1].port, n1.port, 'the reloaded page should have landed on node 1');
    assert.deepEqual(second.ola, { type: 'ola', peer_id: first.peerId, token: first.stored.token }, 'the reloaded page should present its stored ID and token');
    assert.equal(second.peerId, first.peerId, 'the reloaded page should get its peer ID back on node 1');
    assert.equal(second.stored.peerId, first.peerId);
    assert.match(second.stored.token, /^[0-9a-f]{32}$/);
    assert.notEqual(second.stored.token, first.stored.token, 'the reclaim should issue a new token');

    // Node 0 tells the old connection it was replaced, and closes it (code 1000).
    const frames = await waitFor(() => {
        const f = lb.frames(0);
        return f.some((x) => x.opcode === 8) && lb.conns[0].upClosed && f;
    }, { timeoutMs: PROPAGATION_MS, what: () => `node 0 should send bye and close the old connection; got ${JSON.stringify(lb.frames(0))}, TCP closed: ${lb.conns[0].upClosed}` });
    const texts = frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.text));
    assert.deepEqual(texts.at(-1), { type: 'bye', reason: 'replaced' }, `last message on the old connection: ${JSON.stringify(frames)}`);
    assert.equal(frames.at(-1).opcode, 8, `the close frame should come last: ${JSON.stringify(frames)}`);
    assert.equal(frames.at(-1).code, 1000, `close code: ${JSON.stringify(frames)}`);

    // The ID now belongs to the connection on node 1: node 0 refuses it without a token and with
    // the old one; the page works.
    assert.deepEqual(await olaOn(0, first.peerId), { type: 'ola', ok: false, peer_id: first.peerId, error: 'peer_id_taken' });
    assert.deepEqual(await olaOn(0, first.peerId, first.stored.token), { type: 'ola', ok: false, peer_id: first.peerId, error: 'peer_id_taken' },
        'the token the reclaim replaced must no longer work');
    const still = await p.evaluate(async () => {
        const res = await client.scrape(['00000000000000000000000000000000000000bb']);
        return { state: client.state, res };
    });
    assert.equal(still.state, 'open');
    assert.deepEqual(still.res['00000000000000000000000000000000000000bb'], { complete: 0, incomplete: 0, downloaded: 0 });
});

test('cluster: a second tab that shows the token on the other node takes the ID; the first tab\'s client gets bye replaced and stops', async () => {
    const [url0, url1] = cl.nodes.map((n) => n.url);
    const ctx = await context();
    const [p, q] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    const first = await p.evaluate(async (url) => {
        window.client = await st.connect(url);
        window.events = t.record(client);
        return { peerId: client.peerId, stored: sessionStorage.getItem(`sigtracker:${url}`) };
    }, url0);

    // The other tab carries the first one's session (as a duplicated tab does) and goes to node 1.
    const second = await q.evaluate(async ({ url, stored }) => {
        sessionStorage.setItem(`sigtracker:${url}`, stored);
        window.client = await st.connect(url);
        return { peerId: client.peerId };
    }, { url: url1, stored: first.stored });
    assert.equal(second.peerId, first.peerId);

    const old = await p.evaluate(async (wait) => {
        await t.until(() => client.state === 'closed', wait);
        return { state: client.state, events: events.map(({ type, detail }) => ({ type, detail })) };
    }, PROPAGATION_MS);
    const types = old.events.map((e) => e.type);
    assert.deepEqual(old.events.find((e) => e.type === 'bye'), { type: 'bye', detail: { reason: 'replaced' } }, JSON.stringify(old.events));
    assert.ok(old.events.some((e) => e.type === 'disconnect' && e.detail.bye === 'replaced'), JSON.stringify(old.events));
    assert.ok(!types.includes('reconnecting'), `the replaced client must not reconnect: ${types.join(',')}`);
    assert.equal(types.at(-1), 'close', types.join(','));
    assert.equal(old.events.at(-1).detail.error?.code, 'replaced', JSON.stringify(old.events));

    // The second tab keeps the ID: it works, and node 0 still refuses the ID to anyone else.
    const ok = await q.evaluate(async () => {
        const res = await client.scrape(['00000000000000000000000000000000000000cc']);
        return { state: client.state, res };
    });
    assert.equal(ok.state, 'open');
    assert.deepEqual(await olaOn(0, first.peerId), { type: 'ola', ok: false, peer_id: first.peerId, error: 'peer_id_taken' });
    const probeId = randomPeerId('free');
    assert.equal((await olaOn(0, probeId)).ok, true, 'node 0 should still accept other IDs');
});

test('cluster: while a node cannot reach Redis, connect() keeps the stored ID and token and retries; it gets them once Redis is back', async () => {
    const url0 = cl.nodes[0].url;
    const ctx = await context();
    const [p, q] = await Promise.all([openPage(ctx, web.origin), openPage(ctx, web.origin)]);
    // A tab gets an ID, then goes away (its ID is released); its session is what a reload keeps.
    const first = await p.evaluate(async (url) => {
        const c = await st.connect(url);
        const r = { peerId: c.peerId, stored: sessionStorage.getItem(`sigtracker:${url}`) };
        c.close();
        return r;
    }, url0);
    // Released: another connection can claim it (and gives it back when it closes).
    await waitFor(async () => (await olaOn(1, first.peerId)).ok,
        { timeoutMs: PROPAGATION_MS, what: 'the first tab\'s ID released' });

    await cl.redis.stop();
    await waitFor(async () => (await fetch(`${cl.nodes[0].httpBase}/health`)).status === 503, { timeoutMs: 5000, what: 'node 0 reports Redis down' });
    // The reloaded tab connects while Redis is down: refused with "unavailable", retried.
    await q.evaluate(({ url, stored }) => {
        sessionStorage.setItem(`sigtracker:${url}`, stored);
        window.events = [];
        window.pending = st.connect(url, { connectTimeout: 20000 }).then(
            (c) => { window.client = c; return { peerId: c.peerId }; },
            (e) => ({ error: e.code }));
    }, { url: url0, stored: first.stored });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await cl.redis.start();
    const got = await q.evaluate(() => window.pending);
    assert.deepEqual(got, { peerId: first.peerId }, 'the stored ID comes back once Redis is back');
    await cl.ready(2);
});
