// The OpenAPI 3.1 document of the control API (`GET /api/v1/openapi.json`). test/integration/api-openapi.test.ts
// checks it against api-routes.ts's table both ways and real replies against its schemas' required keys.

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown): { content: Record<string, { schema: unknown }> } => ({ content: { 'application/json': { schema } } });
const idParam = { name: 'id', in: 'path', required: true, description: '16 hex digits (docs/api.md)', schema: { type: 'string', pattern: '^[0-9a-f]{16}$' } };
const errors = {
  '400': { description: 'bad request (KF_E_API_REQUEST, KF_E_KASCADE_*)', ...json(ref('Error')) },
  '401': { description: 'no or a wrong bearer token (KF_E_API_AUTH)', ...json(ref('Error')) },
  '403': { description: 'address or Host refused (KF_E_API_FORBIDDEN)', ...json(ref('Error')) },
  '404': { description: 'no such kascade (KF_E_API_NOT_FOUND)', ...json(ref('Error')) },
};
const kascadeReply = { description: 'the kascade', ...json({ type: 'object', required: ['v', 'kascade'], properties: { v: { const: 1 }, kascade: ref('Kascade') } }) };
const action = (summary: string, status: '200' | '202'): unknown => ({
  summary,
  parameters: [idParam],
  responses: { [status]: kascadeReply, '409': { description: 'not possible in its state (KF_E_API_CONFLICT)', ...json(ref('Error')) }, ...errors },
});

const nullable = (type: string): unknown => ({ type: [type, 'null'] });

