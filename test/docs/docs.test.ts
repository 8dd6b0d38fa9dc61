import { createNoopMeter, metrics } from '@opentelemetry/api';
import type { Meter, MeterProvider } from '@opentelemetry/api';
import { expect } from 'chai';
import { Command } from 'commander';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { COMMANDS } from '../../lib/cli/commands.ts';
import { createProgram } from '../../lib/cli/program.ts';
import { createMesh } from '../../lib/mesh.ts';
import { KNOWN_VARIABLES } from '../../lib/config/variables.ts';
import { ErrorCode, MeshError } from '../../lib/errors.ts';
import type { ControlPlaneOptions } from '../../lib/control-plane/server.ts';
import type { MeshSettings } from '../../lib/config/options.ts';
import type { MeshEventName } from '../../lib/events.ts';
import type { MeshOptions } from '../../lib/mesh.ts';
import { compilePolicy } from '../../lib/policy/compile.ts';
import { DEFAULT_POLICY } from '../../lib/policy/defaults.ts';
import { POLICY_DOCUMENT_SCHEMA } from '../../lib/policy/document-schema.ts';
import { normalize } from '../../lib/policy/schema.ts';
import type { Schema } from '../../lib/policy/schema.ts';
import { DEFAULT_STACK } from '../../lib/stack.ts';
import { startTestControlPlane } from '../helpers/control-plane.ts';
import { sendJson, startServer } from '../helpers/server.ts';
import { anchors, codeSpans, links, markdownPages, paragraph, readPage, ROOT, section, tableRows, withoutCodeBlocks } from '../helpers/markdown.ts';

/*
 * The docs say what the code does: each check reads the code's own list (the schema object, the
 * registered CLI commands, the variables lib/ reads, the error codes, the stack) and the page that
 * documents it, and fails naming what one has and the other lacks. docs/errors.md's table of codes
 * is checked against ErrorCode, and against errors raised by real calls, in test/errors.test.ts.
 */

type ObjectSchema = Extract<Schema, { kind: 'object' }>;

function objectSchema(schema: Schema | undefined): ObjectSchema {
  if (schema?.kind !== 'object') throw new Error(`expected an object schema, got ${schema?.kind}`);
  return schema;
}

/** The first table under `heading` of `page`, each row's first cell split into its `code` names. */
function documentedKeys(page: string, heading: string): { keys: string[]; rows: string[][] } {
  const rows = tableRows(section(readPage(page), heading));
  expect(rows.length, `${page} "${heading}" has a table`).to.be.greaterThan(0);
  return { keys: rows.flatMap(([first]) => codeSpans(first!)), rows };
}

/** Every file under lib/, as [path, text]. */
function libSources(): [string, string][] {
  const lib = fileURLToPath(new URL('lib/', ROOT));
  return (readdirSync(lib, { recursive: true }) as string[])
    .filter((file) => file.endsWith('.ts'))
    .map((file) => [`lib/${file}`, readFileSync(join(lib, file), 'utf8')]);
}

