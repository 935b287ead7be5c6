// Reads an announce request's form body (urlencoded or multipart) from a node:http request as a list of
// fields, enforcing the byte cap while streaming so an oversized body is never buffered. Used by tracker-server.ts.

import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { KfetchError } from '../errors.js';

function httpError(status: number, message: string, field?: string): KfetchError {
  return new KfetchError('KF_E_INPUT', message, field === undefined ? { detail: { status } } : { field, detail: { status } });
}

/** Largest number of form parts accepted (an announce has at most 7 fields). */
const MAX_PARTS = 64;

/**
 * Read the request body as form fields. Missing Content-Type is read as urlencoded.
 * @throws KfetchError KF_E_INPUT with detail.status 413 (over `maxBytes`), 415 (other type) or 400 (malformed).
 */
export async function readForm(req: IncomingMessage, maxBytes: number): Promise<Array<[string, string]>> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw httpError(413, `request body over ${maxBytes} bytes`);
  }
  const type = (req.headers['content-type'] ?? 'application/x-www-form-urlencoded').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    const body = await readCapped(req, maxBytes);
    return [...new URLSearchParams(body.toString('utf8'))];
  }
  if (type === 'multipart/form-data') return readMultipart(req, maxBytes);
  throw httpError(415, `unsupported content type ${type}; send application/x-www-form-urlencoded or multipart/form-data`);
}

function readCapped(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        req.pause();
        reject(httpError(413, `request body over ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (): void => {
      cleanup();
      reject(httpError(400, 'request body was cut off'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
}

function readMultipart(req: IncomingMessage, maxBytes: number): Promise<Array<[string, string]>> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        limits: { fieldSize: maxBytes, fields: MAX_PARTS, files: 0, parts: MAX_PARTS, fieldNameSize: 100 },
      });
    } catch (err) {
      reject(httpError(400, `bad multipart request: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    const fields: Array<[string, string]> = [];
    let total = 0;
    let settled = false;
    const fail = (e: KfetchError): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.pause();
      bb.removeAllListeners();
      bb.on('error', () => {});
      bb.destroy();
      reject(e);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) return fail(httpError(413, `request body over ${maxBytes} bytes`));
      bb.write(chunk);
    };
    const onEnd = (): void => {
      bb.end();
    };
    bb.on('field', (name, value, info) => {
      if (info.nameTruncated || info.valueTruncated) return fail(httpError(400, `field ${name} is too long`, name));
      fields.push([name, value]);
    });
    bb.on('file', (name, stream) => {
      stream.resume();
      fail(httpError(400, `field ${name} is a file; send plain form fields`, name));
    });
    bb.on('partsLimit', () => fail(httpError(400, 'too many form parts')));
    bb.on('fieldsLimit', () => fail(httpError(400, 'too many form fields')));
    bb.on('filesLimit', () => fail(httpError(400, 'files are not accepted')));
    bb.on('error', (err: unknown) =>
      fail(httpError(400, `bad multipart body: ${err instanceof Error ? err.message : String(err)}`)),
    );
    bb.on('close', () => {
      if (settled) return;
      settled = true;
      resolve(fields);
    });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', () => fail(httpError(400, 'request body was cut off')));
    req.on('aborted', () => fail(httpError(400, 'request body was cut off')));
  });
}
