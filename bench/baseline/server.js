// The benchmarks' baseline: a socket.io v4 signaling server that does what the seed document
// (seed/taskList.md) describes, the way a tutorial server does it: two arrays searched
// linearly, every new offer broadcast to every other socket, no rooms, no ids, no limits,
// no TLS. callbox is measured against it in the same run (bench/signaling.py).
//
//   node bench/baseline/server.js --port 8080 [--host 127.0.0.1]
//
// Prints "listening <port>" once it accepts connections. Differences from the seed's own
// server, all needed to run the same load on both (bench/README.md lists them):
// - an offer is removed when its call is hung up or its offerer leaves (the seed's array only
//   grows, which would make this baseline slower with every handshake);
// - `hangup` ends the caller's or answerer's offer and tells the other party `callEnded`;
// - an event sent with an ack gets one (the seed's newOffer and candidate events have none).
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

/** Every offer ever made and not yet ended: the seed's record shape. */
const offers = [];
/** {socketId, userName} of every connected socket. */
const connectedSockets = [];

function socketOf(userName) {
  return connectedSockets.find((s) => s.userName === userName);
}

function removeOffer(predicate) {
  const at = offers.findIndex(predicate);
  return at < 0 ? undefined : offers.splice(at, 1)[0];
}

function reply(ack, value) {
  if (typeof ack === "function") ack(value);
}

function onConnection(io, socket) {
  const userName = socket.handshake.auth.userName;
  connectedSockets.push({ socketId: socket.id, userName });
  if (offers.length) socket.emit("availableOffers", offers);

  socket.on("newOffer", (newOffer, ack) => {
    offers.push({
      offererUserName: userName,
      offer: newOffer,
      offerIceCandidates: [],
      answererUserName: null,
      answer: null,
      answererIceCandidates: [],
    });
    // the seed sends the newest offer to everyone else
    socket.broadcast.emit("newOfferAwaiting", offers.slice(-1));
    reply(ack, {});
  });

  socket.on("newAnswer", (offerObj, ack) => {
    const offerer = socketOf(offerObj.offererUserName);
    const offer = offers.find((o) => o.offererUserName === offerObj.offererUserName);
    if (!offerer || !offer) return reply(ack, []);
    reply(ack, offer.offerIceCandidates); // the caller's buffered candidates
    offer.answer = offerObj.answer;
    offer.answererUserName = userName;
    io.to(offerer.socketId).emit("answerResponse", offer);
  });

  socket.on("sendIceCandidateToSignalingServer", (message, ack) => {
    const { didIOffer, iceUserName, iceCandidate } = message;
    if (didIOffer) {
      const offer = offers.find((o) => o.offererUserName === iceUserName);
      if (offer) {
        offer.offerIceCandidates.push(iceCandidate);
        const answerer = offer.answererUserName && socketOf(offer.answererUserName);
        if (answerer) io.to(answerer.socketId).emit("receivedIceCandidateFromServer", iceCandidate);
      }
    } else {
      const offer = offers.find((o) => o.answererUserName === iceUserName);
      const offerer = offer && socketOf(offer.offererUserName);
      if (offerer) io.to(offerer.socketId).emit("receivedIceCandidateFromServer", iceCandidate);
    }
    reply(ack, { ok: true });
  });

  socket.on("hangup", (_payload, ack) => {
    if (typeof _payload === "function") [_payload, ack] = [undefined, _payload];
    endCalls(io, userName, "hangup");
    reply(ack, { ok: true });
  });

  socket.on("disconnect", () => {
    endCalls(io, userName, "peer-disconnected");
    const at = connectedSockets.findIndex((s) => s.socketId === socket.id);
    if (at >= 0) connectedSockets.splice(at, 1);
  });
}

function endCalls(io, userName, reason) {
  for (;;) {
    const offer = removeOffer(
      (o) => o.offererUserName === userName || o.answererUserName === userName,
    );
    if (!offer) return;
    const other =
      offer.offererUserName === userName ? offer.answererUserName : offer.offererUserName;
    const peer = other && socketOf(other);
    if (peer) io.to(peer.socketId).emit("callEnded", { reason, by: userName });
  }
}

function main() {
  const port = Number(option("port", "8080"));
  const host = option("host", "127.0.0.1");
  const server = http.createServer();
  const io = new Server(server, { cors: { origin: "*" } });
  io.on("connection", (socket) => onConnection(io, socket));
  server.listen(port, host, () => console.log(`listening ${server.address().port}`));
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      io.close();
      process.exit(0);
    });
  }
}

main();