describe('docs against the code', () => {
  describe('every page is reachable', () => {
    it('README.md links every docs/*.md directly', () => {
      const targets = new Set(links(readPage('README.md')).map((target) => target.split('#')[0]));
      const pages = markdownPages().filter((page) => page !== 'README.md');
      expect(pages.length).to.be.greaterThan(5);
      expect(pages.filter((page) => !targets.has(page))).to.deep.equal([]);
    });

    it('every relative link and #anchor in README.md and docs/*.md resolves (the file exists, the heading exists)', () => {
      const broken: string[] = [];
      let checked = 0;
      for (const page of markdownPages()) {
        for (const target of links(readPage(page))) {
          if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
          checked += 1;
          const [path, anchor] = target.split('#') as [string, string | undefined];
          const file = path === '' ? page : new URL(path, new URL(page, ROOT)).pathname.slice(fileURLToPath(ROOT).length);
          if (!existsSync(new URL(file, ROOT))) broken.push(`${page}: ${target} (no file ${file})`);
          else if (anchor !== undefined && file.endsWith('.md') && !anchors(readPage(file)).has(anchor)) {
            broken.push(`${page}: ${target} (no heading #${anchor} in ${file})`);
          }
        }
      }
      expect(checked).to.be.greaterThan(50);
      expect(broken).to.deep.equal([]);
    });
  });

  describe('commands', () => {
    it('every `node bench/…` or `node examples/…` a page shows runs a file that exists, and every `npm run` a script', () => {
      const scripts = (JSON.parse(readPage('package.json')) as { scripts: Record<string, string> }).scripts;
      const missing: string[] = [];
      let files = 0;
      for (const page of markdownPages()) {
        const text = readPage(page);
        for (const [, file] of text.matchAll(/\bnode (?:--[a-z-]+ )*((?:bench|examples)\/[\w./-]+\.ts)/g)) {
          files += 1;
          if (!existsSync(new URL(file!, ROOT))) missing.push(`${page}: ${file}`);
        }
        for (const [, script] of text.matchAll(/\bnpm run ([a-z][\w:-]*)/g)) if (!(script! in scripts)) missing.push(`${page}: npm run ${script}`);
      }
      expect(files).to.be.greaterThan(10);
      expect(missing).to.deep.equal([]);
    });
  });

  describe('source files', () => {
    it('every lib/, test/, bench/ or examples/ file a page names exists, and every bare `module.ts` in docs/ is one under lib/', () => {
      const basenames = new Set(libSources().map(([path]) => path.split('/').pop()!));
      const missing: string[] = [];
      for (const page of markdownPages()) {
        const text = readPage(page);
        for (const [path] of text.matchAll(/\b(?:lib|test|bench|examples)\/[\w./-]+\.(?:ts|md|yaml|json)\b/g)) {
          if (!existsSync(new URL(path, ROOT))) missing.push(`${page}: ${path}`);
        }
        if (page === 'README.md') continue; // "save it as `app.ts`"
        for (const [, name] of text.matchAll(/`([a-z][\w-]*\.ts)`/g)) if (!basenames.has(name!)) missing.push(`${page}: ${name}`);
      }
      expect(missing).to.deep.equal([]);
    });
  });

  describe('docs/configuration.md: environment variables and options', () => {
    const errorCodes = new Set<string>(Object.values(ErrorCode));

    /** MESHFETCH_* names lib/ reads: quoted names (`pick(…, 'MESHFETCH_X', …)`, the known list) and `env.MESHFETCH_X`. */
    function variablesInLib(): Set<string> {
      const found = new Set<string>();
      for (const [, text] of libSources()) {
        for (const [, name] of text.matchAll(/(?:['"]|env\.)(MESHFETCH_[A-Z0-9_]+)\b/g)) {
          if (!errorCodes.has(name!)) found.add(name!);
        }
      }
      return found;
    }

    const variablesTable = (): { keys: string[]; rows: string[][] } => documentedKeys('docs/configuration.md', '## Environment variables');

    it('documents every MESHFETCH_* variable lib/ reads in its table, and no other', () => {
      const read = [...variablesInLib()].sort();
      expect(read.length).to.be.greaterThan(8);
      expect(variablesTable().keys.filter((key) => key.startsWith('MESHFETCH_')).sort()).to.deep.equal(read);
    });

    it('every `VARIABLE="value": message` it shows is what createMesh() throws for that value', () => {
      const page = readPage('docs/configuration.md');
      const examples = [...page.matchAll(/^(?:MeshError: )?((MESHFETCH_[A-Z_]+|OTEL_SERVICE_NAME)="([^"*]*)": [^`\n]+)/gm), ...page.matchAll(/`((MESHFETCH_[A-Z_]+)="([^"*]*)": [^`]+)`/g)];
      expect(examples.length).to.be.greaterThan(5);
      for (const [, message, variable, value] of examples) {
        expect(() => createMesh({ env: { [variable!]: value } }), message).to.throw(MeshError).with.property('message', message);
      }
    });

    it('the variables lib/ reads are the ones it does not warn about (KNOWN_VARIABLES)', () => {
      expect([...KNOWN_VARIABLES].sort()).to.deep.equal([...variablesInLib()].sort());
    });

    /** MESHFETCH_* variables only the test suite reads (MESHFETCH_UPDATE_SCREENSHOTS). */
    function variablesInTests(): string[] {
      const test = fileURLToPath(new URL('test/', ROOT));
      return (readdirSync(test, { recursive: true }) as string[])
        .filter((file) => file.endsWith('.ts'))
        .flatMap((file) => [...readFileSync(join(test, file), 'utf8').matchAll(/process\.env\.(MESHFETCH_[A-Z0-9_]+)/g)].map((m) => m[1]!));
    }

    it('every MESHFETCH_* name on any page is a variable, an error code, or a variable of the test suite', () => {
      const known = new Set([...KNOWN_VARIABLES, ...errorCodes, ...variablesInTests()]);
      const unknown: string[] = [];
      for (const page of markdownPages()) {
        for (const [name] of readPage(page).matchAll(/MESHFETCH_[A-Z0-9_]*[A-Z0-9]/g)) {
          if (!known.has(name) && !readPage(page).includes(`${name} is not a meshfetch variable`)) unknown.push(`${page}: ${name}`);
        }
      }
      expect([...new Set(unknown)]).to.deep.equal([]);
    });

    it('every x-meshfetch-* header named on any page is one lib/ sends or reads', () => {
      const inLib = new Set(libSources().flatMap(([, text]) => [...text.matchAll(/x-meshfetch-[a-z-]*[a-z]/g)].map((m) => m[0])));
      const named = markdownPages().flatMap((page) => [...readPage(page).matchAll(/x-meshfetch-[a-z-]*[a-z]/g)].map((m) => `${page}: ${m[0]}`));
      expect(named.length).to.be.greaterThan(3);
      expect(named.filter((entry) => !inLib.has(entry.split(': ')[1]!))).to.deep.equal([]);
    });

    it('documents every createMesh() option, and no other', () => {
      // The compiler keeps this list equal to MeshOptions' keys: a missing or extra key fails `npm test`'s typecheck.
      const options = {
        service: true, controlPlane: true, policyFile: true, tls: true, cacheDir: true, adminToken: true, logLevel: true,
        reportInterval: true, policy: true, transport: true, middleware: true, env: true, readyTimeout: true, logger: true,
        random: true, layers: true, controlPlaneTiming: true, statsWindow: true,
      } satisfies Record<keyof MeshOptions, true>;
      const fromVariables = variablesTable().rows
        .flatMap((row) => codeSpans(row[1]!))
        .filter((option) => /^[a-z][A-Za-z.]*$/.test(option))
        .map((option) => option.split('.')[0]!);
      const others = documentedKeys('docs/configuration.md', '## Other createMesh() options').keys;
      expect([...new Set([...fromVariables, ...others])].sort()).to.deep.equal(Object.keys(options).sort());
    });

    it('lists every field of mesh.settings', () => {
      // The compiler keeps this list equal to MeshSettings' keys.
      const fields = {
        service: true, controlPlane: true, controlPlanes: true, policyFile: true, tls: true, cacheDir: true, adminToken: true,
        logLevel: true, reportInterval: true,
      } satisfies Record<keyof MeshSettings, true>;
      const named = new Set(codeSpans(paragraph(readPage('docs/configuration.md'), 'The resolved values are on `mesh.settings`')));
      expect(Object.keys(fields).filter((field) => !named.has(field))).to.deep.equal([]);
    });

    it('names the built-in layers middleware can be placed against, in order', () => {
      const row = documentedKeys('docs/configuration.md', '## Other createMesh() options').rows.find(([key]) => key === '`middleware`')!;
      const named = /`DEFAULT_STACK` lists them: (.*?) at this revision/.exec(row[3]!);
      expect(named, 'the middleware row lists the layers').to.not.equal(null);
      expect(codeSpans(named![1]!)).to.deep.equal(DEFAULT_STACK.map((layer) => layer.name));
    });
  });

  describe('the Mesh API', () => {
    it("documents every event, and every mesh.on('…') a page shows is an event", () => {
      // The compiler keeps this list equal to MeshEventMap's keys.
      const events = {
        retry: true, giveUp: true, budgetExhausted: true, hedge: true, circuit: true, limited: true, ejection: true,
        certificate: true, policy: true, fault: true, mirror: true, attempt: true, call: true,
      } satisfies Record<MeshEventName, true>;
      const text = markdownPages().map(readPage).join('\n');
      const listened = [...text.matchAll(/\.on\('([a-zA-Z]+)'/g)].map((m) => m[1]!);
      expect(listened.filter((name) => !(name in events))).to.deep.equal([]);
      const documented = (name: string): boolean => listened.includes(name) || new RegExp(`\`${name}\` event`).test(text);
      expect(Object.keys(events).filter((name) => !documented(name))).to.deep.equal([]);
    });

    it('every `mesh.<member>` a page names is a member of a mesh', async () => {
      const mesh = createMesh({ env: {} });
      try {
        const named = markdownPages().flatMap((page) => [...readPage(page).matchAll(/(?<![\w.])mesh\.([a-zA-Z]+)/g)].map((m) => [page, m[1]!]));
        expect(named.length).to.be.greaterThan(50);
        expect(named.filter(([, member]) => !(member! in mesh)).map(([page, member]) => `${page}: mesh.${member}`)).to.deep.equal([]);
      } finally {
        await mesh.close();
      }
    });
  });

  describe('metrics', () => {
    /** A MeterProvider that hands out no-op instruments and remembers the name of each one asked for. */
    function recordingMeterProvider(names: Set<string>): MeterProvider {
      const noop = createNoopMeter();
      const meter = new Proxy(noop, {
        get(target, key) {
          const member = Reflect.get(target, key) as unknown;
          if (typeof member !== 'function' || typeof key !== 'string' || !key.startsWith('create')) return member;
          return (name: string, ...rest: unknown[]) => {
            names.add(name);
            return (member as (...args: unknown[]) => unknown).call(target, name, ...rest);
          };
        },
      }) as Meter;
      return { getMeter: () => meter };
    }

    it('docs/telemetry.md lists every OpenTelemetry instrument a mesh creates, and no other', async () => {
      const created = new Set<string>();
      metrics.disable(); // the API takes a global provider only once
      expect(metrics.setGlobalMeterProvider(recordingMeterProvider(created))).to.equal(true);
      const payments = await startServer((_req, res) => sendJson(res, 200, {}));
      const mesh = createMesh({ env: {}, policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [payments.origin] } } } });
      try {
        await mesh.client('payments').get('/'); // instruments are made on the first call that records
      } finally {
        await mesh.close();
        await payments.close();
        metrics.disable();
      }
      const documented = tableRows(section(readPage('docs/telemetry.md'), '## Metrics')).map(([name]) => name!.replace(/`/g, ''));
      expect(created.size, [...created].join(', ')).to.be.greaterThan(5);
      expect(documented.sort()).to.deep.equal([...created].sort());
    });

    it("the control plane's /metrics: every series it exposes is named in control-plane.md or visibility.md", async () => {
      const server = await startTestControlPlane({ apiVersion: 'meshfetch/v1' });
      let exposed: string[];
      try {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        exposed = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
      } finally {
        await server.close();
      }
      const named = new Set(
        [...codeSpans(withoutCodeBlocks(readPage('docs/control-plane.md'))), ...codeSpans(section(readPage('docs/visibility.md'), '## `GET /metrics`'))]
          .map((span) => span.replace(/^…_/, 'meshfetch_control_plane_').replace(/\{.*\}$/, '')),
      );
      expect(exposed.length).to.be.greaterThan(10);
      expect(exposed.filter((name) => !named.has(name))).to.deep.equal([]);
    });
  });

  describe('docs/control-plane.md: startControlPlane()', () => {
    it('names every option of startControlPlane()', () => {
      // The compiler keeps this list equal to ControlPlaneOptions' keys.
      const options = {
        policyFile: true, storeUrl: true, clientLeaseTtl: true, store: true, port: true, host: true, adminToken: true,
        historyLimit: true, heartbeatInterval: true, maxBodyBytes: true, maxWatchers: true, logLevel: true, logger: true,
        validate: true, tls: true, reportTtl: true, dashboardInterval: true, maxReportStreams: true, env: true,
      } satisfies Record<keyof ControlPlaneOptions, true>;
      const named = new Set(codeSpans(paragraph(readPage('docs/control-plane.md'), '`startControlPlane(options)`:')));
      expect(Object.keys(options).filter((option) => !named.has(option))).to.deep.equal([]);
    });
  });

  describe('docs/architecture.md: the stack', () => {
    it('mirrors DEFAULT_STACK: every layer, in order, with its reason', () => {
      const rows = tableRows(section(readPage('docs/architecture.md'), '## The stack, outermost first')).filter(([n]) => n !== '–');
      expect(rows.map(([, name]) => name!.replace(/`/g, ''))).to.deep.equal(DEFAULT_STACK.map((layer) => layer.name));
      for (const [i, layer] of DEFAULT_STACK.entries()) expect(rows[i]![3], layer.name).to.equal(layer.why);
    });
  });

  describe('docs/policy.md: every field the schema accepts', () => {
    const document = objectSchema(POLICY_DOCUMENT_SCHEMA);
    const settings = objectSchema(document.fields.defaults);
    const serviceSchema = document.fields.services;
    if (serviceSchema?.kind !== 'map') throw new Error('services is a map');
    const service = objectSchema(serviceSchema.of);
    const routesSchema = service.fields.routes;
    if (routesSchema?.kind !== 'list') throw new Error('routes is a list');
    const route = objectSchema(routesSchema.of);
    const ownKeys = (schema: ObjectSchema): string[] => Object.keys(schema.fields).filter((key) => !(key in settings.fields));

    /** Dotted paths of the leaves of a settings object, and of each object that may be null (it is switched on or off), each with its parent. */
    function settingPaths(schema: ObjectSchema, prefix = ''): [string, Schema, ObjectSchema][] {
      return Object.entries(schema.fields).flatMap(([key, field]): [string, Schema, ObjectSchema][] => {
        const path = prefix + key;
        if (field.kind !== 'object') return [[path, field, schema]];
        return [...(field.nullable ? [[path, field, schema] as [string, Schema, ObjectSchema]] : []), ...settingPaths(field, `${path}.`)];
      });
    }

    /** The value at a dotted path of a call policy; undefined under a feature that is off. */
    function at(policy: unknown, path: string): unknown {
      return path.split('.').reduce<unknown>((value, key) => (value === null || value === undefined ? undefined : (value as Record<string, unknown>)[key]), policy);
    }

    // What a feature that is off by default (null) needs to be switched on; the rest of it is defaulted.
    const switchOn: Record<string, Record<string, unknown>> = { rateLimit: { rps: 1 }, hedge: { delay: '1ms' } };
    const switchedOn = compilePolicy({ apiVersion: 'meshfetch/v1', defaults: switchOn }, 'test').defaults;

    it('the features off by default need exactly the keys the test switches them on with', () => {
      const off = Object.entries(DEFAULT_POLICY).filter(([, value]) => value === null).map(([key]) => key);
      expect(off.sort()).to.deep.equal(Object.keys(switchOn).sort());
      for (const [feature, given] of Object.entries(switchOn)) {
        const required = Object.keys(given).map((key) => `defaults.${feature}.${key}: required when ${feature} is on`);
        expect(() => compilePolicy({ apiVersion: 'meshfetch/v1', defaults: { [feature]: {} } }, 'test')).to.throw(required.join('\n'));
      }
    });

    it('its example documents compile, and the invalid one fails createMesh() with the message shown', () => {
      const page = readPage('docs/policy.md');
      const documents = [...page.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((block) => block.startsWith('apiVersion:'));
      const invalid = section(page, '## Validation errors');
      const [bad] = documents.filter((block) => invalid.includes(block));
      expect(documents.length).to.be.greaterThan(1);
      for (const block of documents.filter((b) => b !== bad)) expect(() => compilePolicy(parseYaml(block), 'docs/policy.md')).not.to.throw();

      const shown = /throws a `MeshError` with code `MESHFETCH_CONFIG` and this message:\n\n```\n([\s\S]*?)\n```/.exec(invalid)![1]!;
      const dir = mkdtempSync(join(tmpdir(), 'meshfetch-docs-'));
      try {
        const file = join(dir, 'policy.yaml');
        writeFileSync(file, bad!);
        expect(() => createMesh({ env: { MESHFETCH_POLICY: file } }))
          .to.throw(MeshError)
          .with.property('message', shown.replace('/etc/meshfetch/policy.yaml', file));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('the top-level table lists every key of the document', () => {
      expect(documentedKeys('docs/policy.md', '## Top level').keys).to.deep.equal(Object.keys(document.fields));
    });

    it('the settings table lists every setting with its type range and its default, and nothing else', () => {
      const { rows } = documentedKeys('docs/policy.md', '## Settings: `defaults`, a service, or a route');
      const paths = settingPaths(settings);
      expect(rows.map(([key]) => key!.replace(/`/g, ''))).to.have.members(paths.map(([path]) => path));
      expect(rows).to.have.length(paths.length);
      for (const [path, schema, parent] of paths) {
        const [, type, defaultCell] = rows.find(([key]) => key === `\`${path}\``)!;
        const builtIn = at(DEFAULT_POLICY, path);
        const where = `docs/policy.md ${path}: default "${defaultCell}"`;
        if (schema.kind === 'object') {
          expect(defaultCell, where).to.match(builtIn === null ? /^`null` \(off\)/ : /^on$/);
          continue;
        }
        if (schema.kind === 'number') {
          const range = schema.max === undefined ? `≥ ${schema.min}` : `${schema.min}–${schema.max}`;
          expect(type, path).to.include(`${schema.integer ? 'integer' : 'number'} ${range}`);
        }
        if (schema.kind === 'duration' && (schema.min ?? 0) > 0) expect(type, path).to.include(`duration ≥ ${schema.min}ms`);
        const [feature, key] = path.split('.') as [string, string | undefined];
        if (key !== undefined && switchOn[feature] !== undefined && key in switchOn[feature]) {
          expect(defaultCell, where).to.match(/required when on/);
          continue;
        }
        const written = codeSpans(defaultCell!)[0];
        expect(written, where).to.not.equal(undefined);
        // A default derived from a sibling key (`ceil(rps)`) is prose, not a value.
        if (Object.keys(parent.fields).some((sibling) => written!.includes(`(${sibling})`))) continue;
        const problems: string[] = [];
        const value = normalize(parseYaml(written!), schema, path, problems);
        expect(problems, where).to.deep.equal([]);
        expect(value, where).to.deep.equal(builtIn ?? at(switchedOn, path));
      }
    });

    it('the services table lists every key a service has beyond the settings', () => {
      expect(documentedKeys('docs/policy.md', '## Services').keys.sort()).to.deep.equal(ownKeys(service).sort());
    });

    it('the routes table lists every key a route has beyond the settings, and docs/routing.md every match condition', () => {
      const keys = documentedKeys('docs/policy.md', '## Routes').keys.filter((key) => !key.includes('.'));
      expect(keys.sort()).to.deep.equal(ownKeys(route).sort());
      const match = route.fields.match;
      if (match?.kind !== 'one-or-list') throw new Error('match is one block or a list');
      const conditions = documentedKeys('docs/routing.md', '## Route matching').keys;
      expect(conditions).to.deep.equal(Object.keys(objectSchema(match.of).fields));
    });

    it('docs/routing.md names every key of split, fault and mirror in its section', () => {
      const routing = readPage('docs/routing.md');
      const sections = { split: '## Traffic split', fault: '## Fault injection', mirror: '## Mirroring' } as const;
      const keysOf = (schema: Schema): string[] => {
        if (schema.kind === 'list') return keysOf(schema.of);
        if (schema.kind !== 'object') return [];
        return Object.entries(schema.fields).flatMap(([key, field]) => [key, ...keysOf(field)]);
      };
      for (const [key, heading] of Object.entries(sections)) {
        const text = section(routing, heading);
        const missing = keysOf(service.fields[key]!).filter((name) => !new RegExp(`\\b${name}\\b`).test(text));
        expect(missing, `docs/routing.md "${heading}"`).to.deep.equal([]);
      }
    });
  });

  describe('docs/control-plane.md: the CLI', () => {
    /** Every command that runs (not a group such as `policy`), with its full name: `policy apply`. */
    function leafCommands(command: Command, prefix = ''): { name: string; command: Command }[] {
      return command.commands.flatMap((sub) => {
        const name = `${prefix}${sub.name()}`;
        return sub.commands.length > 0 ? leafCommands(sub, `${name} `) : [{ name, command: sub }];
      });
    }

    const program = createProgram(COMMANDS, '0.0.0');
    const cli = section(readPage('docs/control-plane.md'), '## CLI');
    const [shared] = cli.split('\n|');
    const rows = tableRows(cli);
    /** The row of each command: its first cell starts with `meshfetch <name>`. */
    const rowOf = (name: string): string[] | undefined => rows.find(([usage]) => new RegExp(`^\`meshfetch ${name}(\`| )`).test(usage!));
    const flags = (text: string): string[] => [...text.matchAll(/(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b/g)].map((m) => m[1]!);

    it('has a row for every command, and none for a command that does not exist', () => {
      const commands = leafCommands(program).map(({ name }) => name);
      expect(commands.filter((name) => rowOf(name) === undefined)).to.deep.equal([]);
      expect(rows.length).to.equal(commands.length);
    });

    it("names each command's options in its row (or, for options every command shares, above the table), and no option it lacks", () => {
      for (const { name, command } of leafCommands(program)) {
        const [usage] = rowOf(name)!;
        const options = command.options.flatMap((option) => [option.long!, ...(option.short ? [option.short] : [])]);
        const undocumented = command.options
          .filter((option) => !flags(usage!).includes(option.long!) && !flags(shared!).includes(option.long!))
          .map((option) => option.long);
        expect(undocumented, `meshfetch ${name}`).to.deep.equal([]);
        expect(flags(usage!).filter((flag) => !options.includes(flag)), `meshfetch ${name}: flags in its row`).to.deep.equal([]);
      }
    });
  });
});
