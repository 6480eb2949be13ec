// The client library's protocol logic in Node, against a scripted WebSocket: timings and error
// paths the real server only reaches after minutes (re-announce intervals, dead sockets) or not
// on demand (announce rate limits, replies that name no infohash).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, SigtrackerClient } from '../../clients/js/sigtracker.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const H1 = '1'.repeat(40);
const H2 = '2'.repeat(40);

/**
 * A WebSocket stand-in: the test plays the server through reply() and reads sent[]. While
 * FakeSocket.refuse is above 0, each new socket uses one up and fails to open, as when no server
 * listens (a close with code 1006 and no open).
 */
class FakeSocket {
    static all = [];
    static refuse = 0;
    constructor(url) {
        this.url = url;
        this.sent = [];
        this.readyState = 0;
        this.at = Date.now();
        FakeSocket.all.push(this);
        const refused = FakeSocket.refuse > 0;
        if (refused) FakeSocket.refuse--;
        setTimeout(() => {
            if (refused) return this.close(1006);
            this.readyState = 1;
            this.onopen?.();
        }, 0);
    }
    send(data) {
        this.sent.push(JSON.parse(data));
        this.onsent?.(this.sent.at(-1));
    }
    close(code = 1000, reason = '') {
        if (this.readyState === 3) return;
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code, reason }), 0);
    }
    reply(m) {
        this.onmessage?.({ data: JSON.stringify(m) });
    }
    /** Resolves with the next sent message of that type (or an already sent one not yet taken). */
    next(type) {
        this.taken ??= new Set();
        const found = this.sent.find((m) => m.type === type && !this.taken.has(m));
        if (found) {
            this.taken.add(found);
            return Promise.resolve(found);
        }
        return new Promise((resolve) => {
            const prev = this.onsent;
            this.onsent = (m) => {
                prev?.(m);
                if (m.type === type && !this.taken.has(m)) {
                    this.taken.add(m);
                    this.onsent = prev;
                    resolve(m);
                }
            };
        });
    }
}

/** A scripted server that answers ola at once; returns the client and its first socket. */
async function open(options = {}) {
    FakeSocket.all = [];
    const p = connect('ws://fake/', { WebSocket: FakeSocket, storage: null, ...options });
    await sleep(5);
    const ws = FakeSocket.all[0];
    const ola = await ws.next('ola');
    ws.reply({ type: 'ola', ok: true, peer_id: ola.peer_id, token: 'a'.repeat(32), interval: 120 });
    return { client: await p, ws };
}

const answer = (h, extra = {}) => ({ type: 'announce', info_hash: h, interval: 1, min_interval: 0, complete: 0, incomplete: 1, peers: [], ...extra });

test('re-announces on the interval, and retries a rate-limited announce after retry_after_ms', async () => {
    const { client, ws } = await open();
    const p = client.announce(H1, { left: 5 });
    const first = await ws.next('announce');
    assert.deepEqual(first, { type: 'announce', info_hash: H1, event: 'started', left: 5 });
    ws.reply(answer(H1));
    assert.equal((await p).incomplete, 1);

    const t0 = Date.now();
    const regular = await ws.next('announce'); // interval 1 s
    assert.ok(Date.now() - t0 >= 900, `re-announced after ${Date.now() - t0} ms`);
    assert.deepEqual(regular, { type: 'announce', info_hash: H1, left: 5 });
    // Refused, without naming the infohash: the client waits as told and sends it again.
    ws.reply({ type: 'error', code: 'rate_limited', message: 'slow down', ref: 'announce', retry_after_ms: 300 });
    const t1 = Date.now();
    const again = await ws.next('announce');
    assert.ok(Date.now() - t1 >= 280, `retried after ${Date.now() - t1} ms`);
    assert.deepEqual(again, regular);
    client.close();
});

test('errors reach the request they name; others become error events', async () => {
    const { client, ws } = await open();
    const p1 = client.announce(H1);
    const p2 = client.announce(H2);
    await ws.next('announce');
    await ws.next('announce');
    const events = [];
    client.on('error', (e) => events.push(e));
    ws.reply({ type: 'error', code: 'too_many_swarms', message: 'too many', ref: 'announce', info_hash: H2 });
    ws.reply(answer(H1));
    ws.reply({ type: 'error', code: 'bad_json', message: 'not JSON' });
    assert.equal((await p1).infoHash, H1);
    await assert.rejects(p2, (e) => e.name === 'SigtrackerError' && e.code === 'too_many_swarms' && e.infoHash === H2);
    assert.equal(events.length, 1);
    assert.equal(events[0].code, 'bad_json');
    assert.ok(events[0] instanceof Error);
    client.close();
});

test('reconnects with the latest token and re-announces; "replaced" ends the client', async () => {
    const { client, ws } = await open({ reconnect: { minDelay: 20, maxDelay: 40 } });
    client.announce(H1, { left: 0 });
    await ws.next('announce');
    ws.reply(answer(H1));
    const id = client.peerId;
    ws.reply({ type: 'bye', reason: 'shutdown' });
    ws.close(1001);
    await sleep(100);
    const ws2 = FakeSocket.all[1];
    const ola = await ws2.next('ola');
    assert.deepEqual(ola, { type: 'ola', peer_id: id, token: 'a'.repeat(32) });
    ws2.reply({ type: 'ola', ok: true, peer_id: id, token: 'b'.repeat(32), interval: 120 });
    assert.deepEqual(await ws2.next('announce'), { type: 'announce', info_hash: H1, event: 'started', left: 0 });

    const closed = new Promise((r) => client.on('close', r));
    ws2.reply({ type: 'bye', reason: 'replaced' });
    ws2.close(1000);
    assert.equal((await closed).error.code, 'replaced');
    await sleep(100);
    assert.equal(FakeSocket.all.length, 2, 'no reconnection after "replaced"');
    assert.equal(client.state, 'closed');
});

