// The library's standalone helpers in Node. sendWithBackpressure against a scripted data channel:
// the waits a real channel only reaches by chance (a peer connection closed while the sender waits
// for its buffer to drain, with or without a close event) on demand; client.test.js sends over real
// channels in Chromium. sha1Hex without crypto.subtle (pages that are not a secure context), against
// Node's SHA-1; demo.test.js runs it in such a page.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { sendWithBackpressure, sha1Hex } from '../../clients/js/sigtracker.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const KiB = 1024;

/**
 * An RTCDataChannel stand-in: send() queues into bufferedAmount and keeps a copy of every message;
 * drain(n) plays the network taking n bytes (firing bufferedamountlow as a browser does);
 * close(withEvent) closes it as the other side would, or silently as RTCPeerConnection.close() does.
 */
class FakeChannel extends EventTarget {
    readyState = 'open';
    bufferedAmount = 0;
    bufferedAmountLowThreshold = 0;
    messages = [];
    send(data) {
        if (this.readyState !== 'open') throw new Error(`InvalidStateError: the channel is ${this.readyState}`);
        this.messages.push(Uint8Array.from(data));
        this.bufferedAmount += data.byteLength;
    }
    drain(n) {
        const before = this.bufferedAmount;
        this.bufferedAmount = Math.max(0, before - n);
        if (before > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold)
            this.dispatchEvent(new Event('bufferedamountlow'));
    }
    close(withEvent) {
        this.readyState = 'closed';
        if (withEvent) this.dispatchEvent(new Event('close'));
    }
}

function pattern(n) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 10)) & 255;
    return b;
}

const OPTS = { chunkSize: 10 * KiB, highWater: 30 * KiB, lowWater: 10 * KiB };

test('sends every byte in order, stops above highWater and resumes once drained to lowWater', async () => {
    for (const make of [(b) => b, (b) => b.buffer, (b) => new Blob([b])]) {
        const data = pattern(100 * KiB + 123);
        const ch = new FakeChannel();
        const progress = [];
        const sending = sendWithBackpressure(ch, make(data), { ...OPTS, onProgress: (sent, total) => progress.push([sent, total]) });
        await sleep(20);
        // 0, 10, 20 and 30 KiB buffered are not above highWater: four messages, then a wait.
        assert.equal(ch.messages.length, 4);
        assert.equal(ch.bufferedAmountLowThreshold, OPTS.lowWater);
        ch.drain(10 * KiB); // 30 KiB left: still above lowWater
        await sleep(20);
        assert.equal(ch.messages.length, 4);
        while (ch.messages.length < 11) {
            ch.drain(ch.bufferedAmount);
            await sleep(20);
        }
        assert.equal(await sending, data.length);
        assert.deepEqual(Buffer.concat(ch.messages), Buffer.from(data));
        assert.ok(ch.messages.slice(0, -1).every((m) => m.length === OPTS.chunkSize));
        assert.deepEqual(progress.at(-1), [data.length, data.length]);
        assert.equal(progress.length, 11);
    }
});

test('a channel that closes while the sender waits rejects at once with channel_closed', async () => {
    const ch = new FakeChannel();
    const sending = sendWithBackpressure(ch, pattern(100 * KiB), OPTS);
    await sleep(20);
    const t0 = Date.now();
    ch.close(true);
    await assert.rejects(sending, (e) => e.name === 'SigtrackerError' && e.code === 'channel_closed' && /40960 of 102400/.test(e.message));
    assert.ok(Date.now() - t0 < 100, `rejected after ${Date.now() - t0} ms`);
});

test('a channel closed without a close event (its peer connection closed) still ends the wait', async () => {
    const ch = new FakeChannel();
    const sending = sendWithBackpressure(ch, pattern(100 * KiB), OPTS);
    await sleep(20);
    ch.close(false);
    const outcome = await Promise.race([sending.then(() => 'resolved', (e) => e.code), sleep(3000).then(() => 'still waiting')]);
    assert.equal(outcome, 'channel_closed');
});

test('an abort signal ends the send; a channel that is not open sends nothing', async () => {
    const ch = new FakeChannel();
    const abort = new AbortController();
    const sending = sendWithBackpressure(ch, pattern(100 * KiB), { ...OPTS, signal: abort.signal });
    await sleep(20);
    abort.abort();
    await assert.rejects(sending, (e) => e.code === 'aborted');
    assert.equal(ch.messages.length, 4);

    const closed = new FakeChannel();
    closed.readyState = 'closing';
    await assert.rejects(sendWithBackpressure(closed, pattern(KiB)), (e) => e.code === 'channel_closed');
    assert.equal(closed.messages.length, 0);
    await assert.rejects(sendWithBackpressure(new FakeChannel(), 'text'), (e) => e.code === 'invalid_field');
});

test('sha1Hex computes SHA-1 in JavaScript where crypto.subtle is missing', async () => {
    const inputs = [new Uint8Array(0), 'abc', pattern(55), pattern(56), pattern(63), pattern(64), pattern(119), pattern(120), pattern(3 * 1024 * 1024 + 7)];
    const views = [pattern(1000).subarray(3, 900), new Blob([pattern(70000)])];
    const expected = await Promise.all([...inputs, ...views].map(async (d) => {
        const bytes = d instanceof Blob ? new Uint8Array(await d.arrayBuffer()) : d;
        return createHash('sha1').update(bytes).digest('hex');
    }));
    const real = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
    Object.defineProperty(globalThis, 'crypto', { value: { getRandomValues: (a) => real.get().getRandomValues(a) }, configurable: true });
    let got;
    try {
        assert.equal(globalThis.crypto.subtle, undefined);
        got = await Promise.all([...inputs, ...views].map((d) => sha1Hex(d)));
    } finally {
        Object.defineProperty(globalThis, 'crypto', real);
    }
    assert.deepEqual(got, expected);
    assert.equal(got[1], 'a9993e364706816aba3e25717850c26c9cd0d89d'); // FIPS 180 example "abc"
});
