/** Input a wallet page refuses with a 400 page; the message says what was wrong. */
export class BadFormError extends Error {}

/** A NUL byte, or a UTF-16 surrogate without its pair. */
const NOT_TEXT = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Whether a string is text we can store and show: PostgreSQL refuses NUL in a text parameter (error
 * 22021, which would surface as a 500), and a lone surrogate is not Unicode at all.
 */
export const isText = (s: string): boolean => !NOT_TEXT.test(s);

/** Refuses a posted form (or a query) whose string values are not all text, naming the first field. */
export function assertText(source: unknown, what: 'form' | 'link'): void {
  if (typeof source !== 'object' || source === null) return;
  for (const [name, value] of Object.entries(source)) {
    const values: unknown[] = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'string' && !isText(v)) || !isText(name)) {
      throw new BadFormError(
        `The ${what}'s ${isText(name) ? name : 'field name'} contains characters that are not allowed (a NUL byte or broken Unicode).`,
      );
    }
  }
}

/** A posted field when it is a string; anything else (absent, a JSON number or object) is undefined. */
export function field(body: unknown, name: string): string | undefined {
  const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  return typeof v === 'string' ? v : undefined;
}

const MAX_INT4 = 2_147_483_647;

/** A positive PostgreSQL `integer` id written plainly (no sign, exponent, spaces or leading zeros). */
export function idField(body: unknown, name: string, what: string): number {
  const raw = field(body, name) ?? '';
  const id = /^[1-9]\d{0,9}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(id <= MAX_INT4)) throw new BadFormError(`The form did not name ${what}.`);
  return id;
}

/** A positive PostgreSQL `bigint` id written plainly, up to what a JavaScript number holds exactly. */
export function bigIdField(body: unknown, name: string, what: string): number {
  const raw = field(body, name) ?? '';
  const id = /^[1-9]\d{0,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(id)) throw new BadFormError(`The form did not name ${what}.`);
  return id;
}
