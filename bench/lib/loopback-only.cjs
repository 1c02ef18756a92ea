// Preloaded (node --require) into the Portkey gateway: it listens on every interface by default and
// has no option for the address; this binds its server to 127.0.0.1 only, without touching its code.
"use strict";
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
    else args[1] = "127.0.0.1";
  } else if (args[0] && typeof args[0] === "object" && !Array.isArray(args[0]) && args[0].path === undefined) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
