// Load generator for bench/signaling.py: many socket.io clients in one Node.js process,
// speaking websocket, engine.io v4 and socket.io v5 itself (no socket.io-client: it would
// decode every broadcast offer; this decodes only what it needs, so it stays off the
// server's critical path; measured in bench/README.md). Speaks callbox's protocol and the seed baseline's.
//
//   node bench/loadgen.cjs --workload calls --protocol callbox --url http://127.0.0.1:8443 \
//     --pairs 50 --rooms lobby --warmup 2 --duration 10 [--server-pids 123,456]
//   node bench/loadgen.cjs --workload idle --protocol baseline --url ... --connections 2000 \
//     --hold 60 --server-pids 123
//
// stdout: "phase <name>" lines as the run goes (connected, start, end), then one line
// "result <json>". Every time is taken with this process's clock.
"use strict";

const fs = require("node:fs");
const net = require("node:net");
const crypto = require("node:crypto");

const opts = parseArgs(process.argv.slice(2), {
  workload: "calls",
  protocol: "callbox",
  url: "http://127.0.0.1:8443",
  pairs: "50",
  rooms: "lobby",
  "offer-bytes": "4600",
  "answer-bytes": "2300",
  candidates: "8",
  warmup: "2",
  duration: "10",
  timeout: "15",
  connections: "2000",
  hold: "60",
  concurrency: "100",
  "server-pids": "",
});
const CALLBOX = opts.protocol === "callbox";
const URLS = opts.url.split(",").map(
  (u) => `${u.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`,
);
const SERVER_PIDS = opts["server-pids"].split(",").filter(Boolean).map(Number);
const CANDIDATES = Number(opts.candidates);
const TIMEOUT_MS = Number(opts.timeout) * 1000;

function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in defaults) || i + 1 >= argv.length) {
      console.error(`loadgen: unknown or incomplete option ${argv[i]}`);
      process.exit(2);
    }
    out[key] = argv[i + 1];
  }
  return out;
}

// --- payloads: a realistic browser offer (audio + video, many codecs), sized on request ----

function sdp(kind, bytes) {
  const lines = [
    "v=0",
    `o=- 4611731400430051336 2 IN IP4 127.0.0.1`,
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS bench",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:Bnch",
    "a=ice-pwd:benchbenchbenchbenchbench",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 " + Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, "0").toUpperCase()).join(":"),
    `a=setup:${kind === "offer" ? "actpass" : "active"}`,
    "a=mid:0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 103 104 105 106 107",
    "c=IN IP4 0.0.0.0",
    "a=mid:1",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtcp-rsize",
  ];
  const codecs = ["VP8", "rtx", "VP9", "H264", "AV1", "red", "ulpfec", "H265"];
  let size = lines.join("\r\n").length;
  for (let pt = 96; size < bytes; pt++) {
    const codec = codecs[pt % codecs.length];
    for (const line of [
      `a=rtpmap:${pt} ${codec}/90000`,
      `a=rtcp-fb:${pt} goog-remb`,
      `a=rtcp-fb:${pt} transport-cc`,
      `a=rtcp-fb:${pt} ccm fir`,
      `a=rtcp-fb:${pt} nack`,
      `a=rtcp-fb:${pt} nack pli`,
      `a=fmtp:${pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f`,
    ]) {
      if (size >= bytes) break;
      lines.push(line);
      size += line.length + 2;
    }
  }
  return { type: kind, sdp: lines.join("\r\n") + "\r\n" };
}

const OFFER = sdp("offer", Number(opts["offer-bytes"]));
const ANSWER = sdp("answer", Number(opts["answer-bytes"]));

function candidate(n) {
  return {
    candidate: `candidate:${n} 1 udp 2122260223 127.0.0.1 ${10000 + (n % 50000)} typ host generation 0 ufrag Bnch network-id 1`,
    sdpMid: "0",
    sdpMLineIndex: 0,
    usernameFragment: "Bnch",
  };
}

// --- a socket.io client over a websocket spoken directly on a TCP socket ------------------
// Lean on purpose: frames are sliced out of the received chunks without copies, and a
// message nobody listens to is dropped after reading its event name. Client frames carry an
// all-zero mask key (masked as RFC 6455 requires; XOR with zero leaves the payload as is).

const QUOTE = 0x22;

