// A bare Node Socket.IO 4 relay: what a user would otherwise pick.
// Same minimal protocol as loadtests/relays/bare_python.py (every event acked):
//   join {room_id}          -> enters the room; ack {room_id}
//   note {room_id, ...}     -> relayed unchanged as `note` to the room except the sender; ack {accepted: 1}
// GET /health answers {"status":"ok"}. Run: node relay.js --port 8091
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const args = process.argv.slice(2);
const portAt = args.indexOf("--port");
const port = portAt >= 0 ? Number(args[portAt + 1]) : 8091;

const server = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end('{"status":"ok"}');
  } else {
    res.writeHead(404);
    res.end();
  }
});
const io = new Server(server, { cors: { origin: "*" }, transports: ["websocket", "polling"] });

io.on("connection", (socket) => {
  socket.on("join", (data, ack) => {
    socket.join(data.room_id);
    if (typeof ack === "function") ack({ room_id: data.room_id });
  });
  socket.on("note", (data, ack) => {
    socket.to(data.room_id).emit("note", data);
    if (typeof ack === "function") ack({ accepted: 1 });
  });
});

server.listen(port, "127.0.0.1");
