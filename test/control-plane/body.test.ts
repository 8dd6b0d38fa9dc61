import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import FakeTimers from '@sinonjs/fake-timers';
import { readLines } from '../../lib/control-plane/body.ts';
import type { Refusal } from '../../lib/control-plane/http.ts';

const LIMIT = 16;

/** Feeds `chunks` to readLines as a body cut exactly there (a request's body is a stream of such chunks); the lines taken, or the refusal. */
async function linesOf(chunks: readonly (string | Buffer)[]): Promise<{ lines: string[]; refused?: string }> {
  const lines: string[] = [];
  const body = new Readable({ read() {} });
  const reading = readLines(body as unknown as IncomingMessage, { limit: LIMIT, idleMs: 60_000, noun: 'report' }, (line) => lines.push(line));
  for (const chunk of chunks) body.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  body.push(null);
  try {
    expect(await reading).to.equal(lines.length);
    return { lines };
  } catch (err) {
    return { lines, refused: `${(err as Refusal).status} ${(err as Refusal).message}` };
  }
}

describe('readLines (NDJSON framing, chunk by chunk)', () => {
  const x = (n: number): string => 'x'.repeat(n);
  const euro = Buffer.from('"€"\n'); // "€" is three bytes in UTF-8

  const cases: [string, (string | Buffer)[], { lines: string[]; refused?: string }][] = [
    ['"\\n" as the last byte of a chunk', ['"a"\n', '"b"\n'], { lines: ['"a"', '"b"'] }],
    ['"\\n" as the first byte of a chunk', ['"a"', '\n"b"'], { lines: ['"a"', '"b"'] }],
    ['a line over three chunks', ['"a', 'bc', 'd"\n'], { lines: ['"abcd"'] }],
    ['"\\r\\n", and "\\r" and "\\n" in different chunks', ['"a"\r\n"b"\r', '\n'], { lines: ['"a"', '"b"'] }],
    ['a character of three bytes split across chunks', [euro.subarray(0, 2), euro.subarray(2, 3), euro.subarray(3)], { lines: ['"€"'] }],
    ['empty lines, with "\\n" or "\\r\\n", skipped and not counted', ['\n\r\n"a"\n\n', '\r\n"b"'], { lines: ['"a"', '"b"'] }],
    ['a line of exactly the limit', [`${x(LIMIT)}\n`], { lines: [x(LIMIT)] }],
    ['a line of exactly the limit, ending "\\r\\n"', [`${x(LIMIT)}\r\n`], { lines: [x(LIMIT)] }],
    ['a line of exactly the limit, its "\\r" and "\\n" in different chunks', [x(LIMIT - 4), `${x(4)}\r`, '\n'], { lines: [x(LIMIT)] }],
    ['a last line of exactly the limit without "\\n"', [x(10), x(LIMIT - 10)], { lines: [x(LIMIT)] }],
    ['a line one byte past the limit', ['"a"\n', `${x(LIMIT + 1)}\n`], { lines: ['"a"'], refused: `413 report 2 on this stream: larger than ${LIMIT} bytes` }],
    ['a line one byte past the limit, ending "\\r\\n"', [`${x(LIMIT + 1)}\r\n`], { lines: [], refused: `413 report 1 on this stream: larger than ${LIMIT} bytes` }],
    ['a line past the limit in a chunk of its own, before its end', [x(LIMIT), 'x'], { lines: [], refused: `413 report 1 on this stream: larger than ${LIMIT} bytes` }],
    ['the limit and a "\\r" not followed by "\\n"', [`${x(LIMIT)}\r`, 'x'], { lines: [], refused: `413 report 1 on this stream: larger than ${LIMIT} bytes` }],
  ];
  for (const [name, chunks, expected] of cases) {
    it(name, async () => {
      expect(await linesOf(chunks)).to.deep.equal(expected);
    });
  }
});

describe('readLines: the silence limit (fake timers)', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => clock.uninstall());
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('counts from the last whole line, not the last byte: a line dribbled a byte at a time holds a stream no longer than silence', async () => {
    const lines: string[] = [];
    const body = new Readable({ read() {} });
    let outcome: string | undefined;
    void readLines(body as unknown as IncomingMessage, { limit: LIMIT, idleMs: 120_000, noun: 'report' }, (line) => lines.push(line)).then(
      (count) => (outcome = `ended after ${count}`),
      (err: Refusal) => (outcome = `${err.status} ${err.message}`),
    );
    body.push('"a"\n');
    await turn();
    // Three bytes of the next line, 100 s apart: none of them ends a line.
    for (let i = 0; i < 3; i++) {
      clock.tick(100_000);
      body.push('x');
      await turn();
      if (outcome !== undefined) break;
    }
    expect([lines, outcome]).to.deep.equal([['"a"'], '408 report stream: no report for 120 s']);
  });

  it('a stream whose lines keep coming is never cut', async () => {
    const lines: string[] = [];
    const body = new Readable({ read() {} });
    let outcome: string | undefined;
    const reading = readLines(body as unknown as IncomingMessage, { limit: LIMIT, idleMs: 120_000, noun: 'report' }, (line) => lines.push(line)).then(
      (count) => (outcome = `ended after ${count}`),
      (err: Refusal) => (outcome = `${err.status} ${err.message}`),
    );
    for (let i = 0; i < 5; i++) {
      clock.tick(100_000);
      body.push(`"${i}"\n`);
      await turn();
    }
    expect(outcome).to.equal(undefined);
    body.push(null);
    await reading;
    expect([lines.length, outcome]).to.deep.equal([5, 'ended after 5']);
  });
});
