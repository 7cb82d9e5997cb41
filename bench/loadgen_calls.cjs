// The handshake workload of bench/loadgen.cjs: P caller/answerer pairs in flight, each doing
// handshakes back to back: offer (acked), the caller's candidates buffered on it (the last
// one acked, so all are buffered before the answer), the answer (its ack returns them), the
// answerer's candidates relayed to the caller, then hang-up. One handshake counts when the
// caller has the answer and every relayed candidate, in order.
"use strict";

const lg = require("./loadgen.cjs");

const { opts, CALLBOX, CANDIDATES, TIMEOUT_MS, OFFER, ANSWER } = lg;

class Pair {
  constructor(index, stats) {
    this.index = index;
    this.stats = stats;
    this.generation = 0;
  }

  specs() {
    const g = this.generation;
    const room = opts.rooms === "lobby" ? "lobby" : `r${this.index}`;
    const urls = lg.URLS;
    return [
      { url: urls[this.index % urls.length], auth: { userName: `c${this.index}g${g}`, room } },
      { url: urls[(this.index + 1) % urls.length], auth: { userName: `a${this.index}g${g}`, room } },
    ];
  }

  /** Wire the event handlers of a fresh caller/answerer pair of clients. */
  attach(caller, answerer) {
    this.caller = caller;
    this.answerer = answerer;
    this.handshakes = 0;
    this.offersSeen = 0;
    this.lastOfferId = null;
    this.relayed = [];
    this.answeredAt = 0;
    this.answerResponses = 0;
    this.callEnded = 0;
    this.wake = null;
    const mine = Buffer.from(`"offererUserName":"${caller.auth.userName}"`);
    answerer.on("newOfferAwaiting", (data) => {
      if (data.indexOf(mine) < 0) return;
      if (CALLBOX) this.lastOfferId = lg.parsed(data)[0].offerId;
      this.offersSeen++;
      this.poke();
    });
    caller.on("answerResponse", () => {
      this.answerResponses++;
      if (this.stats.measuring) this.stats.latencies.push(performance.now() - this.answeredAt);
      this.poke();
    });
    caller.on("receivedIceCandidateFromServer", (data) => {
      this.relayed.push(lg.parsed(data).candidate);
      this.poke();
    });
    answerer.on("callEnded", () => {
      this.callEnded++;
      this.poke();
    });
    for (const client of [caller, answerer]) {
      client.on("signalingError", (data) => this.stats.errors.push(data.toString()));
    }
  }