export function openApiDocument(): unknown {
  return {
    openapi: '3.1.0',
    info: { title: 'kfetch box control API', version: '1', description: 'See docs/api.md. Every route but this document needs `Authorization: Bearer <token from <home>/api-token>`.' },
    servers: [{ url: '/api/v1' }],
    security: [{ bearer: [] }],
    paths: {
      '/kascades': {
        get: {
          summary: 'List kascades, paged, sorted by id',
          parameters: [
            { name: 'state', in: 'query', description: 'comma list of states', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
            { name: 'cursor', in: 'query', description: '`next` of the previous page', schema: { type: 'string' } },
            { name: 'fields', in: 'query', description: 'comma list of record keys (id always included)', schema: { type: 'string' } },
          ],
          responses: {
            '200': {
              description: 'a page',
              ...json({ type: 'object', required: ['v', 'items', 'next', 'total'], properties: { v: { const: 1 }, items: { type: 'array', items: ref('Kascade') }, next: nullable('string'), total: { type: 'integer' } } }),
            },
            ...errors,
          },
        },
        post: {
          summary: 'Add a kascade (written into the watch folder); idempotent by filehash',
          parameters: [{ name: 'paused', in: 'query', schema: { type: 'boolean' } }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', description: 'a .kascade file' } } } },
          responses: {
            '201': { description: 'added', ...json({ type: 'object', required: ['v', 'id', 'file', 'kascade'], properties: { v: { const: 1 }, id: { type: 'string' }, file: { type: 'string' }, kascade: ref('Kascade') } }) },
            '409': { description: 'already in the box: `existing` is its id', ...json(ref('Error')) },
            '413': { description: 'body too large', ...json(ref('Error')) },
            '503': { description: 'other uploads hold the memory for request bodies now (KF_E_API_BUSY); try again', ...json(ref('Error')) },
            ...errors,
          },
        },
      },
      '/kascades/{id}': {
        get: { summary: 'One kascade', parameters: [idParam], responses: { '200': kascadeReply, ...errors } },
        delete: {
          summary: 'Remove a kascade (its file leaves the watch folder); with deleteData its data file and state too',
          parameters: [idParam, { name: 'deleteData', in: 'query', schema: { type: 'boolean', default: false } }],
          responses: {
            '200': { description: 'removed', ...json({ type: 'object', required: ['v', 'id', 'deletedData'], properties: { v: { const: 1 }, id: { type: 'string' }, deletedData: { type: 'boolean' } } }) },
            ...errors,
          },
        },
      },
      '/kascades/{id}/peers': {
        get: {
          summary: 'The peers of a download',
          parameters: [idParam],
          responses: { '200': { description: 'peers', ...json({ type: 'object', required: ['v', 'peers'], properties: { v: { const: 1 }, peers: { type: 'array', items: ref('Peer') } } }) }, ...errors },
        },
      },
      '/kascades/{id}/blocks': {
        get: {
          summary: 'The block map as runs: h have, f in flight, m missing',
          parameters: [idParam, { name: 'format', in: 'query', schema: { const: 'runs' } }],
          responses: {
            '200': {
              description: 'runs in block order',
              ...json({ type: 'object', required: ['v', 'blocks', 'runs'], properties: { v: { const: 1 }, blocks: { type: 'integer' }, runs: { type: 'array', items: { type: 'array', prefixItems: [{ enum: ['h', 'f', 'm'] }, { type: 'integer' }] } } } }),
            },
            ...errors,
          },
        },
      },
      '/kascades/{id}/pause': { post: action('Pause: neither fetched, served nor announced (kept across restarts)', '200') },
      '/kascades/{id}/resume': { post: action('Resume a paused kascade', '200') },
      '/kascades/{id}/verify': { post: action('Re-hash a seeding file now; try a failed or stalled one again now', '202') },
      '/kascades/{id}/reannounce': { post: action('Announce now', '202') },
      '/settings': {
        get: { summary: 'The settings', responses: { '200': { description: 'settings', ...json(ref('Settings')) }, ...errors } },
        patch: {
          summary: 'Change settings at once',
          requestBody: { required: true, ...json({ type: 'object', properties: { maxUpload: { type: 'integer' }, maxPeers: { type: 'integer' }, maxDownloads: { type: 'integer' } }, additionalProperties: false }) },
          responses: { '200': { description: 'the settings now', ...json(ref('Settings')) }, ...errors },
        },
      },
      '/stats': { get: { summary: 'The box.stats record', responses: { '200': { description: 'stats', ...json(ref('Stats')) }, ...errors } } },
      '/events': {
        get: {
          summary: 'Server-Sent Events: snapshot, kascade.added|changed|removed, peer.*, box.stats, dropped; Last-Event-ID resumes',
          parameters: [{ name: 'Last-Event-ID', in: 'header', schema: { type: 'string' } }],
          responses: { '200': { description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, '503': { description: 'too many streams (KF_E_API_BUSY)', ...json(ref('Error')) }, ...errors },
        },
      },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } } } },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['v', 'error'],
          properties: { v: { const: 1 }, error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } } }, existing: { type: 'string' } },
        },
        Kascade: {
          type: 'object',
          required: ['id', 'file', 'state', 'receivedBytes', 'verifiedBytes', 'durableBytes', 'progress', 'downRate', 'upRate', 'eta', 'servedBytes', 'fetchedBytes', 'badBlocks', 'bans', 'peers', 'tracker', 'lastScrub', 'addedAt'],
          properties: {
            id: { type: 'string' },
            file: { type: 'string' },
            state: { enum: ['loading', 'rejected', 'verifying', 'queued', 'downloading', 'stalled', 'seeding', 'failed', 'paused', 'removed'] },
            name: { type: 'string' },
            filehash: { type: 'string' },
            swarmId: { type: 'string' },
            size: { type: 'integer' },
            blockSize: { type: 'integer' },
            blocks: { type: 'integer' },
            receivedBytes: { type: 'integer' },
            verifiedBytes: { type: 'integer' },
            durableBytes: { type: 'integer' },
            progress: { type: 'number' },
            downRate: { type: 'integer' },
            upRate: { type: 'integer' },
            eta: nullable('integer'),
            servedBytes: { type: 'integer' },
            fetchedBytes: { type: 'integer' },
            badBlocks: { type: 'integer' },
            bans: { type: 'integer' },
            peers: { type: 'integer' },
            tracker: { type: ['object', 'null'], properties: { url: { type: 'string' }, urls: { type: 'array', items: { type: 'string' } }, lastAnnounce: nullable('string'), nextAnnounce: nullable('string'), lastError: nullable('string') } },
            lastScrub: nullable('string'),
            data: { type: 'string' },
            error: { type: 'string' },
            nextTry: { type: 'string' },
            addedAt: { type: 'string' },
          },
        },
        Peer: {
          type: 'object',
          required: ['address', 'source', 'downRate', 'upRate', 'downloadedBytes', 'uploadedBytes', 'share', 'inFlight', 'latencyMs', 'badBlocks', 'banned'],
          properties: {
            address: { type: 'string' },
            source: { type: 'string' },
            downRate: { type: 'integer' },
            upRate: { type: 'integer' },
            downloadedBytes: { type: 'integer' },
            wireBytes: { type: 'integer', description: 'of downloadedBytes, the bytes that came over the binary peer wire' },
            uploadedBytes: { type: 'integer' },
            share: nullable('number'),
            inFlight: { type: 'integer' },
            latencyMs: nullable('number'),
            badBlocks: { type: 'integer' },
            banned: nullable('string'),
          },
        },
        Settings: {
          type: 'object',
          required: ['v', 'maxUpload', 'maxPeers', 'maxDownloads'],
          properties: { v: { const: 1 }, maxUpload: { type: 'integer' }, maxPeers: { type: 'integer' }, maxDownloads: { type: 'integer' } },
        },
        Stats: {
          type: 'object',
          required: ['v', 'downRate', 'upRate', 'states', 'kascades', 'servedBytes', 'fetchedBytes', 'eventClients', 'uptimeSeconds', 'settings'],
          properties: {
            v: { const: 1 },
            downRate: { type: 'integer' },
            upRate: { type: 'integer' },
            states: { type: 'object' },
            kascades: { type: 'integer' },
            servedBytes: { type: 'integer' },
            fetchedBytes: { type: 'integer' },
            connections: { type: 'integer' },
            eventClients: { type: 'integer' },
            uptimeSeconds: { type: 'integer' },
            settings: { type: 'object' },
          },
        },
      },
    },
  };
}
