import { Readable } from 'node:stream';
import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import type { HeaderRecord, RequestBody, StreamBody } from '../../lib/pipeline/types.ts';
import { toRequestBody } from '../../lib/transport/request-body.ts';
import { readAll } from './suite.ts';

function expectBodyError(fn: () => unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a MeshError').to.be.instanceOf(MeshError);
  expect((thrown as MeshError).code).to.equal(ErrorCode.Body);
  expect((thrown as MeshError).message).to.match(message);
}

function asStream(body: RequestBody | null): StreamBody {
  expect(body).to.be.an('object').that.has.property('open');
  return body as StreamBody;
}

describe('toRequestBody', function () {
  it('is null for null and undefined, and sets no header', function () {
    const headers: HeaderRecord = {};
    expect(toRequestBody(null, headers)).to.equal(null);
    expect(toRequestBody(undefined, headers)).to.equal(null);
    expect(headers).to.deep.equal({});
  });

  it('keeps a string, typed text/plain;charset=UTF-8 with its UTF-8 byte length', function () {
    const headers: HeaderRecord = {};
    expect(toRequestBody('héllo ✓', headers)).to.equal('héllo ✓');
    expect(headers).to.deep.equal({ 'content-type': 'text/plain;charset=UTF-8', 'content-length': '10' });
  });

  it('never overrides a content-type or content-length the caller set (in any letter case)', function () {
    const headers: HeaderRecord = { 'content-type': 'application/json' };
    toRequestBody('{}', headers);
    expect(headers).to.deep.equal({ 'content-type': 'application/json', 'content-length': '2' });
    const mixed: HeaderRecord = { 'Content-Type': 'text/csv', 'Content-Length': '3' };
    toRequestBody('a,b', mixed);
    expect(mixed).to.deep.equal({ 'Content-Type': 'text/csv', 'Content-Length': '3' });
    const chunked: HeaderRecord = { 'transfer-encoding': 'chunked' };
    toRequestBody('abc', chunked);
    expect(chunked).to.not.have.property('content-length');
  });

  it('sends a Buffer or Uint8Array as it is, with a length and no type', function () {
    const buffer = Buffer.from('bytes');
    const headers: HeaderRecord = {};
    expect(toRequestBody(buffer, headers)).to.equal(buffer);
    expect(headers).to.deep.equal({ 'content-length': '5' });
    const array = new Uint8Array([1, 2, 3]);
    const h2: HeaderRecord = {};
    expect(toRequestBody(array, h2)).to.equal(array);
    expect(h2).to.deep.equal({ 'content-length': '3' });
  });

  it('copies an ArrayBuffer or another ArrayBufferView (only the viewed bytes) into a Uint8Array', function () {
    const source = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const headers: HeaderRecord = {};
    const fromBuffer = toRequestBody(source.buffer, headers) as Uint8Array;
    expect(fromBuffer).to.be.instanceOf(Uint8Array);
    expect([...fromBuffer]).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(headers['content-length']).to.equal('8');
    source[0] = 99; // a copy: later changes are not sent
    expect(fromBuffer[0]).to.equal(0);

    const view = new DataView(source.buffer, 2, 4);
    const h2: HeaderRecord = {};
    expect([...(toRequestBody(view, h2) as Uint8Array)]).to.deep.equal([2, 3, 4, 5]);
    expect(h2).to.deep.equal({ 'content-length': '4' });

    const words = new Uint16Array([0x0102, 0x0304]).subarray(1);
    const h3: HeaderRecord = {};
    expect((toRequestBody(words, h3) as Uint8Array).byteLength).to.equal(2);
    expect(h3['content-length']).to.equal('2');
  });

  it('serializes URLSearchParams as application/x-www-form-urlencoded;charset=UTF-8', function () {
    const headers: HeaderRecord = {};
    expect(toRequestBody(new URLSearchParams([['a', '1 2'], ['b', 'ä']]), headers)).to.equal('a=1+2&b=%C3%A4');
    expect(headers).to.deep.equal({
      'content-type': 'application/x-www-form-urlencoded;charset=UTF-8',
      'content-length': '14',
    });
  });

  it('makes a Blob a replayable stream with its type and size', async function () {
    const headers: HeaderRecord = {};
    const body = asStream(toRequestBody(new Blob(['abc', new Uint8Array([0xff])], { type: 'image/x-test' }), headers));
    expect(body.replayable).to.equal(true);
    expect(body.length).to.equal(4);
    expect(headers).to.deep.equal({ 'content-type': 'image/x-test', 'content-length': '4' });
    const first = await readAll(body.open());
    const second = await readAll(body.open());
    expect([...first]).to.deep.equal([0x61, 0x62, 0x63, 0xff]);
    expect(second.equals(first)).to.equal(true);
  });

  it('sets no content-type for an untyped Blob', function () {
    const headers: HeaderRecord = {};
    toRequestBody(new Blob(['x']), headers);
    expect(headers).to.deep.equal({ 'content-length': '1' });
  });

  it('encodes FormData as multipart with a boundary that matches every replay, and the exact length', async function () {
    const form = new FormData();
    form.append('field', 'value\nwith "quotes"');
    form.append('file', new File(['file content'], 'a "b".txt', { type: 'text/plain' }));
    form.append('blob', new Blob([new Uint8Array([1, 2, 3])]));
    const headers: HeaderRecord = {};
    const body = asStream(toRequestBody(form, headers));
    expect(body.replayable).to.equal(true);
    const type = headers['content-type'] as string;
    const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(type)?.[1];
    expect(boundary).to.be.a('string');
    const first = await readAll(body.open());
    const second = await readAll(body.open());
    expect(second.equals(first)).to.equal(true);
    expect(body.length).to.equal(first.length);
    expect(headers['content-length']).to.equal(String(first.length));
    const text = first.toString('latin1');
    expect(text.startsWith(`--${boundary}\r\n`)).to.equal(true);
    expect(text.endsWith(`--${boundary}--\r\n`)).to.equal(true);
    expect(text).to.include('Content-Disposition: form-data; name="file"; filename="a %22b%22.txt"\r\nContent-Type: text/plain\r\n\r\nfile content\r\n');
    expect(text).to.include('name="blob"; filename="blob"\r\nContent-Type: application/octet-stream\r\n\r\n\x01\x02\x03\r\n');
    // What a server's parser (here undici's) reads back.
    const parsed = await new Response(new Uint8Array(first), { headers: { 'content-type': type } }).formData();
    expect(parsed.get('field')).to.equal('value\r\nwith "quotes"');
    expect(await (parsed.get('file') as File).text()).to.equal('file content');
    expect((parsed.get('file') as File).name).to.equal('a "b".txt');
  });

  it('reads the FormData entries when called: later changes are not sent', async function () {
    const form = new FormData();
    form.append('a', '1');
    const body = asStream(toRequestBody(form, {}));
    form.append('b', '2');
    expect((await readAll(body.open())).toString()).to.not.include('name="b"');
  });

  it('makes a Node Readable a one-shot body that throws MESHFETCH_BODY when opened again', async function () {
    const stream = Readable.from([Buffer.from('once')]);
    const headers: HeaderRecord = {};
    const body = asStream(toRequestBody(stream, headers));
    expect(body.replayable).to.equal(false);
    expect(body.length).to.equal(undefined);
    expect(headers).to.deep.equal({});
    expect(body.open()).to.equal(stream);
    expectBodyError(() => body.open(), /already sent/);
    expect((await readAll(stream)).toString()).to.equal('once');
  });

  it('makes a web ReadableStream a one-shot body', async function () {
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('web '));
        controller.enqueue(new TextEncoder().encode('stream'));
        controller.close();
      },
    });
    const headers: HeaderRecord = {};
    const body = asStream(toRequestBody(web, headers));
    expect(body.replayable).to.equal(false);
    expect(headers).to.deep.equal({});
    expect((await readAll(body.open())).toString()).to.equal('web stream');
    expectBodyError(() => body.open(), /ReadableStream.*already sent/);
  });

  it('makes an async iterable of bytes or strings a one-shot body', async function () {
    const body = asStream(
      toRequestBody(
        (async function* () {
          yield new Uint8Array([0x61]);
          yield 'b';
          yield Buffer.from('c');
        })(),
        {},
      ),
    );
    expect(body.replayable).to.equal(false);
    expect((await readAll(body.open())).toString()).to.equal('abc');
    expectBodyError(() => body.open(), /already sent/);
  });

  it('fails the stream with MESHFETCH_BODY when an async iterable yields something that is not bytes', async function () {
    const body = asStream(
      toRequestBody(
        (async function* () {
          yield 'ok';
          yield { not: 'bytes' };
        })(),
        {},
      ),
    );
    let failure: unknown;
    try {
      await readAll(body.open());
    } catch (err) {
      failure = err;
    }
    expect(failure).to.be.instanceOf(MeshError);
    expect((failure as MeshError).code).to.equal(ErrorCode.Body);
    expect((failure as MeshError).message).to.match(/Object/);
  });

  it('refuses streams that cannot be read: locked, ended or destroyed', function () {
    const web = new ReadableStream();
    web.getReader();
    expectBodyError(() => toRequestBody(web, {}), /locked/);
    const destroyed = new Readable({ read() {} });
    destroyed.destroy();
    expectBodyError(() => toRequestBody(destroyed, {}), /ended or been destroyed/);
  });

  it('throws MESHFETCH_BODY naming the type of an unsupported value', function () {
    expectBodyError(() => toRequestBody(42, {}), /cannot send a request body of type number/);
    expectBodyError(() => toRequestBody(true, {}), /cannot send a request body of type boolean/);
    expectBodyError(() => toRequestBody({ a: 1 }, {}), /cannot send a request body of type Object/);
    expectBodyError(() => toRequestBody(new Map(), {}), /cannot send a request body of type Map/);
    expectBodyError(() => toRequestBody(Object.create(null), {}), /cannot send a request body of type Object/);
    expectBodyError(() => toRequestBody(Symbol('s'), {}), /cannot send a request body of type symbol/);
  });
});