test('pings while idle and replaces a socket that stops answering', async () => {
    const { client, ws } = await open({ pingInterval: 50, pingTimeout: 100, reconnect: { minDelay: 10, maxDelay: 20 } });
    await ws.next('ping');
    ws.reply({ type: 'pong' });
    await ws.next('ping'); // no pong this time: the socket is dropped and a new one opened
    await sleep(250);
    assert.equal(FakeSocket.all.length, 2);
    assert.equal(ws.readyState, 3);
    assert.equal((await FakeSocket.all[1].next('ola')).peer_id, client.peerId);
    client.close();
});

test('a first connection whose ID is taken rejects with peer_id_taken', async () => {
    FakeSocket.all = [];
    const p = connect('ws://fake/', { WebSocket: FakeSocket, storage: null, peerId: 'alice' });
    await sleep(5);
    const ws = FakeSocket.all[0];
    await ws.next('ola');
    ws.reply({ type: 'ola', ok: false, peer_id: 'alice', error: 'peer_id_taken' });
    await assert.rejects(p, (e) => e.code === 'peer_id_taken' && e instanceof Error);
    assert.equal(ws.readyState, 3);
});

test('a first connection that fails is final, unless retryFirst retries it with the reconnect backoff', async () => {
    FakeSocket.all = [];
    FakeSocket.refuse = 1;
    await assert.rejects(connect('ws://fake/', { WebSocket: FakeSocket, storage: null }), (e) => e.code === 'connect_failed');
    await sleep(100);
    assert.equal(FakeSocket.all.length, 1, 'no retry without retryFirst');

    // Three refusals, then a server: the client keeps trying, reports each retry, and connects.
    FakeSocket.all = [];
    FakeSocket.refuse = 3;
    const client = new SigtrackerClient('ws://fake/', {
        WebSocket: FakeSocket, storage: null, retryFirst: true, reconnect: { minDelay: 40, maxDelay: 100, factor: 2 },
    });
    const retries = [];
    client.on('reconnecting', (d) => retries.push({ ...d, state: client.state }));
    const announced = client.announce(H1, { left: 1 }); // taken while offline, sent once identified
    const ws = await new Promise((resolve) => {
        const poll = () => (FakeSocket.all.length === 4 ? resolve(FakeSocket.all[3]) : setTimeout(poll, 5));
        poll();
    });
    const ola = await ws.next('ola');
    ws.reply({ type: 'ola', ok: true, peer_id: ola.peer_id, token: 'a'.repeat(32), interval: 120 });
    assert.equal(await client.ready, client);
    assert.equal(client.state, 'open');
    assert.deepEqual(retries.map((r) => [r.attempt, r.state]), [[1, 'connecting'], [2, 'connecting'], [3, 'connecting']]);
    // Each delay is 50-100 % of min(maxDelay, minDelay * factor^n), and the sockets kept to it.
    retries.forEach((r, n) => {
        const cap = Math.min(100, 40 * 2 ** n);
        assert.ok(r.delay >= cap / 2 && r.delay <= cap, `retry ${n + 1} after ${r.delay} ms`);
        const gap = FakeSocket.all[n + 1].at - FakeSocket.all[n].at;
        assert.ok(gap >= r.delay - 5, `socket ${n + 2} opened ${gap} ms after the previous, delay ${r.delay}`);
    });
    assert.deepEqual(await ws.next('announce'), { type: 'announce', info_hash: H1, event: 'started', left: 1 });
    ws.reply(answer(H1));
    assert.equal((await announced).infoHash, H1);
    client.close();
});

test('retryFirst: close() while waiting ends the retries; an explicit ID that is taken is still final', async () => {
    FakeSocket.all = [];
    FakeSocket.refuse = 1;
    const waiting = new SigtrackerClient('ws://fake/', { WebSocket: FakeSocket, storage: null, retryFirst: true, reconnect: { minDelay: 50, maxDelay: 50 } });
    await new Promise((resolve) => waiting.on('reconnecting', resolve));
    waiting.close();
    await assert.rejects(waiting.ready, (e) => e.code === 'closed');
    await sleep(150);
    assert.equal(FakeSocket.all.length, 1, 'no socket after close()');

    FakeSocket.all = [];
    const p = connect('ws://fake/', { WebSocket: FakeSocket, storage: null, retryFirst: true, peerId: 'alice' });
    await sleep(5);
    const ws = FakeSocket.all[0];
    await ws.next('ola');
    ws.reply({ type: 'ola', ok: false, peer_id: 'alice', error: 'peer_id_taken' });
    await assert.rejects(p, (e) => e.code === 'peer_id_taken');
    await sleep(100);
    assert.equal(FakeSocket.all.length, 1);
});
