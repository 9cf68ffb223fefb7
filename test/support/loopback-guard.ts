/**
 * Preloaded into child processes (`NODE_OPTIONS=--import <this file>`): any TCP connection to an
 * address other than loopback throws, and is reported on stderr so the test sees it. Unix sockets
 * (IPC) are allowed.
 */
import net from 'node:net';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  // net.connect() and http pass their arguments normalized, as one array: [options, callback].
  const raw = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  const first = raw as { host?: string; path?: string; port?: number } | number | string | undefined;
  if (typeof first === 'object' && first !== null && typeof first.path !== 'string') {
    const host = first.host ?? 'localhost';
    if (!LOOPBACK.has(host)) {
      process.stderr.write(`LOOPBACK GUARD: refused a connection to ${host}:${first.port}\n`);
      throw new Error(`loopback guard: connection to ${host} refused in tests`);
    }
  } else if (typeof first === 'number' && typeof args[1] === 'string' && !LOOPBACK.has(args[1])) {
    process.stderr.write(`LOOPBACK GUARD: refused a connection to ${args[1]}:${first}\n`);
    throw new Error(`loopback guard: connection to ${args[1]} refused in tests`);
  }
  return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;
