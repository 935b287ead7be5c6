// Finds the first duplicate object key in JSON text: JSON.parse silently keeps the last one, and a file that says
// two things (two `blockhashes`, two `filehash`) must be refused, not guessed at. Used by parse.ts only.

type Frame = { kind: 'object'; keys: Set<string>; key: string | undefined; expectKey: boolean } | { kind: 'array'; index: number };

function pathOf(stack: readonly Frame[], leaf: string): string {
  let path = '';
  for (let d = 0; d < stack.length - 1; d++) {
    const f = stack[d]!;
    if (f.kind === 'array') path += `[${f.index}]`;
    else path += path === '' ? (f.key ?? '') : `.${f.key ?? ''}`;
  }
  return path === '' ? leaf : `${path}.${leaf}`;
}

/**
 * The JSON path (`blockhashes.4096`, `a[2].b`) of the first key that repeats within one object, or undefined.
 * `text` must already be valid JSON (JSON.parse accepted it); keys are compared after unescaping.
 * Iterative with an explicit stack, so deep nesting cannot overflow the call stack.
 */
export function findDuplicateKey(text: string): string | undefined {
  const stack: Frame[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x7b /* { */) stack.push({ kind: 'object', keys: new Set(), key: undefined, expectKey: true });
    else if (ch === 0x5b /* [ */) stack.push({ kind: 'array', index: 0 });
    else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) stack.pop();
    else if (ch === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') top.expectKey = true;
      else if (top?.kind === 'array') top.index++;
    } else if (ch === 0x22 /* " */) {
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j < 0) return undefined; // not valid JSON; the caller parsed it first, so unreachable
        let back = 0;
        for (let k = j - 1; text.charCodeAt(k) === 0x5c /* \ */; k--) back++;
        if (back % 2 === 0) break;
        j++;
      }
      const top = stack[stack.length - 1];
      if (top?.kind === 'object' && top.expectKey) {
        const raw = text.slice(i, j + 1);
        const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.keys.has(key)) return pathOf(stack, key);
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = j;
    }
  }
  return undefined;
}
