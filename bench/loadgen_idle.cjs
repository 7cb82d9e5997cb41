// The idle workload of bench/loadgen.cjs: N connections (in rooms of two), then nothing but
// engine.io's pings for --hold seconds. Reports the server's RSS before and after connecting
// and whether every connection is still open and answered the server's pings.
"use strict";

const lg = require("./loadgen.cjs");

async function run() {
  const { opts, SERVER_PIDS } = lg;
  const count = Number(opts.connections);
  const spec = (n) => ({
    url: lg.URLS[n % lg.URLS.length],
    auth: { userName: `idle${n}`, room: `r${Math.floor(n / 2)}` },
  });
  // one connection first, so the server's lazily built state is there before the baseline RSS
  const warm = await lg.connectAll([spec(count)]);
  if (warm.errors.length) throw new Error(`warm-up connection refused: ${warm.errors[0]}`);
  await lg.sleep(500);
  const rssBefore = SERVER_PIDS.map(lg.rssBytes);
  const startedAt = performance.now();
  const { clients, errors } = await lg.connectAll(Array.from({ length: count }, (_, n) => spec(n)));
  const connectSeconds = (performance.now() - startedAt) / 1000;
  lg.phase("connected");
  await lg.sleep(2000); // the server settles (welcome and availableOffers sent)
  const rssConnected = SERVER_PIDS.map(lg.rssBytes);
  const before = lg.snapshot();
  await lg.sleep(Number(opts.hold) * 1000);
  const after = lg.snapshot();
  const rssAfter = SERVER_PIDS.map(lg.rssBytes);
  const open = clients.filter((c) => c?.open);
  const pinged = open.filter((c) => c.pings >= Math.floor(Number(opts.hold) / 25));
  const closedBy = {};
  for (const c of clients) {
    if (c && !c.open) closedBy[c.closedBy] = (closedBy[c.closedBy] ?? 0) + 1;
  }
  const used = lg.usage(before, after);
  return {
    workload: "idle",
    protocol: opts.protocol,
    connections: count,
    refused: errors.length,
    refusedFirst: errors[0] ?? null,
    connectSeconds,
    holdSeconds: used.seconds,
    open: open.length,
    pinged: pinged.length,
    minPings: Math.min(...open.map((c) => c.pings)),
    closedBy,
    rssBefore,
    rssConnected,
    rssAfter,
    rssPerConnection: rssConnected.reduce((a, b) => a + b, 0) / count -
      rssBefore.reduce((a, b) => a + b, 0) / count,
    loadgenCpu: used.loadgenCpu,
    serverCpuSeconds: used.serverCpuSeconds,
  };
}

module.exports = run;
