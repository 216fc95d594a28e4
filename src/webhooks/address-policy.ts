import { BlockList, isIP } from 'node:net';

/**
 * Which addresses a webhook may never reach (SSRF): a partner's URL must not become a way into our
 * network or the cloud's metadata service. Checked on the address actually connected to, at connect
 * time, so a DNS answer that changes after the URL was saved gains nothing.
 */
const METADATA = new Set(['169.254.169.254', 'fd00:ec2::254']);

type Range = [network: string, prefix: number, kind: string];
const V4: Range[] = [
  ['0.0.0.0', 8, 'an unspecified'],
  ['10.0.0.0', 8, 'a private'],
  ['100.64.0.0', 10, 'a carrier-grade NAT'],
  ['169.254.0.0', 16, 'a link-local'],
  ['172.16.0.0', 12, 'a private'],
  ['192.0.0.0', 24, 'a reserved'],
  ['192.0.2.0', 24, 'a documentation'],
  ['192.168.0.0', 16, 'a private'],
  ['198.18.0.0', 15, 'a benchmarking'],
  ['198.51.100.0', 24, 'a documentation'],
  ['203.0.113.0', 24, 'a documentation'],
  ['224.0.0.0', 4, 'a multicast'],
  ['240.0.0.0', 4, 'a reserved'],
];
const V6: Range[] = [
  ['::', 128, 'an unspecified'],
  ['100::', 64, 'a discard'],
  ['2001:db8::', 32, 'a documentation'],
  ['fc00::', 7, 'a private (unique local)'],
  ['fe80::', 10, 'a link-local'],
  ['ff00::', 8, 'a multicast'],
];

const lists = [...V4.map((r) => [r, 'ipv4'] as const), ...V6.map((r) => [r, 'ipv6'] as const)].map(
  ([[net, prefix, kind], type]) => {
    const list = new BlockList();
    list.addSubnet(net, prefix, type);
    return { list, type, kind };
  },
);
const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedV4(address: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const hi = Number.parseInt(m[2] ?? '0', 16);
  const lo = Number.parseInt(m[3] ?? '0', 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** Whether `address` is an IP literal on the loopback interface (127/8, ::1, or either mapped). */
export function isLoopback(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').toLowerCase();
  const family = isIP(bare);
  if (family === 0) return false;
  const v4 = family === 6 ? embeddedV4(bare) : bare;
  return v4 ? loopback.check(v4, 'ipv4') : loopback.check(bare, 'ipv6');
}

/**
 * Why `address` (an IP literal) may not be contacted, or undefined when it may. Loopback is allowed
 * only when `allowLoopback` (a development server delivering to a receiver on the same machine).
 */
export function addressRefusal(address: string, allowLoopback: boolean): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '').toLowerCase();
  const family = isIP(bare);
  if (family === 0) return `${address} is not an IP address`;
  const v4 = family === 6 ? embeddedV4(bare) : bare;
  const ip = v4 ?? bare;
  const type = v4 ? 'ipv4' : 'ipv6';
  if (METADATA.has(ip)) return `${address} is a cloud metadata address`;
  if (isLoopback(address)) return allowLoopback ? undefined : `${address} is a loopback address`;
  for (const { list, type: t, kind } of lists) {
    if (t === type && list.check(ip, type)) return `${address} is ${kind} address`;
  }
  return undefined;
}
