// Issue 12: GET /api/v1/openapi.json is kept true. Every route of api-routes.ts is in the document and every
// operation of the document is a route (both ways), and real replies of a real box validate against the
// document's schemas (types, required keys, enums, nullability: a small validator for the subset it uses).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/api/api-routes.js';
import { openApiDocument } from '../../src/api/openapi.js';
import { startAdversarialPeer } from '../helpers/adversarial-peer.js';
import { BLOCK, boxPayload, boxWorld, startBox } from '../helpers/box-world.js';
import { testScope } from '../helpers/test-scope.js';
import { until } from '../helpers/wait.js';

const scope = testScope();
type Schema = Record<string, any>;
const doc = openApiDocument() as { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, Schema> } };

/** Problems of `v` against `s` (the subset of JSON Schema the document uses), as paths. */
function check(v: unknown, s: Schema, at = '$'): string[] {
  if (s.$ref !== undefined) return check(v, doc.components.schemas[String(s.$ref).split('/').pop()!]!, at);
  const out: string[] = [];
  if ('const' in s && v !== s.const) out.push(`${at}: want ${JSON.stringify(s.const)}`);
  if (s.enum !== undefined && !s.enum.includes(v)) out.push(`${at}: ${JSON.stringify(v)} not in enum`);
  if (s.type !== undefined) {
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
    const t = v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) out.push(`${at}: ${t}, want ${types.join('|')}`);
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    for (const k of s.required ?? []) if (!(k in v)) out.push(`${at}.${k}: missing`);
    for (const [k, sub] of Object.entries(s.properties ?? {})) if (k in v) out.push(...check((v as any)[k], sub as Schema, `${at}.${k}`));
  }
  if (Array.isArray(v) && s.items !== undefined) v.forEach((x, i) => out.push(...check(x, s.items, `${at}[${i}]`)));
  return out;
}

describe('issue 12: the OpenAPI document', () => {
  it('describes exactly the routes the API answers', () => {
    const routes = ROUTES.map((r) => `${r.method} ${r.path}`).sort();
    const ops = Object.entries(doc.paths).flatMap(([p, ms]) => Object.keys(ms).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    expect(ops).toEqual(routes);
    // Path parameters are declared where the template names them.
    for (const [p, ms] of Object.entries(doc.paths)) {
      for (const op of Object.values(ms)) {
        const names = [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        const declared = (op.parameters ?? []).filter((x: any) => x.in === 'path').map((x: any) => x.name);
        expect(declared, p).toEqual(names);
      }
    }
  });

  it('real replies of a real box match the schemas', async () => {
    const w = boxWorld(scope);
    const good = boxPayload('o.bin', 'o');
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true }));
    const box = await startBox(w);
    const token = readFileSync(join(w.home, 'api-token'), 'utf8').trim();
    const call = async (method: string, path: string, body?: string): Promise<{ status: number; json: any }> => {
      const res = await fetch(`${box.url}/api/v1${path}`, { method, headers: { Authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body }) });
      return { status: res.status, json: await res.json() };
    };
    const schemaOf = (method: string, path: string, status: number): Schema => {
      const r = doc.paths[path]![method.toLowerCase()].responses[String(status)];
      expect(r, `${method} ${path} ${status} documented`).toBeDefined();
      return r.content['application/json'].schema;
    };
    const expectValid = async (method: string, template: string, path: string, body?: string): Promise<any> => {
      const r = await call(method, path, body);
      expect(check(r.json, schemaOf(method, template, r.status)), `${method} ${path} → ${r.status}`).toEqual([]);
      return r;
    };
    const added = await expectValid('POST', '/kascades', '/kascades', JSON.stringify({ ...good.k, peers: [peer.addr] }));
    expect(added.status).toBe(201);
    const id = added.json.id;
    await until(async () => (await call('GET', `/kascades/${id}`)).json.kascade.state === 'seeding', 20_000, 'seeding');
    await expectValid('GET', '/kascades', '/kascades');
    await expectValid('GET', '/kascades/{id}', `/kascades/${id}`);
    await expectValid('GET', '/kascades/{id}/peers', `/kascades/${id}/peers`);
    await expectValid('GET', '/kascades/{id}/blocks', `/kascades/${id}/blocks?format=runs`);
    await expectValid('GET', '/settings', '/settings');
    await expectValid('PATCH', '/settings', '/settings', '{"maxPeers":100}');
    await expectValid('GET', '/stats', '/stats');
    await expectValid('POST', '/kascades/{id}/verify', `/kascades/${id}/verify`);
    await expectValid('POST', '/kascades/{id}/reannounce', `/kascades/${id}/reannounce`);
    await expectValid('POST', '/kascades/{id}/pause', `/kascades/${id}/pause`);
    await expectValid('POST', '/kascades/{id}/resume', `/kascades/${id}/resume`);
    expect((await expectValid('POST', '/kascades', '/kascades', JSON.stringify(good.k))).status).toBe(409);
    expect((await expectValid('GET', '/kascades', '/kascades?limit=0')).status).toBe(400);
    expect((await expectValid('GET', '/kascades/{id}', '/kascades/0000000000000000')).status).toBe(404);
    await expectValid('DELETE', '/kascades/{id}', `/kascades/${id}`);
  });
});
