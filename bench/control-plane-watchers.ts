/**
 * A child process holding many idle watch streams over raw sockets (one socket, one small buffer
 * each: far cheaper than a client library, so one process holds thousands). Driven over IPC:
 *   { connect: { port, path, count, lastEventId } } → { connected }
 *   { expect: revision }  → { arrivals: number[] } once every stream has seen `id: <revision>`
 *   { expect, marker }    → the same, for a stream that has seen `marker` (a revision named only once published)
 *                           (times are performance.timeOrigin + performance.now(), in ms)
 *   { close: true }       → destroys every socket and exits
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

interface Stream {
  socket: Socket;
  /** The tail of what arrived, so a marker split across two reads is still found. */
  tail: string;
  seen: boolean;
}

const streams: Stream[] = [];
let expected: { marker: string; arrivals: number[] } | undefined;

const now = (): number => performance.timeOrigin + performance.now();

function open(port: number, path: string, lastEventId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const stream: Stream = { socket, tail: '', seen: false };
    socket.setEncoding('latin1');
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nLast-Event-ID: ${lastEventId}\r\n\r\n`);
    });
    let headers = false;
    socket.on('data', (chunk: string) => {
      if (!headers && chunk.includes('\r\n\r\n')) {
        headers = true;
        resolve();
      }
      const text = stream.tail + chunk;
      stream.tail = text.slice(-64);
      if (expected && !stream.seen && text.includes(expected.marker)) {
        stream.seen = true;
        expected.arrivals.push(now());
        if (expected.arrivals.length === streams.length) process.send!({ arrivals: expected.arrivals });
      }
    });
    streams.push(stream);
  });
}

process.on('message', async (message: { connect?: { port: number; path: string; count: number; lastEventId: string }; expect?: string; marker?: string; close?: boolean }) => {
  if (message.connect) {
    const { port, path, count, lastEventId } = message.connect;
    for (let i = 0; i < count; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => open(port, path, lastEventId)));
    }
    process.send!({ connected: streams.length });
  } else if (message.expect !== undefined) {
    for (const stream of streams) stream.seen = false;
    expected = { marker: message.marker ?? `id: ${message.expect}\n`, arrivals: [] };
    process.send!({ armed: true });
  } else if (message.close) {
    for (const stream of streams) stream.socket.destroy();
    process.disconnect();
  }
});
process.on('disconnect', () => {
  for (const stream of streams) stream.socket.destroy();
});
