import { describe, expect, it } from 'vitest';
import { daysAfter, period, periodStart } from '../src/subscriptions/billing-calendar.js';

const d = (iso: string) => new Date(iso);
const days = (anchor: string, n: number) =>
  Array.from({ length: n }, (_, i) => periodStart(d(anchor), i).toISOString().slice(0, 10));

describe('monthly billing dates keep the anchor day, clamped in shorter months', () => {
  it('a January 31 anchor bills Feb 28, Mar 31, Apr 30 ... and Feb 29 in a leap year', () => {
    expect(days('2027-01-31T09:15:00.000Z', 15)).toEqual([
      '2027-01-31',
      '2027-02-28',
      '2027-03-31',
      '2027-04-30',
      '2027-05-31',
      '2027-06-30',
      '2027-07-31',
      '2027-08-31',
      '2027-09-30',
      '2027-10-31',
      '2027-11-30',
      '2027-12-31',
      '2028-01-31',
      '2028-02-29',
      '2028-03-31',
    ]);
  });

  it('29th and 30th anchors are clamped only in February and come back the month after', () => {
    expect(days('2027-01-29T00:00:00.000Z', 4)).toEqual([
      '2027-01-29',
      '2027-02-28',
      '2027-03-29',
      '2027-04-29',
    ]);
    expect(days('2028-01-29T00:00:00.000Z', 3)).toEqual(['2028-01-29', '2028-02-29', '2028-03-29']);
    expect(days('2027-01-30T00:00:00.000Z', 4)).toEqual([
      '2027-01-30',
      '2027-02-28',
      '2027-03-30',
      '2027-04-30',
    ]);
  });

  it('keeps the time of day of the anchor and runs across year ends', () => {
    expect(periodStart(d('2027-11-30T23:59:59.123Z'), 3).toISOString()).toBe('2028-02-29T23:59:59.123Z');
    expect(periodStart(d('2027-12-15T07:00:00.000Z'), 25).toISOString()).toBe('2030-01-15T07:00:00.000Z');
  });

  it('a period ends exactly where the next one starts', () => {
    const anchor = d('2027-01-31T10:00:00.000Z');
    for (let n = 0; n < 30; n++) expect(period(anchor, n).end).toEqual(period(anchor, n + 1).start);
  });

  it('retry dates count whole days from the failed due date', () => {
    expect(daysAfter(d('2027-02-28T10:00:00.000Z'), 1).toISOString()).toBe('2027-03-01T10:00:00.000Z');
    expect(daysAfter(d('2028-02-28T10:00:00.000Z'), 1).toISOString()).toBe('2028-02-29T10:00:00.000Z');
  });
});
