import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

// A replica's probe of its source's ENGINE (issue 12 #4: detection by those who see the data
// path). Not a TCP connect alone: the kernel completes the handshake for a frozen (SIGSTOPped)
// process too. The engine itself must say something within the timeout: MariaDB's greeting,
// PostgreSQL's answer to an SSLRequest, Redis's TLS handshake (its only port speaks TLS). No
// credential is sent; the answer's content does not matter, only that the engine gave one.

const PG_SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

export async function engineAnswers(
  manager: string,
  target: { host: string; port: number },
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    let socket: Socket;
    let settled = false;
    const done = (alive: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    if (manager === 'redis') {
      // The probe checks liveness, not identity: the replication itself verifies the certificate.
      socket = tlsConnect({ host: target.host, port: target.port, rejectUnauthorized: false }, () =>
        done(true),
      );
    } else {
      socket = netConnect({ host: target.host, port: target.port }, () => {
        if (manager === 'postgresql') socket.write(PG_SSL_REQUEST);
      });
      socket.once('data', () => done(true));
      // An engine that closes the connection after its greeting (or refuses the request) answered.
      socket.once('end', () => done(true));
    }
    socket.once('error', () => done(false));
  });
}