  poke() {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Wait until `ready()` holds (re-checked on each event of this pair) or the deadline. */
  async until(ready, deadline, what) {
    while (!ready()) {
      const left = deadline - performance.now();
      if (left <= 0 || !this.caller.open || !this.answerer.open) throw new Error(`timeout: ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async handshake() {
    const started = performance.now();
    const deadline = started + TIMEOUT_MS;
    const h = this.handshakes;
    const { caller, answerer } = this;
    const base = (this.index * 1000 + (h % 1000)) * 100;
    const check = (reply, what) => {
      if (reply && reply.error) throw new Error(`${what}: ${JSON.stringify(reply.error)}`);
      return reply;
    };
    const ack = check(await race(caller.call("newOffer", OFFER), deadline), "newOffer");
    for (let n = 0; n < CANDIDATES; n++) {
      const message = {
        iceCandidate: lg.candidate(base + n),
        iceUserName: caller.auth.userName,
        didIOffer: true,
      };
      if (n < CANDIDATES - 1) caller.emit("sendIceCandidateToSignalingServer", message);
      else check(await race(caller.call("sendIceCandidateToSignalingServer", message), deadline), "candidate");
    }
    await this.until(
      () => this.offersSeen > h && (!CALLBOX || this.lastOfferId === ack.offerId),
      deadline,
      "newOfferAwaiting",
    );
    this.answeredAt = performance.now();
    const answer = { offererUserName: caller.auth.userName, answer: ANSWER };
    if (CALLBOX) answer.offerId = ack.offerId;
    const buffered = check(await race(answerer.call("newAnswer", answer), deadline), "newAnswer");
    if (!Array.isArray(buffered) || buffered.length !== CANDIDATES) {
      this.stats.errors.push(`pair ${this.index}: ${buffered?.length} buffered candidates`);
    }
    const relayedFrom = this.relayed.length;
    for (let n = 0; n < CANDIDATES; n++) {
      answerer.emit("sendIceCandidateToSignalingServer", {
        iceCandidate: lg.candidate(base + 50 + n),
        iceUserName: answerer.auth.userName,
        didIOffer: false,
      });
    }
    await this.until(
      () => this.answerResponses > h && this.relayed.length >= relayedFrom + CANDIDATES,
      deadline,
      "answerResponse and relayed candidates",
    );
    const got = this.relayed.slice(relayedFrom, relayedFrom + CANDIDATES);
    if (got.some((c, n) => c !== lg.candidate(base + 50 + n).candidate)) this.stats.outOfOrder++;
    if (this.stats.measuring) {
      this.stats.handshakes++;
      this.stats.durations.push(performance.now() - started);
    }
    check(await race(caller.call("hangup", {}), deadline), "hangup");
    await this.until(() => this.callEnded > h, deadline, "callEnded");
    this.handshakes++;
  }

  async run(clients) {
    this.attach(...clients);
    while (!this.stats.stopping) {
      try {
        await this.handshake();
      } catch (e) {
        if (this.stats.stopping) return;
        if (this.stats.measuring) this.stats.failed++;
        this.stats.failures.push(e.message);
        // start over on fresh sockets: nothing of the failed handshake can arrive late
        this.caller.close();
        this.answerer.close();
        this.generation++;
        const { clients: fresh, errors } = await lg.connectAll(this.specs());
        if (errors.length) {
          this.stats.failures.push(...errors);
          await lg.sleep(1000);
        }
        this.attach(...fresh);
      }
    }
  }
}

function race(promise, deadline) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout")), Math.max(0, deadline - performance.now()));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function run() {
  const stats = {
    measuring: false,
    stopping: false,
    handshakes: 0,
    failed: 0,
    outOfOrder: 0,
    latencies: [],
    durations: [],
    errors: [],
    failures: [],
  };
  const pairs = Array.from({ length: Number(opts.pairs) }, (_, i) => new Pair(i, stats));
  const { clients, errors } = await lg.connectAll(pairs.flatMap((p) => p.specs()));
  if (errors.length) throw new Error(`${errors.length} connections refused: ${errors[0]}`);
  lg.phase("connected");
  const running = pairs.map((p, i) => p.run([clients[2 * i], clients[2 * i + 1]]));
  await lg.sleep(Number(opts.warmup) * 1000);
  const before = lg.snapshot();
  stats.measuring = true;
  lg.phase("start");
  await lg.sleep(Number(opts.duration) * 1000);
  stats.measuring = false;
  const after = lg.snapshot();
  lg.phase("end");
  stats.stopping = true;
  void running;
  const used = lg.usage(before, after);
  const latencies = stats.latencies.sort((a, b) => a - b);
  const durations = stats.durations.sort((a, b) => a - b);
  return {
    workload: "calls",
    protocol: opts.protocol,
    pairs: pairs.length,
    rooms: opts.rooms,
    seconds: used.seconds,
    handshakes: stats.handshakes,
    failed: stats.failed,
    outOfOrder: stats.outOfOrder,
    handshakesPerSecond: stats.handshakes / used.seconds,
    answerToResponseP50: lg.percentile(latencies, 50),
    answerToResponseP99: lg.percentile(latencies, 99),
    handshakeP50: lg.percentile(durations, 50),
    loadgenCpu: used.loadgenCpu,
    serverCpuSeconds: used.serverCpuSeconds,
    errors: stats.errors.slice(0, 5),
    errorCount: stats.errors.length,
    failures: stats.failures.slice(0, 5),
  };
}

module.exports = run;
