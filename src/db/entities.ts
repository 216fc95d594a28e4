import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

/**
 * MikroORM entities for the tables that services read and write through the ORM. The schema itself
 * lives in the committed migrations (src/db/migrations), which also carry the CHECK constraints the
 * money rules rely on; hot paths (deduct, refund) use single SQL statements on the same connection.
 */
export const PartnerSchema = defineEntity({
  name: 'Partner',
  tableName: 'partners',
  properties: {
    id: p.integer().primary().autoincrement(),
    clientId: p.text().unique(),
    name: p.text(),
    clientSecretHash: p.text().unique(),
    redirectUris: p.array(),
    allowedScopes: p.array(),
    requirePkce: p.boolean().default(false),
    refreshGraceSeconds: p.integer().default(0),
    secretRotatedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type Partner = InferEntity<typeof PartnerSchema>;

export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    email: p.text().nullable().unique(),
    passwordHash: p.text().nullable().hidden(),
    privyId: p.text().nullable().unique(),
    balance: p.integer().default(0),
    disabledAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type User = InferEntity<typeof UserSchema>;

export const entities = [PartnerSchema, UserSchema];
