import type { components } from '../../../generated/types.js';
import { deref, loadSpec } from '../../http/spec.js';
import { type NewPartner, SCOPES, type Scope } from '../../partners/partners.js';
import type { EventType } from '../../webhooks/outbox.js';
import { BadFormError, field } from '../shared/form.js';

type Schemas = components['schemas'];

/** One checkbox of the Event Filter: an event type of openapi.yaml and its summary there. */
export type EventChoice = { type: EventType; summary: string };

/**
 * The Event Filter's choices, read from openapi.yaml (components.schemas.EventType and the summary
 * of each entry under `webhooks`), so a new event type shows up here with no change to this code.
 * `test.ping` is left out: the spec sends it only through the test operation, whatever the filter.
 */
export function eventChoices(): EventChoice[] {
  const spec = loadSpec();
  const types: EventType[] = spec.components.schemas.EventType.enum;
  return types
    .filter((t) => t !== 'test.ping')
    .map((type) => ({ type, summary: String(spec.webhooks?.[type]?.post?.summary ?? '') }));
}

/** The maxLength openapi.yaml gives a property of a request schema. */
function maxLength(schema: 'CreateWebhookEndpointRequest', property: 'url' | 'description'): number {
  return Number(deref(loadSpec().components.schemas[schema]).properties[property].maxLength);
}

/** Every value of a repeated form field (checkboxes), as strings. */
function values(body: unknown, name: string): string[] {
  const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/** What the endpoint form posted, as the partner API's create request (same limits as the spec's). */
export type EndpointForm = Schemas['CreateWebhookEndpointRequest'];

export function endpointForm(body: unknown): EndpointForm {
  const url = (field(body, 'url') ?? '').trim();
  const description = (field(body, 'description') ?? '').trim();
  const known = new Set<string>(eventChoices().map((c) => c.type));
  const events = [...new Set(values(body, 'events'))];
  const form: EndpointForm = { url, events: events as EventType[], ...(description ? { description } : {}) };
  if (!url) throw new FormError(form, 'Enter the URL events are sent to.');
  if (url.length > maxLength('CreateWebhookEndpointRequest', 'url')) {
    throw new FormError(
      form,
      `The URL is longer than ${maxLength('CreateWebhookEndpointRequest', 'url')} characters.`,
    );
  }
  if (description.length > maxLength('CreateWebhookEndpointRequest', 'description')) {
    throw new FormError(
      form,
      `The description is longer than ${maxLength('CreateWebhookEndpointRequest', 'description')} characters.`,
    );
  }
  const unknown = events.find((e) => !known.has(e));
  if (unknown !== undefined) throw new FormError(form, `There is no event type ${unknown}.`);
  if (events.length === 0) throw new FormError(form, 'Tick at least one event type to receive.');
  return form;
}

/** What the app settings form posted, as the partner registration input. */
export function settingsForm(body: unknown): NewPartner {
  const name = (field(body, 'name') ?? '').trim();
  const redirectUris = (field(body, 'redirect_uris') ?? '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const allowedScopes = values(body, 'scopes');
  const graceRaw = (field(body, 'refresh_grace_seconds') ?? '').trim();
  const form: NewPartner = {
    name,
    redirectUris,
    allowedScopes: allowedScopes as Scope[],
    requirePkce: field(body, 'require_pkce') === 'on',
    refreshGraceSeconds: /^\d{1,3}$/.test(graceRaw) ? Number(graceRaw) : Number.NaN,
  };
  const unknown = allowedScopes.find((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown !== undefined) throw new FormError(form, `There is no scope ${unknown}.`);
  if (Number.isNaN(form.refreshGraceSeconds)) {
    throw new FormError(form, 'The refresh grace window is a whole number of seconds from 0 to 300.');
  }
  return form;
}

/** A form's input refused with a message; `values` is what was posted, to show the form again. */
export class FormError<T> extends BadFormError {
  constructor(
    readonly values: T,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A `datetime-local` value (no zone; read as UTC, as the page says) or a full ISO 8601 time. */
export function utcTime(raw: string | undefined, what: string): string {
  const v = (raw ?? '').trim();
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2}(?:\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?$/.exec(v);
  const time = m ? new Date(`${m[1]}T${m[2]}${m[3] ?? ':00'}${m[4] ?? 'Z'}`) : undefined;
  if (!time || Number.isNaN(time.getTime())) {
    throw new BadFormError(`Enter ${what} as a date and time, e.g. 2026-11-24T09:30 (UTC).`);
  }
  return time.toISOString();
}

/** The pattern openapi.yaml gives a path or query parameter (components.parameters.<name>). */
export function parameterPattern(name: 'EndpointId' | 'DeliveryId' | 'Cursor'): RegExp {
  return new RegExp(String(deref(loadSpec().components.parameters[name]).schema.pattern));
}
