// The rule for a .kascade `filename`: a bare, portable file name, refused (never sanitised) otherwise.
// Used by parse.ts, and by `kfetch create` / `--output` to check a name before writing it into a file.
//
// A single-file protocol has no reason to rewrite names the way multi-file torrent clients must: a name that
// could escape the output directory, hide its real text, or not exist on another OS is refused, and the user
// picks one with --output. The final path still gets a containment check where the file is opened.

/** Why a file name is refused: a reason, and the offending character and its 0-based code-point position if any. */
export interface NameProblem {
  reason: string;
  char?: string;
  position?: number;
}

/** Windows device names; reserved with any extension too (`nul.txt`), in any case. */
const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$/i;

/** Characters Windows forbids in names (`:` also makes drive-relative paths and NTFS streams). */
const WINDOWS_FORBIDDEN = new Set(['<', '>', ':', '"', '|', '?', '*']);

/** Format characters (Cf: U+200B, U+FEFF, U+2060 …) and everything else Unicode says renders as nothing (U+115F, U+3164, U+FE0F …). */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
/** U+2028 and U+2029: line breaks to a terminal or a log viewer, though not control characters. */
const LINE_BREAKING = /[\p{Zl}\p{Zp}]/u;

/** U+XXXX spelling of one code point, for messages. */
export function codePointLabel(ch: string): string {
  return `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

function charProblem(ch: string): string | undefined {
  const cp = ch.codePointAt(0) ?? 0;
  if (ch === '/' || ch === '\\') return 'a path separator';
  if (cp === 0) return 'NUL';
  if (cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp <= 0x9f)) return 'a control character';
  if (cp >= 0xd800 && cp <= 0xdfff) return 'a lone UTF-16 surrogate (not encodable as UTF-8)';
  // Bidirectional overrides and isolates make a name display as something else ("exe.txt" vs "txt.exe").
  if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) return 'a bidirectional control character';
  // Marks move the text around them the same way, only less visibly.
  if (cp === 0x200e || cp === 0x200f || cp === 0x061c) return 'a bidirectional mark';
  if (LINE_BREAKING.test(ch)) return 'a line or paragraph separator';
  // Invisible: two names that look the same differ (U+200B, U+FEFF, U+2060, tags …). This also refuses the zero-width
  // joiner and variation selectors inside emoji; --output picks a name then.
  if (INVISIBLE.test(ch)) return 'an invisible (format or default-ignorable) character';
  if (WINDOWS_FORBIDDEN.has(ch)) return 'a character that is not allowed in file names on Windows';
  return undefined;
}

/**
 * Check `name` as a bare file name. Returns undefined if it is acceptable, else the problem.
 * Refused: empty, `.`, `..`, path separators, NUL and control characters, lone surrogates, bidi controls and marks,
 * line and paragraph separators, invisible (format, default-ignorable) characters,
 * Windows-forbidden characters, more than `maxBytes` bytes of UTF-8, a trailing dot or space,
 * reserved device names (CON, NUL, COM1, … with or without extension), and text that is not NFC.
 */
export function filenameProblem(name: string, maxBytes: number): NameProblem | undefined {
  if (name === '') return { reason: 'is empty' };
  if (name === '.' || name === '..') return { reason: `is "${name}", which names a directory` };
  let position = 0;
  for (const ch of name) {
    const what = charProblem(ch);
    if (what !== undefined) return { reason: `contains ${what} (${codePointLabel(ch)}) at position ${position}`, char: ch, position };
    position++;
  }
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > maxBytes) return { reason: `is ${bytes} bytes of UTF-8, more than ${maxBytes}` };
  const last = name[name.length - 1]!;
  if (last === '.' || last === ' ') {
    const cps = [...name];
    return { reason: `ends with ${last === '.' ? 'a dot' : 'a space'} at position ${cps.length - 1}`, char: last, position: cps.length - 1 };
  }
  const stem = name.split('.')[0]!.trimEnd();
  if (RESERVED.test(stem)) return { reason: `uses the reserved device name "${stem}"` };
  const nfc = name.normalize('NFC');
  if (nfc !== name) {
    const a = [...name];
    const b = [...nfc];
    let p = 0;
    while (p < a.length && a[p] === b[p]) p++;
    // The first differing code point may be the base of a decomposed pair; name it and the one after.
    const shown = a.slice(p, p + 2);
    return {
      reason: `is not NFC-normalised from position ${p} (${shown.map(codePointLabel).join(' ')})`,
      char: shown.join(''),
      position: p,
    };
  }
  return undefined;
}
