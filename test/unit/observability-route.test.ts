// The observability routes without sockets: which targets they take (and that none of them was a block URL), and the
// reply for each method, permission and supplier outcome.

import { describe, expect, it } from 'vitest';
import { METRICS_CONTENT_TYPE, observabilityReply, observabilityRoute, type Observability } from '../../src/util/observability-route.js';
import { parseRequest } from '../../src/server/parse-request.js';

const obs = (over: Partial<Observability> = {}): Observability => ({
  metrics: () => 'kfetch_up 1\n',
  status: () => ({ ok: true, files: 2 }),
  allowed: (addr) => addr === '127.0.0.1',
  ...over,
});

describe('observabilityRoute', () => {
  it.each([
    ['/metrics', 'metrics'],
    ['/metrics?name[]=x', 'metrics'],
    ['/status', 'status'],
    ['/status?', 'status'],
    ['/metrics/', undefined],
    ['/Metrics', undefined],
    ['/status/x', undefined],
    ['//metrics', undefined],
    ['/metricsx', undefined],
    ['http://x/metrics', undefined],
    ['/' + 'ab'.repeat(32), undefined],
  ])('%j -> %s', (target, want) => {
    expect(observabilityRoute(target)).toBe(want);
  });

  it('takes no target that the block parser accepts', () => {
    for (const t of ['/metrics', '/status', '/metrics?x=1', '/status?']) {
      expect(parseRequest('GET', t, undefined).ok).toBe(false);
      expect(parseRequest('GET', t, 'bytes=0-1').ok).toBe(false);
    }
  });
});

describe('observabilityReply', () => {
  it('serves metrics as Prometheus text and status as JSON, for GET and HEAD', async () => {
    const m = await observabilityReply(obs(), 'metrics', 'GET', '127.0.0.1');
    expect(m).toMatchObject({ status: 200, type: METRICS_CONTENT_TYPE, body: 'kfetch_up 1\n' });
    expect(METRICS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
    const s = await observabilityReply(obs(), 'status', 'HEAD', '127.0.0.1');
    expect(s.status).toBe(200);
    expect(s.type).toMatch(/^application\/json/);
    expect(JSON.parse(s.body)).toEqual({ ok: true, files: 2 });
    const asyncMetrics = await observabilityReply(obs({ metrics: () => Promise.resolve('a 2\n') }), 'metrics', 'GET', '127.0.0.1');
    expect(asyncMetrics.body).toBe('a 2\n');
  });

  it('answers 403 when not allowed and 405 with Allow for other methods, without calling the suppliers', async () => {
    let calls = 0;
    const o = obs({
      metrics: () => String(++calls),
      status: () => ++calls,
    });
    const refused = await observabilityReply(o, 'metrics', 'GET', '10.0.0.1');
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toEqual({ error: 'forbidden' });
    const post = await observabilityReply(o, 'status', 'POST', '127.0.0.1');
    expect(post.status).toBe(405);
    expect(post.headers.Allow).toBe('GET, HEAD');
    expect(calls).toBe(0);
  });

  it('rejects when a supplier throws (the server answers 500)', async () => {
    const o = obs({
      status: () => {
        throw new Error('boom');
      },
      metrics: () => Promise.reject(new Error('boom')),
    });
    await expect(observabilityReply(o, 'status', 'GET', '127.0.0.1')).rejects.toThrow('boom');
    await expect(observabilityReply(o, 'metrics', 'GET', '127.0.0.1')).rejects.toThrow('boom');
  });
});