class Client {
  constructor(url, auth) {
    this.url = new URL(url);
    this.auth = auth;
    this.handlers = new Map();
    this.pending = new Map();
    this.nextAck = 0;
    this.pings = 0;
    this.open = false;
    this.closedBy = null;
    this.rest = null;
    this.upgraded = false;
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.connected = { resolve, reject };
      const sock = net.connect({ host: this.url.hostname, port: Number(this.url.port) });
      this.sock = sock;
      sock.setNoDelay(true);
      sock.on("connect", () => {
        const key = crypto.randomBytes(16).toString("base64");
        sock.write(
          `GET ${this.url.pathname}${this.url.search} HTTP/1.1\r\nHost: ${this.url.host}\r\n` +
            `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
            "Sec-WebSocket-Version: 13\r\n\r\n",
        );
      });
      sock.on("data", (chunk) => this.received(chunk));
      sock.on("error", (e) => this.fail(e.message));
      sock.on("close", () => this.fail("transport close"));
    });
  }

  fail(why) {
    if (!this.open) this.connected?.reject(new Error(why));
    this.connected = null;
    this.open = false;
    this.closedBy ??= why;
    for (const p of this.pending.values()) p.reject(new Error(`socket closed: ${why}`));
    this.pending.clear();
    this.sock.destroy();
  }

  received(chunk) {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = null;
    let at = 0;
    if (!this.upgraded) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        this.rest = buf;
        return;
      }
      const status = buf.toString("latin1", 0, buf.indexOf("\r\n"));
      if (!status.startsWith("HTTP/1.1 101")) return this.fail(`handshake refused: ${status}`);
      this.upgraded = true;
      at = end + 4;
    }
    while (buf.length - at >= 2) {
      const b0 = buf[at];
      let length = buf[at + 1] & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buf.length - at < 4) break;
        length = buf.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (buf.length - at < 10) break;
        length = Number(buf.readBigUInt64BE(at + 2));
        header = 10;
      }
      if (buf.length - at < header + length) break;
      const payload = buf.subarray(at + header, at + header + length);
      at += header + length;
      const opcode = b0 & 0x0f;
      if (!(b0 & 0x80)) return this.fail("fragmented frame (not expected from these servers)");
      if (opcode === 1 || opcode === 2) this.message(payload);
      else if (opcode === 9) this.frame(0x8a, payload);
      else if (opcode === 8) return this.fail("websocket close");
    }
    if (at < buf.length) this.rest = buf.subarray(at);
  }

  message(data) {
    if (data[0] === 0x32) {
      this.pings++;
      this.send("3");
    } else if (data[0] === 0x30) {
      this.send("40" + JSON.stringify(this.auth));
    } else if (data[0] === 0x34) {
      const type = data[1];
      if (type === 0x32) this.dispatch(data);
      else if (type === 0x33) this.acked(data);
      else if (type === 0x30) {
        this.open = true;
        this.connected?.resolve(this);
        this.connected = null;
      } else if (type === 0x34) this.fail(`connect_error ${data.toString()}`);
      else if (type === 0x31) this.fail("io server disconnect");
    } else if (data[0] === 0x31) this.fail("engine.io close");
  }

  /** `42["name",payload]`: the handler gets the raw buffer; it parses only if it cares. */
  dispatch(data) {
    const end = data.indexOf(QUOTE, 4);
    const handler = this.handlers.get(data.toString("latin1", 4, end));
    if (handler) handler(data);
  }

  acked(data) {
    let i = 2;
    let id = 0;
    while (data[i] >= 0x30 && data[i] <= 0x39) id = id * 10 + data[i++] - 0x30;
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    waiter.resolve(JSON.parse(data.toString("utf8", i))[0]);
  }

  frame(first, payload) {
    const length = payload.length;
    const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const out = Buffer.allocUnsafe(header + 4 + length);
    out[0] = first;
    if (header === 2) out[1] = 0x80 | length;
    else if (header === 4) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(length, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(length), 2);
    }
    out.writeUInt32BE(0, header); // the mask key
    payload.copy(out, header + 4);
    this.sock.write(out);
  }

  send(text) {
    this.frame(0x81, Buffer.from(text));
  }

  on(event, handler) {
    this.handlers.set(event, handler);
  }

  emit(event, payload) {
    this.send(`42${JSON.stringify([event, payload])}`);
  }

  call(event, payload) {
    const id = this.nextAck++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send(`42${id}${JSON.stringify([event, payload])}`);
    });
  }

  close() {
    this.open = false;
    this.closedBy ??= "closed by the load generator";
    this.sock?.destroy();
  }
}

function parsed(data) {
  return JSON.parse(data.toString("utf8", 2))[1];
}

// --- measurement helpers -------------------------------------------------------------------

function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
}

function rssBytes(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "latin1");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

function snapshot() {
  return {
    at: performance.now(),
    self: process.cpuUsage(),
    servers: SERVER_PIDS.map(cpuTicks),
  };
}

function usage(before, after) {
  const seconds = (after.at - before.at) / 1000;
  const self = process.cpuUsage(before.self);
  return {
    seconds,
    loadgenCpu: (self.user + self.system) / 1e6 / seconds,
    serverCpuSeconds: after.servers.map((t, i) => (t - before.servers[i]) / 100),
  };
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const phase = (name) => process.stdout.write(`phase ${name}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function connectAll(specs) {
  const clients = new Array(specs.length);
  let next = 0;
  const errors = [];
  const worker = async () => {
    while (next < specs.length) {
      const i = next++;
      clients[i] = new Client(specs[i].url, specs[i].auth);
      try {
        await clients[i].connect();
      } catch (e) {
        errors.push(e.message);
      }
    }
  };
  await Promise.all(Array.from({ length: Number(opts.concurrency) }, worker));
  return { clients, errors };
}

module.exports = {
  opts, CALLBOX, URLS, SERVER_PIDS, CANDIDATES, TIMEOUT_MS, OFFER, ANSWER,
  candidate, Client, parsed, snapshot, usage, percentile, phase, sleep, connectAll, rssBytes,
};

if (require.main === module) {
  const run = opts.workload === "idle" ? require("./loadgen_idle.cjs") : require("./loadgen_calls.cjs");
  run().then(
    (result) => {
      process.stdout.write(`result ${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (e) => {
      console.error(`loadgen: ${e.stack || e}`);
      process.exit(1);
    },
  );
}
